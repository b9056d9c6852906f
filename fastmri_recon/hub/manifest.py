"""The weights manifest: ``weights_manifest.json``, one entry per published model.

An entry says what a set of weights is (registry architecture and full constructor config, the
acquisition, accelerations and data it was trained for), where it lives (Hub repository, revision
and file name; the repository's ``weights/`` folder for entries not uploaded) and how to check and
judge it (sha256, size, package version, metrics with the data they were measured on). The format
is ``weights_manifest.schema.json`` with the enums of the sampling fields filled from the registries
(`manifest_schema`); `validate_manifest` adds what a schema cannot say (unique names, registered
architectures, a ``file`` inside its folder).

The manifest used by default is ``$FASTMRI_RECON_MANIFEST`` if set, else the one at the root of the
source tree the package is installed from (``pip install -e .``).
"""

import dataclasses
import difflib
import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from fastmri_recon.errors import ConfigError, quote
from fastmri_recon.files import write_text
from fastmri_recon.hub.schema import check, load_schema

MANIFEST_ENV = "FASTMRI_RECON_MANIFEST"
MANIFEST_FILE = "weights_manifest.json"


def default_manifest_path():
    """``$FASTMRI_RECON_MANIFEST``, or ``weights_manifest.json`` beside the ``fastmri_recon`` package."""
    if os.environ.get(MANIFEST_ENV):
        return Path(os.environ[MANIFEST_ENV])
    return Path(__file__).resolve().parents[2] / MANIFEST_FILE


CARTESIAN = "cartesian"
"""The ``acquisition.trajectory`` of Cartesian entries (their ``mask_type`` names the mask)."""


def manifest_schema():
    """The manifest's JSON Schema with the enums of its sampling fields filled from the registries.

    ``weights_manifest.schema.json`` leaves them plain strings, so that a kind registered in
    ``data.masks`` or ``data.trajectories`` needs no edit of the schema:

    - ``acquisition.trajectory``: `CARTESIAN`, then every kind of `data.trajectories.TRAJECTORY_KINDS`,
      spelled as the code spells it (``stack_of_radial``);
    - ``acquisition.mask_type`` and ``metrics[].mask_type``: `data.masks.mask_type_names`.

    Returns:
        dict, a fresh copy.
    """
    from fastmri_recon.data.masks import mask_type_names
    from fastmri_recon.data.trajectories import trajectory_kind_names

    schema = load_schema()
    entry = schema["$defs"]["entry"]["properties"]
    acquisition = entry["acquisition"]["properties"]
    acquisition["trajectory"]["enum"] = [CARTESIAN, *trajectory_kind_names()]
    acquisition["mask_type"]["enum"] = list(mask_type_names())
    entry["metrics"]["items"]["properties"]["mask_type"]["enum"] = list(mask_type_names())
    return schema


def validate_entry(entry, source="entry", hub_required=True):
    """Check one entry; a published folder's ``config.json`` is an entry without ``hub``.

    Args:
        entry: the entry (dict).
        source: where it comes from, for the message.
        hub_required: whether the ``hub`` field is required.

    Raises:
        ConfigError: listing the first problems (field and what was expected).
    """
    schema = manifest_schema()
    entry_schema = dict(schema["$defs"]["entry"])
    if not hub_required:
        entry_schema["required"] = [key for key in entry_schema["required"] if key != "hub"]
    _raise(check(entry, entry_schema, schema), source)
    _check_file(entry, source)
    _check_format(entry, source)
    _check_architecture(entry, source)


def validate_manifest(manifest, source=MANIFEST_FILE):
    """Check a whole manifest (a dict as read from JSON).

    Raises:
        ConfigError: naming the file, the field (``models[2].sha256``) and what was expected.
    """
    _raise(check(manifest, manifest_schema()), source)
    names = [entry["name"] for entry in manifest["models"]]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: duplicate model name(s) {', '.join(duplicates)}")
    for index, entry in enumerate(manifest["models"]):
        where = f"{source}: models[{index}] ({entry['name']})"
        _check_file(entry, where)
        _check_format(entry, where)
        _check_architecture(entry, where)


def _raise(errors, source):
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError(f"{source}: {'; '.join(errors[:3])}{more}")


