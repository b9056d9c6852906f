"""The configuration of a training run: one dataclass, loadable from YAML / JSON, validated.

Its keys are the ``fastmri-recon train`` options (with underscores), so every experiment can be a
file under ``experiments/`` and every file a command line. The resolved configuration is saved as
``config.json`` in the run directory; a run started again with the same configuration resumes.
"""

import dataclasses
import json
import numbers
from pathlib import Path

import yaml

from fastmri_recon.errors import ConfigError

OPTIMIZERS = ("radam", "adam")
COILS = ("singlecoil", "multicoil")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        model: registered model name (``fastmri-recon models``).
        model_config: constructor arguments of the model overriding its (paper) defaults,
            e.g. ``{"n_iter": 5, "n_filters": 16}``.
        data_dir: directory holding ``{coils}_train/`` and ``{coils}_val/`` (fastMRI's layout, as
            the demo data).
        coils: ``singlecoil`` or ``multicoil``.
        mask_type: undersampling mask kind (fastMRI's: random, equispaced, ...).
        accelerations: accelerations, one drawn per example.
        center_fractions: paired center fractions (None: 0.08 for 4, 0.04 for 8).
        contrasts: ``acquisition`` attributes to keep (None: all).
        slice_selection: ``all`` slices or one ``random`` slice per volume per epoch.
        phase_augmentation: multiply each training example by a random global phase.
        loss: ``mae``, ``mse``, ``ssim`` or ``msssim_l1``.
        optimizer: ``radam`` (the papers') or ``adam``.
        learning_rate: initial learning rate.
        epochs: number of epochs.
        steps_per_epoch: steps per epoch (None: one pass over the training slices).
        batch_size: global batch size (over all replicas).
        validation_steps: validation batches per epoch (None: all).
        checkpoint_every: steps between checkpoints.
        mixed_precision: train under the ``mixed_float16`` policy.
        deterministic: make TensorFlow's ops deterministic (slower; exact resumption).
        seed: seed of the weights' initialisation, the data order and the masks.
        strategy: ``auto``, ``one-device``, ``mirrored`` or ``multi-worker``.
        output_dir: parent of the run directory.
        run_name: the run directory's name (None: derived from the model, coils, mask and
            accelerations, so the same command resumes the same run).
    """

    model: str = "unet"
    model_config: dict = dataclasses.field(default_factory=dict)
    data_dir: str = "demo_data"
    coils: str = "singlecoil"
    mask_type: str = "random"
    accelerations: tuple = (4,)
    center_fractions: tuple = None
    contrasts: tuple = None
    slice_selection: str = "all"
    phase_augmentation: bool = False
    loss: str = "mae"
    optimizer: str = "radam"
    learning_rate: float = 1e-3
    epochs: int = 10
    steps_per_epoch: int = None
    batch_size: int = 1
    validation_steps: int = None
    checkpoint_every: int = 100
    mixed_precision: bool = False
    deterministic: bool = False
    seed: int = 0
    strategy: str = "auto"
    output_dir: str = "runs"
    run_name: str = None

    def __post_init__(self):
        _check_types(self)
        if self.coils not in COILS:
            raise ConfigError(f"coils='{self.coils}': expected one of {', '.join(COILS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer='{self.optimizer}': expected one of {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: expected a positive integer")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: expected a number > 0")

    @property
    def name(self):
        """The run directory's name."""
        if self.run_name:
            return self.run_name
        accelerations = "-".join(f"{a:g}" for a in self.accelerations)
        return f"{self.model}_{self.coils}_{self.mask_type}_x{accelerations}"

    @property
    def run_dir(self):
        return Path(self.output_dir) / self.name

    def to_json(self):
        """A JSON-able dict of every field."""
        return {field.name: _jsonable(getattr(self, field.name)) for field in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return from_dict({**self.to_json(), **changes})


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


_TYPES = {
    "model": str, "model_config": dict, "data_dir": str, "coils": str, "mask_type": str,
    "accelerations": "numbers", "center_fractions": "numbers?", "contrasts": "strings?",
    "slice_selection": str, "phase_augmentation": bool, "loss": str, "optimizer": str, "learning_rate": "number", "epochs": int,
    "steps_per_epoch": "int?", "batch_size": int, "validation_steps": "int?", "checkpoint_every": int,
    "mixed_precision": bool, "deterministic": bool, "seed": int, "strategy": str, "output_dir": str,
    "run_name": "str?",
}  # fmt: skip


def _check_value(name, value, kind):
    optional = isinstance(kind, str) and kind.endswith("?")
    if optional:
        if value is None:
            return value
        kind = kind[:-1]
    if kind in ("numbers", "strings"):
        items = [value] if isinstance(value, (numbers.Real, str)) else value
        element = numbers.Real if kind == "numbers" else str
        if not isinstance(items, (list, tuple)) or not items or not all(
            isinstance(v, element) and not isinstance(v, bool) for v in items
        ):
            raise ConfigError(f"{name}={value!r}: expected a non-empty list of {'numbers' if kind == 'numbers' else 'names'}")
        return tuple(items)
    expected = {"number": numbers.Real, "int": int, "str": str}.get(kind, kind)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ConfigError(f"{name}={value!r}: expected {getattr(expected, '__name__', kind)}")
    return value


def _check_types(config):
    for name, kind in _TYPES.items():
        object.__setattr__(config, name, _check_value(name, getattr(config, name), kind))


def from_dict(values, source="configuration"):
    """A `TrainConfig` from a dict, rejecting unknown keys.

    Args:
        values: dict of field values.
        source: where the values come from, for error messages (e.g. the file name).

    Raises:
        ConfigError: for an unknown key or a value of the wrong type.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of option names to values")
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return TrainConfig(**values)


def load_config(path):
    """Read a YAML or JSON configuration file into a dict (validated by `from_dict` later).

    Raises:
        ConfigError: for a missing file or one that does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({' '.join(str(err).split())})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return values
