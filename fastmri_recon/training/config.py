"""The configuration of a training run: one dataclass, loadable from YAML / JSON, validated.

Its keys are the ``fastmri-recon train`` options (with underscores), so every experiment can be a
file under ``experiments/`` and every file a command line. The resolved configuration is saved as
``config.json`` in the run directory; a run started again with the same configuration resumes.

A file may also group the keys in the five sections of `SECTIONS`, ``model`` (``name``,
``config``), ``acquisition``, ``data``, ``loop`` and ``runtime``::

    model: {name: pdnet, config: {n_iter: 5}}
    acquisition: {mask_type: equispaced, accelerations: [4, 8]}
    data: {coils: multicoil, edge_slices: 2}
    loop: {epochs: 20, learning_rate: 3.0e-4}

and ``fastmri-recon train --set data.edge_slices=2`` overrides one key of a section (``--set
model.config.n_iter=5`` one constructor argument). Each key is a field of `TrainConfig`, declared
and validated there once; the flat form (older files, ``config.json``) loads as before
(`flatten_sections`, `set_override`, `nest`).

The acquisition follows the model's registry entry (`models.registry.Entry.acquisition`):
Cartesian models take the mask options (``mask_type``, ``center_fractions``), non-Cartesian ones
the simulated-trajectory options (``trajectory``, ``trajectory_options``, ``image_shape`` or
``volume_shape``, ``density_compensation``; names and defaults of `data.datasets.nc_config`). The
options of the other acquisition stay None; giving one is an error.
"""

import dataclasses
import json
import math
import numbers
from pathlib import Path

import yaml

from fastmri_recon.data.datasets.config import MulticoilConfig, SinglecoilConfig, SliceOptions
from fastmri_recon.data.datasets.nc_config import (
    TRAJECTORIES_2D,
    TRAJECTORIES_3D,
    NonCartesianConfig,
    Volume3DConfig,
)
from fastmri_recon.data.coil_compression import slice_compression
from fastmri_recon.data.trajectories import LEARNED_TRAJECTORIES, learned_base
from fastmri_recon.errors import ConfigError, quote
from fastmri_recon.models.registry import get_entry

