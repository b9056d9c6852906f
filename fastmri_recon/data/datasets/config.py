"""Validated configurations of the tf.data pipelines: one dataclass per pipeline.

Scaling. Every pipeline multiplies k-space and targets by ``scale_factor`` (default
`DEFAULT_SCALE_FACTOR` = 1e6, as the original fastMRI reproducible benchmark did: raw fastMRI values
are around 1e-6 to 1e-3, the demo data's likewise). A fixed factor keeps the physics linear and the
same for every slice, needs no statistic of the data, and is undone exactly by dividing a model's
output by ``config.scale_factor`` (the fastMRI metrics do not depend on it; files written for
submission must be divided).
"""

import dataclasses
import math
import numbers
import os

from fastmri_recon.data.coil_compression import slice_compression
from fastmri_recon.data.masks import MASK_TYPES, MaskSampler, default_center_fraction
from fastmri_recon.errors import ConfigError

DEFAULT_SCALE_FACTOR = 1e6
"""Factor applied to k-space and targets by default (fastMRI reproducible benchmark's choice)."""

SLICE_SELECTIONS = ("all", "random")
SENSITIVITY_METHODS = ("acs", "espirit")


def fail_field(field, value, expected):
    """Raise the ConfigError ``"{field}={value!r}: expected {expected}"``."""
    raise ConfigError(f"{field}={value!r}: expected {expected}")


def is_int(value):
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(field, value):
    if not is_int(value) or value < 1:
        fail_field(field, value, "a positive integer")


def _check_compression(config):
    """Check ``virtual_coils`` / ``coil_compression`` (through `SliceCompression`) when coils are compressed."""
    if config.virtual_coils is not None:
        config.compression()


def check_common(config):
    """Checks shared by every configuration: batch size, scale factor, contrasts, flags."""
    _check_positive_int("batch_size", config.batch_size)
    scale = config.scale_factor
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or not (0 < scale < math.inf):
        fail_field("scale_factor", scale, "a finite number > 0")
    if config.contrasts is not None:
        contrasts = (config.contrasts,) if isinstance(config.contrasts, str) else config.contrasts
        if not contrasts or not all(isinstance(c, str) and c for c in contrasts):
            fail_field("contrasts", config.contrasts, "None or a non-empty list of acquisition names such as 'CORPD_FBK'")
        object.__setattr__(config, "contrasts", tuple(contrasts))
    if not isinstance(config.skip_bad_files, bool):
        fail_field("skip_bad_files", config.skip_bad_files, "True or False")


def check_slices(config):
    """Checks of the slice selection of the file-based pipelines."""
    if config.slice_selection not in SLICE_SELECTIONS:
        fail_field("slice_selection", config.slice_selection, f"one of {SLICE_SELECTIONS}")
    edge = config.edge_slices
    if not (is_int(edge) and edge >= 0) and not (isinstance(edge, float) and 0 <= edge < 0.5):
        fail_field("edge_slices", edge, "an int >= 0 (slices) or a float in [0, 0.5) (fraction of the slices)")


def check_shape(config, field, ndim, optional=False):
    """``config.<field>`` must be ``ndim`` positive integers (or None if ``optional``); stored as a tuple."""
    value = getattr(config, field)
    if value is None and optional:
        return
    names = "(H, W)" if ndim == 2 else "(D, H, W)"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != ndim or not all(
        is_int(s) and s >= 1 for s in value
    ):
        fail_field(field, value, f"{'None or ' if optional else ''}{ndim} positive integers {names}")
    object.__setattr__(config, field, tuple(int(s) for s in value))


def check_seed(config):
    """``config.seed`` must be an integer >= 0."""
    if not is_int(config.seed) or config.seed < 0:
        fail_field("seed", config.seed, "an integer >= 0")


def _check_cache_dir(config):
    """``config.cache_dir`` must be None or a directory path; stored as a str."""
    value = config.cache_dir
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        fail_field("cache_dir", value, "None or the path of a TFRecord cache directory")
    object.__setattr__(config, "cache_dir", os.fspath(value))


def _check_sensitivity(config):
    if config.sensitivity_maps is not None and config.sensitivity_maps not in SENSITIVITY_METHODS:
        fail_field("sensitivity_maps", config.sensitivity_maps, f"None or one of {SENSITIVITY_METHODS}")
    threshold = config.acs_threshold
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not 0 <= threshold < 1:
        fail_field("acs_threshold", threshold, "a number in [0, 1)")