def _check_file(entry, source):
    """The ``file`` is a relative path that stays inside its folder (the repository, the published folder)."""
    file = entry["file"]
    parts = PurePosixPath(file).parts
    if not parts or PurePosixPath(file).is_absolute() or PureWindowsPath(file).anchor or ".." in parts or "\\" in file or "\0" in file:
        raise ConfigError(f"{source}: file: {quote(file)} leaves its folder; expected a relative path without '..'")


KERAS2 = "keras2"
"""The ``format`` of entries naming a Keras-2 file of the benchmark code (`hub.original`)."""

UNKNOWN_SHA256 = "unknown"
"""The ``sha256`` of a Keras-2 file published without a checksum (trusted on first use)."""


def is_keras2(entry):
    """Whether a manifest entry names a Keras-2 file of the benchmark code."""
    return entry.get("format") == KERAS2


def _check_format(entry, source):
    """Keras 3 entries (the default format) need a ``.weights.h5`` file, a sha256 and a size; Keras-2 ones may lack both."""
    if is_keras2(entry):
        return
    if not entry["file"].endswith(".weights.h5"):
        raise ConfigError(f"{source}: file: '{entry['file']}' must end with .weights.h5 (or set format 'keras2')")
    if entry["sha256"] == UNKNOWN_SHA256:
        raise ConfigError(f"{source}: sha256: '{UNKNOWN_SHA256}' is only allowed for format '{KERAS2}' files")
    if "size_bytes" not in entry:
        raise ConfigError(f"{source}: size_bytes: required for Keras 3 weights")


def _check_architecture(entry, source):
    from fastmri_recon.models.registry import get_entry

    try:
        get_entry(entry["architecture"])
    except ConfigError as err:
        raise ConfigError(f"{source}: architecture: {err}") from None


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A validated manifest and the file it was read from.

    Attributes:
        path: the manifest file.
        data: its content (``{"manifest_version": 1, "models": [...]}``).
    """

    path: Path
    data: dict

    @property
    def entries(self):
        """The entries, in file order."""
        return self.data["models"]

    @property
    def names(self):
        return [entry["name"] for entry in self.entries]

    def get(self, name):
        """The entry called ``name``.

        Raises:
            ConfigError: for an unknown name, with close matches (or the known names).
        """
        for entry in self.entries:
            if entry["name"] == name:
                return entry
        close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(self.names) or 'none'}"
        raise ConfigError(f"unknown pretrained model '{name}' in {self.path} ({hint})")

    def find(self, repo_id, file=None):
        """The entry published as ``file`` (None: the only entry) of the Hub repository ``repo_id``, or None."""
        matches = [e for e in self.entries if e["hub"]["repo_id"] == repo_id and file in (None, e["file"])]
        return matches[0] if len(matches) == 1 else None

    def with_entry(self, entry):
        """A new `Manifest` (same path, not written) where ``entry`` replaces the one of its name or is appended."""
        models = [e for e in self.entries if e["name"] != entry["name"]]
        position = self.names.index(entry["name"]) if entry["name"] in self.names else len(models)
        models.insert(position, entry)
        data = {**self.data, "models": models}
        validate_manifest(data, str(self.path))
        return Manifest(self.path, data)

    def text(self):
        """The manifest as written to its file (2-space indented JSON)."""
        return json.dumps(self.data, indent=2) + "\n"

    def diff(self, other):
        """Unified diff from this manifest to ``other`` (another `Manifest`), as text."""
        lines = difflib.unified_diff(
            self.text().splitlines(keepends=True), other.text().splitlines(keepends=True), str(self.path), str(other.path)
        )
        return "".join(lines)

    def write(self):
        """Write the manifest to its path, atomically."""
        write_text(self.path, self.text())

    @property
    def weights_dir(self):
        """The folder of the weights kept beside the manifest (entries not uploaded): ``weights/``."""
        return self.path.parent / "weights"


def load_manifest(path=None):
    """Read and validate a manifest.

    Args:
        path: the manifest file (None: `default_manifest_path`).

    Returns:
        `Manifest`.

    Raises:
        ConfigError: for a missing file, invalid JSON or an invalid entry.
    """
    path = Path(path) if path is not None else default_manifest_path()
    if not path.is_file():
        raise ConfigError(f"{path}: no weights manifest there (set ${MANIFEST_ENV} or pass --manifest)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    validate_manifest(data, str(path))
    return Manifest(path, data)