OPTIMIZERS = ("radam", "adam")
COILS = ("singlecoil", "multicoil")
DEFAULT_DATA_DIR = "demo_data"
DEMO_VOLUMES = "demo-volumes"
"""``data_dir`` of 3D runs that train on the demo volumes (`data.datasets.volume3d.demo_volumes`)."""
CARTESIAN_OPTIONS = ("mask_type", "center_fractions", "cache_dir", "grid_shape")
NONCARTESIAN_OPTIONS = ("trajectory", "trajectory_options", "image_shape", "volume_shape", "density_compensation", "off_resonance")
KERAS_OBJECT_KEYS = ("class_name", "module", "config")
"""Keys of a serialized Keras object (``keras.saving.serialize_keras_object``): refused in constructor arguments."""
MAX_JSON_VALUES = 10000
"""Most values (nested ones counted) a constructor configuration may hold."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        model: registered model name (``fastmri-recon models``).
        model_config: constructor arguments of the model overriding its (paper) defaults,
            e.g. ``{"n_iter": 5, "n_filters": 16}`` (not ``image_shape``: non-Cartesian models get
            the data's grid).
        data_dir: 2D models: directory holding ``{coils}_train/`` and ``{coils}_val/`` (fastMRI's
            layout, as the demo data; default ``demo_data``). 3D models: directory holding
            ``volumes_train/`` and ``volumes_val/`` of NIfTI volumes (``.nii`` / ``.nii.gz``), or
            ``demo-volumes`` (the default): 6 training and 2 validation demo volumes made from the
            MNI template at ``volume_shape`` (`volume3d.demo_volumes`, seeds 0 and 1).
        cache_dir: Cartesian models: directory holding TFRecord caches ``{coils}_train/`` and
            ``{coils}_val/`` of the ``data_dir`` splits (`data.datasets.tfrecord`, built by
            ``fastmri-recon cache-tfrecords``), read instead of the HDF5 files (same batches), or None.
        coils: ``singlecoil`` or ``multicoil`` (3D models: single-coil).
        mask_type: Cartesian models: undersampling mask type (fastMRI's: random, equispaced, ...;
            default random).
        accelerations: accelerations, one drawn per example (non-Cartesian models: one value).
        center_fractions: Cartesian models: paired center fractions (None: 0.08 for 4, 0.04 for 8).
        trajectory: non-Cartesian models: ``radial`` or ``spiral`` (2D, default radial),
            ``learned-radial`` or ``learned-spiral`` (2D: the trajectory is trained with the network,
            within the gradient hardware's limits, `models.learned_trajectory`), ``stack_of_spirals``,
            ``stack_of_radial`` or ``kooshball`` (3D, default stack_of_spirals).
        trajectory_options: non-Cartesian models: extra arguments of the trajectory function
            (e.g. ``{"n_shots": 8}``; learned trajectories: `LearnedTrajectory`'s, e.g.
            ``{"n_shots": 16, "parameter_scale": 4, "system": {"max_slew": 100}}``) or None.
        image_shape: 2D non-Cartesian models: the image grid ``(H, W)`` the acquisition is
            simulated on and the model works on (None: the targets' size).
        volume_shape: 3D models: the volume grid ``(D, H, W)`` (default ``(32, 32, 32)``).
        density_compensation: non-Cartesian models: give the models the pipeline's Pipe-Menon
            density (True, the default) or unit density (False: the plain adjoint ``A^H``).
        off_resonance: 2D non-Cartesian models on spirals: None (on-resonance samples),
            ``"simulated"`` (the samples carry the off-resonance of each file's B0 field map; the
            model is not given it) or ``"known"`` (and the model gets the map and the read-out
            times: its encoding is B0-aware); see `data.datasets.nc_config.NonCartesianConfig`.
        scale_factor: the factor the pipelines multiply k-space (samples) and targets by, part of
            the model's preprocessing: recorded in ``config.json`` and applied by every command that
            uses the run (None: the pipeline's default, 1e6 for fastMRI files, fastMRI's units; 1.0
            for 3D volumes, normalised to a maximum of 1).
        virtual_coils: Cartesian multi-coil runs: compress each slice to this many virtual coils
            (`coil_compression.SliceCompression`), recorded and applied by every command that uses
            the run (None: the files' coils).
        coil_compression: with ``virtual_coils``: ``svd`` (the default) or ``geometric``.
        contrasts, slice_selection, edge_slices, phase_augmentation: 2D models: the pipelines'
            options of these names, with their defaults (`data.datasets.SliceOptions` documents and
            checks them): ``acquisition`` attributes to keep (None: all); ``all`` slices or one
            ``random`` slice per volume per epoch; slices dropped at each end of every volume
            (int, or a fraction in [0, 0.5)); a random global phase on each training example.
        grid_shape: Cartesian models: the image grid ``(H, W)`` every example is cropped /
            zero-padded to before undersampling (files of different sizes in one batch), or None
            (each file's size); see `data.datasets.config.SinglecoilConfig`.
        loss: ``mae``, ``mse``, ``ssim`` or ``msssim_l1``.
        optimizer: ``radam`` (the papers') or ``adam``.
        learning_rate: initial learning rate.
        epochs: number of epochs.
        steps_per_epoch: steps per epoch (None: one pass over the training slices).
        batch_size: global batch size (over all replicas; `SliceOptions`' default).
        validation_steps: validation batches per epoch (None: all).
        checkpoint_every: steps between checkpoints.
        mixed_precision: train under the ``mixed_float16`` policy.
        deterministic: make TensorFlow's ops deterministic (slower; exact resumption).
        seed: seed of the weights' initialisation, the data order and the masks.
        strategy: ``auto``, ``one-device``, ``mirrored`` or ``multi-worker``.
        output_dir: parent of the run directory.
        run_name: the run directory's name, a plain folder name inside ``output_dir`` (None:
            derived from the model, coils, mask and accelerations, so the same command resumes
            the same run).

    Text fields may not hold NUL characters; ``model_config`` and ``trajectory_options`` hold plain
    JSON values only (`check_plain_json`).
    """

    model: str = "unet"
    model_config: dict = dataclasses.field(default_factory=dict)
    data_dir: str = None
    cache_dir: str = None
    coils: str = "singlecoil"
    mask_type: str = None
    accelerations: tuple = (4,)
    center_fractions: tuple = None
    trajectory: str = None
    trajectory_options: dict = None
    image_shape: tuple = None
    volume_shape: tuple = None
    density_compensation: bool = None
    off_resonance: str = None
    scale_factor: float = None
    virtual_coils: int = None
    coil_compression: str = None
    contrasts: tuple = SliceOptions.contrasts
    slice_selection: str = SliceOptions.slice_selection
    edge_slices: float = SliceOptions.edge_slices
    grid_shape: tuple = None
    phase_augmentation: bool = SliceOptions.phase_augmentation
    loss: str = "mae"
    optimizer: str = "radam"
    learning_rate: float = 1e-3
    epochs: int = 10
    steps_per_epoch: int = None
    batch_size: int = SliceOptions.batch_size
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
        _resolve_acquisition(self)
        if self.coils not in COILS:
            raise ConfigError(f"coils='{self.coils}': expected one of {', '.join(COILS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer='{self.optimizer}': expected one of {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "checkpoint_every", "steps_per_epoch", "validation_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: expected a positive integer")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate={self.learning_rate}: expected a finite number > 0")
        if self.run_name is not None and (self.run_name in (".", "..") or any(c in self.run_name for c in "/\\")):
            raise ConfigError(f"run_name={quote(self.run_name)}: expected a folder name (no '/', not '..'), the run directory inside output_dir")
        check_plain_json(self.model_config, "model_config")
        check_plain_json(self.trajectory_options, "trajectory_options")
        self.pipeline(self.seed)  # the data and acquisition values: checked once, by the pipeline configuration that uses them

    @property
    def acquisition(self):
        """``"cartesian"`` or ``"noncartesian"``: the model's registry entry's acquisition."""
        return get_entry(self.model).acquisition

    @property
    def learned(self):
        """Whether the run learns its trajectory (``trajectory`` one of `LEARNED_TRAJECTORIES`)."""
        return self.acquisition == "noncartesian" and learned_base(self.trajectory) is not None

    @property
    def needs_smaps(self):
        """Whether the run's inputs carry sensitivity maps: multi-coil data for a model that needs them."""
        return self.coils == "multicoil" and get_entry(self.model).load_class().needs_smaps

    def pipeline(self, seed):
        """The data pipeline's configuration for the run (``seed`` varies per epoch in training).

        The pipeline configurations validate the data and acquisition fields (one validator per
        field); `TrainConfig` checks their types and how they combine with the model.

        Returns:
            `SinglecoilConfig` / `MulticoilConfig` (Cartesian), `NonCartesianConfig` (2D
            non-Cartesian) or `Volume3DConfig` (3D).

        Raises:
            ConfigError: naming the first field the pipeline refuses.
        """
        if self.volumetric:
            return Volume3DConfig(
                trajectory=self.trajectory, acceleration=self.accelerations[0], trajectory_options=self.trajectory_options,
                volume_shape=self.volume_shape, batch_size=self.batch_size, seed=seed, scale_factor=self.scale_factor,
            )
        options = {
            "slice_selection": self.slice_selection,
            "edge_slices": self.edge_slices,
            "phase_augmentation": self.phase_augmentation,
            "contrasts": self.contrasts,
            "batch_size": self.batch_size,
            "seed": seed,
            "scale_factor": self.scale_factor,
        }
        maps = "acs" if self.needs_smaps else None
        if self.learned:  # the pipeline gives images: the model samples them on its own trajectory
            return NonCartesianConfig(
                trajectory=learned_base(self.trajectory), acceleration=self.accelerations[0], image_shape=self.image_shape,
                sensitivity_maps=maps, **options,
            )
        if self.acquisition == "noncartesian":
            return NonCartesianConfig(
                trajectory=self.trajectory, acceleration=self.accelerations[0], trajectory_options=self.trajectory_options,
                image_shape=self.image_shape, sensitivity_maps=maps, off_resonance=self.off_resonance, **options,
            )
        options.update(
            mask_type=self.mask_type, accelerations=self.accelerations, center_fractions=self.center_fractions,
            grid_shape=self.grid_shape,
        )
        if self.coils == "multicoil":
            compression = {"virtual_coils": self.virtual_coils, "coil_compression": self.coil_compression or "svd"}
            return MulticoilConfig(**options, sensitivity_maps=maps, **compression)
        return SinglecoilConfig(**options)

    def compression(self):
        """The `SliceCompression` of ``virtual_coils`` / ``coil_compression``, or None."""
        return slice_compression(self.virtual_coils, self.coil_compression)

    @property
    def volumetric(self):
        """True for 3D (non-Cartesian) models: those whose preset grid has three axes."""
        return len(get_entry(self.model).defaults.get("image_shape", ())) == 3

    @property
    def name(self):
        """The run directory's name: ``MODEL_COILS_MASK_xACC`` or ``MODEL_COILS_TRAJECTORY_xACC`` (``_b0-KIND`` added with ``off_resonance``)."""
        if self.run_name:
            return self.run_name
        accelerations = "-".join(f"{a:g}" for a in self.accelerations)
        sampling = self.mask_type if self.acquisition == "cartesian" else self.trajectory
        off_resonance = f"_b0-{self.off_resonance}" if self.off_resonance else ""
        return f"{self.model}_{self.coils}_{sampling}_x{accelerations}{off_resonance}"

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


