"""Validated configurations of the non-Cartesian pipelines: `NonCartesianConfig` (2D slices of fastMRI
files, `noncartesian.noncartesian_dataset`) and `Volume3DConfig` (3D volumes,
`volume3d.volume3d_dataset`).

The acquisition is simulated: the pipelines compute the trajectory of ``trajectory`` at
``acceleration`` (`data.trajectories.make_trajectory`, with ``trajectory_options`` as extra
arguments, e.g. ``{"n_shots": 8}`` for spirals) once for the image grid, its Pipe-Menon density
compensation once (`data.density.pipe_menon_density`, ``density_iterations`` iterations), and the
NUFFT of every image at accuracy ``nufft_eps``.
"""

import dataclasses
import math
import numbers

from fastmri_recon.data.datasets.config import SliceOptions, check_seed, check_shape, fail_field, is_int
from fastmri_recon.data.trajectories import make_trajectory, trajectory_kind_names
from fastmri_recon.errors import ConfigError

TRAJECTORIES_2D = trajectory_kind_names(dimensions=2, learned=False)
"""The fixed 2D kinds of `data.trajectories.TRAJECTORY_KINDS`: the `NonCartesianConfig` trajectories."""
TRAJECTORIES_3D = trajectory_kind_names(dimensions=3, learned=False)
"""The fixed 3D kinds of `data.trajectories.TRAJECTORY_KINDS`: the `Volume3DConfig` trajectories."""
NC_SENSITIVITY_METHODS = ("acs", "lowres")
OFF_RESONANCE = ("simulated", "known")
"""`NonCartesianConfig.off_resonance` values (besides None)."""


