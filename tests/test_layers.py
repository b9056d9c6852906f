"""The package's floors: a module imports from its own floor and the floors below it, never from above.

Every module of ``fastmri_recon`` is parsed with `ast`; each of its import statements, at module level
or inside a function, names a module whose floor must not be higher than the importer's. Import
statements only: the classes `models.registry` names by strings are imported at run time by the
registry and are not checked here.
"""

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastmri_recon"

FLOORS = (
    ("errors", "files", "progress"),
    ("ops",),
    ("data",),
    ("models", "implicit"),
    ("baselines",),
    ("evaluate",),
    ("training",),
    ("hub",),
    ("workflows",),
    ("outputs", "reconstruct", "cli"),
)
"""The floors, lowest first: the top-level modules and subpackages of ``fastmri_recon`` on each."""

FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}

ROOT_NAMES = {"__version__", "ONEDNN_VARIABLE"}
"""What modules may import from the package root (``fastmri_recon/__init__.py``), which is on no floor."""


def modules():
    """``(dotted name, path)`` of every module of the package, ``__init__`` files under their package's name."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(name, path):
    """``(line, imported module, names taken from it)`` of every import statement of a module, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            yield node.lineno, target, tuple(alias.name for alias in node.names)


def floor_of(module):
    """The floor of a module of the package, from its top-level name (``fastmri_recon.data.h5`` -> ``data``)."""
    return FLOOR[module.split(".")[1]]


def upward_imports(name, path):
    """The imports of a module that point up a floor, or take from the package root more than `ROOT_NAMES`: messages."""
    found = []
    for line, target, names in imports(name, path):
        if target.split(".")[0] != "fastmri_recon":
            continue
        if target == "fastmri_recon":  # from the root: its subpackages and modules, or its own names
            targets = [f"{target}.{imported}" for imported in names if imported in FLOOR]
            found += [f"{line}: takes {imported} from the package root" for imported in names if imported not in FLOOR.keys() | ROOT_NAMES]
        else:
            targets = [target]
        found += [
            f"{line}: {module} (floor {floor_of(module)}) above floor {floor_of(name)}"
            for module in targets
            if floor_of(module) > floor_of(name)
        ]
    return [f"{path.relative_to(PACKAGE.parent)}:{message}" for message in found]


def test_every_module_has_a_floor():
    tops = {name.split(".")[1] for name, _ in modules() if name != "fastmri_recon"}
    assert tops == set(FLOOR), f"without a floor: {sorted(tops - set(FLOOR))}; not in the package: {sorted(set(FLOOR) - tops)}"


def test_imports_point_down():
    upward = [message for name, path in modules() if name != "fastmri_recon" for message in upward_imports(name, path)]
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_the_root_imports_only_the_hub_and_only_on_first_use():
    """``fastmri_recon.from_pretrained`` & co. are the hub's, imported when first used: the root is on no floor.

    At import time the root needs ``os`` and ``sys`` only (to turn oneDNN's CPU kernels on before TensorFlow).
    """
    root = PACKAGE / "__init__.py"
    tree = ast.parse(root.read_text(), str(root))
    top_level = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    assert top_level == ["os", "sys"], "the root imports more than os and sys at import time"
    assert not [node for node in tree.body if isinstance(node, ast.ImportFrom)], "the root imports at import time"
    package_imports = [(target, names) for _, target, names in imports("fastmri_recon", root) if target.startswith("fastmri_recon")]
    assert package_imports == [("fastmri_recon", ("hub",))]


@pytest.mark.slow
def test_no_private_name_is_imported_from_another_module():
    """A name with a leading underscore stays in its module: what another module needs is public (and documented)."""
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {imported} from {target}"
        for name, path in modules()
        for line, target, names in imports(name, path)
        if target.split(".")[0] == "fastmri_recon" and target != name
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert not private, "private names imported across modules:\n" + "\n".join(private)