def _default(cls, field):
    """The default of a field of a pipeline configuration dataclass."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == field)


def _resolve_scale(config, pipeline):
    """Fill ``scale_factor`` with the pipeline's default (`NonCartesianConfig`'s is the 2D one; the pipeline checks it)."""
    if config.scale_factor is None:
        object.__setattr__(config, "scale_factor", float(_default(pipeline, "scale_factor")))


def _resolve_compression(config, cartesian):
    """Check that ``virtual_coils`` / ``coil_compression`` belong to a Cartesian multi-coil run and fill the method.

    Raises:
        ConfigError: for compression options of another run (`MulticoilConfig` checks the count and the method).
    """
    if config.virtual_coils is None:
        if config.coil_compression is not None:
            raise ConfigError(f"coil_compression={quote(config.coil_compression)}: give virtual_coils too")
        return
    if not cartesian or config.coils != "multicoil":
        kind = "multi-coil" if cartesian else "Cartesian"
        raise ConfigError(f"virtual_coils={config.virtual_coils}: coil compression needs {kind} data; model '{config.model}' with coils='{config.coils}'")
    object.__setattr__(config, "coil_compression", config.coil_compression or "svd")  # the pipeline checks both


def _resolve_acquisition(config):
    """Check the options against the model's acquisition and fill the acquisition's defaults.

    Raises:
        ConfigError: for an unknown model, an option of the other acquisition, a trajectory of the
            wrong dimension, several accelerations, multi-coil 3D data or a grid in ``model_config``.
    """
    entry, volumetric = get_entry(config.model), config.volumetric
    cartesian = entry.acquisition == "cartesian"
    foreign = CARTESIAN_OPTIONS if not cartesian else NONCARTESIAN_OPTIONS
    for name in foreign:
        if getattr(config, name) is not None:
            raise ConfigError(
                f"{name}={quote(getattr(config, name))}: a {'Cartesian' if not cartesian else 'non-Cartesian'} option, "
                f"but model '{config.model}' reconstructs {entry.acquisition} acquisitions"
            )
    dimension = "3D" if volumetric else "2D"
    misplaced = config.image_shape if volumetric else config.volume_shape
    if misplaced is not None:
        name = "image_shape" if volumetric else "volume_shape"
        raise ConfigError(f"{name}={list(misplaced)}: not an option of the {dimension} model '{config.model}'")
    resolve = object.__setattr__
    resolve(config, "data_dir", config.data_dir or (DEMO_VOLUMES if volumetric else DEFAULT_DATA_DIR))
    _resolve_scale(config, Volume3DConfig if volumetric else NonCartesianConfig)
    _resolve_compression(config, cartesian)
    if cartesian:
        resolve(config, "mask_type", config.mask_type or "random")
        return
    pipeline = Volume3DConfig if volumetric else NonCartesianConfig
    kinds = TRAJECTORIES_3D if volumetric else TRAJECTORIES_2D + LEARNED_TRAJECTORIES
    resolve(config, "trajectory", config.trajectory or _default(pipeline, "trajectory"))
    if config.trajectory not in kinds:
        raise ConfigError(f"trajectory='{config.trajectory}': expected one of {', '.join(kinds)} ({dimension} model '{config.model}')")
    if volumetric:
        resolve(config, "volume_shape", config.volume_shape or _default(Volume3DConfig, "volume_shape"))
        if config.coils != "singlecoil":
            raise ConfigError(f"coils='{config.coils}': the 3D pipeline simulates single-coil volumes")
        for name in ("contrasts", "phase_augmentation", "slice_selection", "edge_slices", "off_resonance"):
            if getattr(config, name) not in (None, False, "all"):
                raise ConfigError(f"{name}={quote(getattr(config, name))}: not an option of the 3D model '{config.model}'")
    if config.density_compensation is None:
        resolve(config, "density_compensation", True)
    if config.trajectory in LEARNED_TRAJECTORIES and config.off_resonance is not None:
        raise ConfigError(f"off_resonance={quote(config.off_resonance)}: not with a {config.trajectory} trajectory (read-out times of a fixed spiral)")
    if config.trajectory in LEARNED_TRAJECTORIES and not config.density_compensation:
        raise ConfigError(f"density_compensation=False: a {config.trajectory} trajectory's Pipe-Menon density follows it, always on")
    if len(config.accelerations) != 1:
        raise ConfigError(f"accelerations={list(config.accelerations)}: a non-Cartesian run simulates one acceleration")
    if "image_shape" in config.model_config:
        raise ConfigError(f"model_config image_shape: the grid of '{config.model}' is the data's (options image_shape / volume_shape)")


_TYPES = {
    "model": str, "model_config": dict, "data_dir": "str?", "cache_dir": "str?", "coils": str, "mask_type": "str?",
    "accelerations": "numbers", "center_fractions": "numbers?", "trajectory": "str?", "trajectory_options": "dict?",
    "image_shape": "sizes?", "volume_shape": "sizes?", "density_compensation": "bool?", "off_resonance": "str?", "scale_factor": "number?", "virtual_coils": "int?", "coil_compression": "str?", "contrasts": "strings?",
    "slice_selection": str, "edge_slices": "number", "grid_shape": "sizes?", "phase_augmentation": bool, "loss": str, "optimizer": str, "learning_rate": "number", "epochs": int,
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
            raise ConfigError(f"{name}={quote(value)}: expected a non-empty list of {'numbers' if kind == 'numbers' else 'names'}")
        return tuple(items)
    if kind == "sizes":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{name}={quote(value)}: expected a list of positive integers")
        return tuple(value)
    expected = {"number": numbers.Real, "int": int, "str": str, "dict": dict, "bool": bool}.get(kind, kind)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ConfigError(f"{name}={quote(value)}: expected {getattr(expected, '__name__', kind)}")
    if isinstance(value, str) and "\0" in value:
        raise ConfigError(f"{name}={quote(value)}: holds a NUL character")
    return value


def check_plain_json(value, name):
    """Check that ``value`` holds plain JSON values only: strings, finite numbers, booleans, None, lists and objects of those.

    Constructor arguments may come from an untrusted ``config.json`` (a published folder, an
    ``hf://`` repository, a run directory): a dict with the keys of a serialized Keras object
    (`KERAS_OBJECT_KEYS`) is refused, so that none reaches ``keras.saving.deserialize_keras_object``
    (e.g. through ``activation``); so is a value of more than `MAX_JSON_VALUES` values.

    Args:
        value: the value (None passes).
        name: the field, for messages.

    Raises:
        ConfigError: naming the field and the part of it at fault (``model_config.activation``).
    """
    pending, count = [(name, value)], 0
    while pending:
        where, item = pending.pop()
        count += 1
        if count > MAX_JSON_VALUES:
            raise ConfigError(f"{name}: more than {MAX_JSON_VALUES} values; expected a constructor configuration")
        if isinstance(item, dict):
            keras_keys = [key for key in KERAS_OBJECT_KEYS if key in item]
            if keras_keys:
                raise ConfigError(
                    f"{where}={quote(item)}: looks like a serialized Keras object (keys {', '.join(keras_keys)}); "
                    "expected plain JSON values"
                )
            if not all(isinstance(key, str) for key in item):
                raise ConfigError(f"{where}={quote(item)}: expected an object with text keys")
            pending.extend((f"{where}.{key}", entry) for key, entry in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((f"{where}[{index}]", entry) for index, entry in enumerate(item))
        elif not (item is None or isinstance(item, (str, bool, int)) or (isinstance(item, float) and math.isfinite(item))):
            raise ConfigError(f"{where}={quote(item)}: expected plain JSON values (text, finite numbers, booleans, null, lists, objects)")


def _check_types(config):
    for name, kind in _TYPES.items():
        object.__setattr__(config, name, _check_value(name, getattr(config, name), kind))


SECTIONS = {
    "model": {"name": "model", "config": "model_config"},
    "acquisition": {name: name for name in (
        "mask_type", "accelerations", "center_fractions", "trajectory", "trajectory_options", "image_shape", "volume_shape",
        "density_compensation", "off_resonance",
    )},
    "data": {name: name for name in (
        "data_dir", "cache_dir", "coils", "contrasts", "slice_selection", "edge_slices", "grid_shape", "phase_augmentation",
        "scale_factor", "virtual_coils", "coil_compression",
    )},
    "loop": {name: name for name in (
        "loss", "optimizer", "learning_rate", "epochs", "steps_per_epoch", "batch_size", "validation_steps", "checkpoint_every",
    )},
    "runtime": {name: name for name in ("mixed_precision", "deterministic", "seed", "strategy", "output_dir", "run_name")},
}  # fmt: skip
"""section -> {key in the section: `TrainConfig` field}: every field in exactly one section."""


def _section_field(section, key, source):
    """The `TrainConfig` field of ``section.key``.

    Raises:
        ConfigError: for an unknown section or key, naming the known ones.
    """
    if section not in SECTIONS:
        raise ConfigError(f"{source}: unknown section {quote(section)} (sections: {', '.join(SECTIONS)})")
    if key not in SECTIONS[section]:
        raise ConfigError(f"{source}: unknown key {quote(f'{section}.{key}')[1:-1]} (keys of {section}: {', '.join(SECTIONS[section])})")
    return SECTIONS[section][key]


def flatten_sections(values, source="configuration"):
    """The flat form of a configuration that groups (some of) its keys in `SECTIONS`.

    A top-level key holding a mapping and named as a section is that section (``model`` holding a
    name stays the flat ``model``); the other keys are flat already.

    Args:
        values: dict of a configuration file (flat, sectioned or both).
        source: where the values come from, for error messages.

    Returns:
        dict of `TrainConfig` field values (not validated yet: `from_dict` does).

    Raises:
        ConfigError: for an unknown section or key, a section that is not a mapping, or a field given twice.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of option names to values")
    flat = {}
    for key, value in values.items():
        if key in SECTIONS and (isinstance(value, dict) or key != "model"):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {key}={quote(value)}: expected a mapping of its keys to values")
            items = [(_section_field(key, inner, source), f"{key}.{inner}", item) for inner, item in value.items()]
        else:
            items = [(key, key, value)]
        for field, written, item in items:
            if field in flat:
                raise ConfigError(f"{source}: {written} given twice (flat and in its section)")
            flat[field] = item
    return flat


def nest(flat):
    """The sectioned form of a flat configuration dict (inverse of `flatten_sections`)."""
    return {
        section: {key: flat[field] for key, field in keys.items() if field in flat}
        for section, keys in SECTIONS.items()
    }


def parse_value(text):
    """A command-line value read as YAML (``2``, ``[8, 16]``, ``true``, text), with exponent numbers
    such as ``3e-4`` and ``1e6`` read as numbers (YAML 1.1, PyYAML's, reads them as text).

    Raises:
        yaml.YAMLError: for text that is not YAML.
    """
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value) if math.isfinite(float(value)) else value
        except ValueError:
            return value
    return value