def _check_number(field, value, low, high, low_open=True):
    """``value`` must be a real number in ``(low, high)`` (``[low, high)`` if not ``low_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value < high
    if not ok:
        fail_field(field, value, f"a number in {'(' if low_open else '['}{low}, {high})")


def _check_acquisition(config, kinds, probe_shape):
    """Checks of the simulated acquisition: trajectory kind and options, acceleration, density, NUFFT."""
    if config.trajectory not in kinds:
        fail_field("trajectory", config.trajectory, f"one of {kinds}")
    _check_number("acceleration", config.acceleration, 0, math.inf)
    options = config.trajectory_options
    if options is None:
        options = {}
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        fail_field("trajectory_options", config.trajectory_options, "None or a dict of trajectory arguments")
    object.__setattr__(config, "trajectory_options", dict(options))
    try:  # a cheap probe: unknown or invalid options fail here, not in the middle of a pipeline
        make_trajectory(config.trajectory, probe_shape, config.acceleration, **options)
    except (TypeError, ConfigError) as err:
        raise ConfigError(f"trajectory_options={options!r} for a {config.trajectory} trajectory: {err}") from None
    if not is_int(config.density_iterations) or config.density_iterations < 1:
        fail_field("density_iterations", config.density_iterations, "a positive integer")
    _check_number("nufft_eps", config.nufft_eps, 0, 1)


@dataclasses.dataclass(frozen=True)
class NonCartesianConfig(SliceOptions):
    """Configuration of the 2D non-Cartesian pipeline of fastMRI-format files (`noncartesian_dataset`).

    Attributes:
        trajectory: ``"radial"`` (golden-angle spokes) or ``"spiral"`` (interleaved Archimedean).
        acceleration: factor against the Nyquist number of readouts (`data.trajectories`).
        trajectory_options: None or extra arguments of the trajectory function (``n_shots``,
            ``readout_oversampling``, ...).
        image_shape: the image grid ``(H, W)`` the acquisition is simulated on, or None for the
            files' target size (all files must then share it). The fully-sampled image of each
            file is cropped / zero-padded to it around the target's crop window (same pixel size).
            The models' ``image_shape`` must be the same.
        density_iterations: iterations of the Pipe-Menon density compensation.
        nufft_eps: accuracy of the NUFFT that simulates the samples.
        sensitivity_maps: multi-coil files only: ``"acs"`` (maps estimated from the centre
            columns of the file's Cartesian k-space, `sensitivity.acs_sensitivity_maps`, as from a
            calibration scan), ``"lowres"`` (from the non-Cartesian samples themselves inside a
            centre disc, `sensitivity.nc_lowres_sensitivity_maps`) or None (no maps in the inputs).
        calibration_fraction: in ``(0, 1)``; ``"acs"``: fraction of the k-space columns in the
            centre band; ``"lowres"``: radius of the centre disc as a fraction of ``pi``.
        acs_threshold: background threshold of the maps, relative to the maximum of the
            low-resolution root-sum-of-squares image.
        off_resonance: None (on-resonance samples), ``"simulated"`` (each slice's samples carry the
            off-resonance of the file's B0 field map, `data.h5.FIELD_MAP_KEY`, which the model is not
            given) or ``"known"`` (the same samples, and the model's inputs end with the field map
            and the samples' read-out times). Spiral trajectories only (their read-out times follow
            from the interleaves, `data.field_maps.spiral_readout_times`); every file needs a map
            (the demo data's have one).
        dwell_time: with ``off_resonance``: seconds between two samples of an interleaf (> 0).
        echo_time: with ``off_resonance``: time of each interleaf's first sample, seconds (>= 0).

    The other attributes (slices, batches, scale, seed, phase augmentation) are
    `config.SliceOptions`'. On the demo data, phase augmentation mattered: a validation subject whose
    phase lay outside the training subjects' range was reconstructed worse than by the adjoint without it.

    Raises:
        ConfigError: naming the first invalid field.
    """

    trajectory: str = "radial"
    acceleration: float = 4
    trajectory_options: dict = None
    image_shape: tuple = None
    density_iterations: int = 10
    nufft_eps: float = 1e-5
    sensitivity_maps: str = "acs"
    calibration_fraction: float = 0.08
    acs_threshold: float = 0.05
    off_resonance: str = None
    dwell_time: float = 10e-6
    echo_time: float = 1e-3

    def __post_init__(self):
        check_shape(self, "image_shape", 2, optional=True)
        _check_acquisition(self, TRAJECTORIES_2D, self.image_shape or (16, 16))
        if self.off_resonance is not None:
            if self.off_resonance not in OFF_RESONANCE:
                fail_field("off_resonance", self.off_resonance, f"None or one of {OFF_RESONANCE}")
            if self.trajectory != "spiral":
                fail_field("off_resonance", self.off_resonance, "None with a radial trajectory (read-out times are a spiral's)")
        _check_number("dwell_time", self.dwell_time, 0, 1)
        _check_number("echo_time", self.echo_time, 0, 1, low_open=False)
        if self.sensitivity_maps is not None and self.sensitivity_maps not in NC_SENSITIVITY_METHODS:
            fail_field("sensitivity_maps", self.sensitivity_maps, f"None or one of {NC_SENSITIVITY_METHODS}")
        _check_number("calibration_fraction", self.calibration_fraction, 0, 1)
        _check_number("acs_threshold", self.acs_threshold, 0, 1, low_open=False)
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class Volume3DConfig:
    """Configuration of the 3D non-Cartesian pipeline of volumes (`volume3d_dataset`).

    Attributes:
        trajectory: ``"stack_of_spirals"``, ``"stack_of_radial"`` or ``"kooshball"``.
        acceleration: factor against the Nyquist number of readouts (in-plane for the stacks).
        trajectory_options: None or extra arguments of the trajectory function.
        volume_shape: the volume grid ``(D, H, W)`` every volume is resampled to.
        density_iterations: iterations of the Pipe-Menon density compensation.
        nufft_eps: accuracy of the NUFFT that simulates the samples.
        batch_size: volumes per batch.
        scale_factor: factor applied to samples and targets (volumes are normalised to a maximum of 1).
        seed: seed of the shuffling in training.

    Raises:
        ConfigError: naming the first invalid field.
    """

    trajectory: str = "stack_of_spirals"
    acceleration: float = 4
    trajectory_options: dict = None
    volume_shape: tuple = (32, 32, 32)
    density_iterations: int = 10
    nufft_eps: float = 1e-5
    batch_size: int = 1
    scale_factor: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_shape(self, "volume_shape", 3)
        _check_acquisition(self, TRAJECTORIES_3D, (4, 8, 8))
        if not is_int(self.batch_size) or self.batch_size < 1:
            fail_field("batch_size", self.batch_size, "a positive integer")
        _check_number("scale_factor", self.scale_factor, 0, math.inf)
        check_seed(self)