@dataclasses.dataclass(frozen=True)
class SliceOptions:
    """What every train / validation pipeline of fastMRI files shares: which slices, in what batches, scaled how.

    `SinglecoilConfig` (and `MulticoilConfig`) and `nc_config.NonCartesianConfig` are this plus their
    acquisition's fields; each field is declared and checked here only.

    Attributes:
        slice_selection: ``"all"``: every slice (within ``edge_slices``) is an example;
            ``"random"``: one random slice per volume per epoch (per pass over the data set).
        edge_slices: slices dropped at each end of every volume: an int (a number of slices) or a
            float in [0, 0.5) (a fraction of the volume's slices, rounded down); 0 keeps them all.
        contrasts: None for every file, or the ``acquisition`` attributes to keep
            (e.g. ``("CORPD_FBK",)``).
        batch_size: examples per batch; with a ``tf.distribute.InputContext`` the global batch size,
            split between the replicas.
        scale_factor: factor applied to k-space (samples) and targets (see the module docstring).
        seed: seed of the shuffling, of the slice draws and of the training masks (non-Cartesian:
            the trajectory is fixed).
        skip_bad_files: False: a corrupt or non-conforming file raises a `DataError` naming it
            when the pipeline is built; True: it is skipped with a warning naming it.
        phase_augmentation: in training, multiply each example's k-space (samples) by a random
            global phase (`transforms.random_global_phase`, drawn from the example's seed, anew at
            each pass; the magnitude target is unchanged). Complex networks are not
            phase-equivariant and a few training subjects cover few image phases.

    Raises:
        ConfigError: naming the first invalid field.
    """

    slice_selection: str = "all"
    edge_slices: float = 0
    contrasts: tuple = None
    batch_size: int = 1
    scale_factor: float = DEFAULT_SCALE_FACTOR
    seed: int = 0
    skip_bad_files: bool = False
    phase_augmentation: bool = False

    def __post_init__(self):
        if not isinstance(self.phase_augmentation, bool):
            fail_field("phase_augmentation", self.phase_augmentation, "True or False")
        check_slices(self)
        check_common(self)
        check_seed(self)


@dataclasses.dataclass(frozen=True)
class SinglecoilConfig(SliceOptions):
    """Configuration of the single-coil train / validation pipeline (`singlecoil_dataset`).

    Attributes:
        mask_type: kind of undersampling mask, one of ``masks.MASK_TYPES`` (``"random"``,
            ``"equispaced"``, ``"equispaced_fraction"``, ``"magic"``, ``"magic_fraction"``).
        accelerations: accelerations; one ``(center_fraction, acceleration)`` pair is drawn per
            example in training, per volume (seeded by the file name) in validation.
        center_fractions: center fractions paired with ``accelerations``; None gives fastMRI's
            (0.08 for 4, 0.04 for 8).
        grid_shape: None (keep each file's k-space size: files of different sizes then need
            ``batch_size=1``), or the image grid ``(H, W)`` every example is brought to before
            undersampling, by cropping / zero-padding the fully sampled image around the target's
            crop (same pixel size, so the target stays aligned), e.g. ``(320, 368)`` for knee data.
            Must be at least the target size.
        cache_dir: None (read the slices from the HDF5 files), or a TFRecord cache of the
            pipeline's directory (`tfrecord.build_cache`, ``fastmri-recon cache-tfrecords``) to
            read them from instead: same volumes, same slices, same batches; the cache is checked
            against the directory's files when the pipeline is built (`tfrecord.CacheError` when it
            is stale or of another directory).

    The other attributes (slices, batches, scale, seed) are `SliceOptions`'.

    Raises:
        ConfigError: naming the first invalid field.
    """

    mask_type: str = "random"
    accelerations: tuple = (4,)
    center_fractions: tuple = None
    grid_shape: tuple = None
    cache_dir: str = None

    def __post_init__(self):
        self._check_masks()
        super().__post_init__()
        check_shape(self, "grid_shape", 2, optional=True)
        _check_cache_dir(self)

    def _check_masks(self):
        if self.mask_type not in MASK_TYPES:
            fail_field("mask_type", self.mask_type, f"one of {sorted(MASK_TYPES)}")
        accelerations = (self.accelerations,) if isinstance(self.accelerations, numbers.Real) else self.accelerations
        if isinstance(accelerations, str) or not accelerations:
            fail_field("accelerations", self.accelerations, "a non-empty list of numbers >= 1")
        object.__setattr__(self, "accelerations", tuple(accelerations))
        if self.center_fractions is None:
            try:
                fractions = tuple(default_center_fraction(a) for a in self.accelerations)
            except (ValueError, TypeError) as err:
                raise ConfigError(f"center_fractions=None: {err}; give center_fractions") from None
            object.__setattr__(self, "center_fractions", fractions)
        elif isinstance(self.center_fractions, numbers.Real):
            object.__setattr__(self, "center_fractions", (self.center_fractions,))
        else:
            object.__setattr__(self, "center_fractions", tuple(self.center_fractions))
        try:
            self.mask_sampler()
        except (ValueError, TypeError) as err:
            pairs = f"accelerations={self.accelerations}, center_fractions={self.center_fractions}"
            raise ConfigError(f"{pairs}: {err}") from None

    def mask_sampler(self):
        """The `MaskSampler` of this configuration's masks."""
        return MaskSampler(self.mask_type, list(self.center_fractions), list(self.accelerations))