def set_override(values, assignment, source="--set"):
    """Apply one ``SECTION.KEY=VALUE`` override (``--set``) to a flat configuration dict, in place.

    ``VALUE`` is read by `parse_value` (``2``, ``3e-4``, ``[8, 16]``, ``true``, text). A longer path sets one
    entry of a mapping field: ``model.config.n_iter=5`` sets ``model_config["n_iter"]``,
    ``acquisition.trajectory_options.n_shots=8`` one trajectory argument.

    Args:
        values: flat dict of field values (changed).
        assignment: the ``SECTION.KEY[.ENTRY...]=VALUE`` text.
        source: the option's name, for error messages.

    Returns:
        the name of the field set.

    Raises:
        ConfigError: for a malformed assignment, an unknown section or key, a path into a field that
            is not a mapping, or a value that is not YAML.
    """
    path, sep, text = assignment.partition("=")
    parts = path.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"{source} {quote(assignment)}: expected SECTION.KEY=VALUE (sections: {', '.join(SECTIONS)})")
    field = _section_field(parts[0], parts[1], f"{source} {quote(assignment)}")
    try:
        value = parse_value(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} {quote(assignment)}: the value is not valid YAML ({' '.join(str(err).split())})") from None
    if len(parts) == 2:
        values[field] = value
        return field
    if _TYPES[field] not in (dict, "dict?"):
        raise ConfigError(f"{source} {quote(assignment)}: {parts[0]}.{parts[1]} is not a mapping; expected {parts[0]}.{parts[1]}=VALUE")
    target = values[field] = dict(values.get(field) or {})
    for part in parts[2:-1]:
        existing = target.get(part)
        target[part] = dict(existing) if isinstance(existing, dict) else {}
        target = target[part]
    target[parts[-1]] = value
    return field


def from_dict(values, source="configuration"):
    """A `TrainConfig` from a dict (flat or in `SECTIONS`), rejecting unknown keys.

    Args:
        values: dict of field values, flat or grouped in sections.
        source: where the values come from, for error messages (e.g. the file name).

    Raises:
        ConfigError: for an unknown key or a value of the wrong type.
    """
    values = flatten_sections(values, source)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(key) for key in set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {quote(', '.join(unknown))[1:-1]} (known: {', '.join(sorted(known))})")
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