@dataclasses.dataclass(frozen=True)
class MulticoilConfig(SinglecoilConfig):
    """Configuration of the multi-coil train / validation pipeline (`multicoil_dataset`).

    Attributes:
        sensitivity_maps: None (inputs ``(kspace, mask)``), ``"acs"`` (maps from the undersampled
            k-space's auto-calibration columns, in TensorFlow: `sensitivity.acs_sensitivity_maps`)
            or ``"espirit"`` (`sensitivity.espirit_maps`, NumPy, slow; it needs an ACS band wider
            than a few columns); the inputs are then ``(kspace, mask, smaps)``.
        acs_threshold: background threshold of the ``"acs"`` maps, relative to the maximum of the
            low-resolution root-sum-of-squares image.
        virtual_coils: None (keep the files' coils), or compress each slice's undersampled k-space
            to this many virtual coils (`coil_compression.SliceCompression`) before the maps are
            estimated; at most the files' coil count.
        coil_compression: ``"svd"`` or ``"geometric"``, with ``virtual_coils``.

    The other attributes are `SinglecoilConfig`'s.
    """

    sensitivity_maps: str = None
    acs_threshold: float = 0.05
    virtual_coils: int = None
    coil_compression: str = "svd"

    def __post_init__(self):
        super().__post_init__()
        _check_sensitivity(self)
        _check_compression(self)

    def compression(self):
        """The `SliceCompression` applied to every slice, or None."""
        return slice_compression(self.virtual_coils, self.coil_compression)


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Configuration of the test / inference pipeline (`inference_dataset`).

    Attributes:
        batch_size: consecutive slices of one volume per element (a batch never mixes volumes).
        scale_factor: factor applied to k-space; divide reconstructions by it to write them.
        contrasts: None for every file, or the ``acquisition`` attributes to keep.
        sensitivity_maps: None, ``"acs"`` or ``"espirit"`` (multi-coil files only), as in
            `MulticoilConfig`.
        acs_threshold: background threshold of the ``"acs"`` maps.
        skip_bad_files: skip a corrupt or non-conforming file with a warning instead of raising.
        virtual_coils: None, or compress each slice to this many virtual coils (multi-coil files),
            as in `MulticoilConfig`.
        coil_compression: ``"svd"`` or ``"geometric"``, with ``virtual_coils``.

    Raises:
        ConfigError: naming the first invalid field.
    """

    batch_size: int = 8
    scale_factor: float = DEFAULT_SCALE_FACTOR
    contrasts: tuple = None
    sensitivity_maps: str = None
    acs_threshold: float = 0.05
    skip_bad_files: bool = False
    virtual_coils: int = None
    coil_compression: str = "svd"

    def __post_init__(self):
        check_common(self)
        _check_sensitivity(self)
        _check_compression(self)

    def compression(self):
        """The `SliceCompression` applied to every slice, or None."""
        return slice_compression(self.virtual_coils, self.coil_compression)
