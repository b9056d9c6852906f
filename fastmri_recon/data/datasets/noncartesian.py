"""2D non-Cartesian train / validation pipeline: fastMRI-format files -> simulated radial / spiral samples.

fastMRI files hold Cartesian k-space; the non-Cartesian acquisition is simulated as in the NC-PDNet
paper. For each slice: the fully-sampled k-space is transformed to an image (one per coil), cropped
or zero-padded to the image grid ``image_shape`` around the target's crop window
(`transforms.window_image`; by default the grid is the target size), and sampled on the trajectory
by the NUFFT (``F_nu x`` single-coil, ``F_nu x_c`` per coil). The trajectory (radial or spiral at
the configured acceleration, `data.trajectories`), its NUFFT plan and its Pipe-Menon density
compensation (`data.density`) are computed once, when the pipeline is built: every example of a
pipeline shares them.

In training, ``config.phase_augmentation`` multiplies each example's samples by a random global
phase ``exp(i theta)``: the encoding being linear, these are the samples of ``exp(i theta) x``, whose
magnitude target is the same.

Multi-coil files get sensitivity maps (``config.sensitivity_maps``): ``"acs"`` estimates them from
the centre columns of the file's Cartesian k-space (`sensitivity.acs_sensitivity_maps`, as from a
calibration scan), windowed like the coil images; ``"lowres"`` from the simulated non-Cartesian
samples inside a centre disc (`sensitivity.nc_lowres_sensitivity_maps`). The target is the file's
(``reconstruction_esc`` / ``reconstruction_rss``); with normalised maps it is the magnitude of the
coil-combined image the models reconstruct.

With ``config.off_resonance`` (spiral trajectories), each slice's samples are those of the off-resonant
encoding of the file's B0 field map (`data.h5.FIELD_MAP_KEY`, on the target's grid, centred on the image grid
with zeros around it) and of the spiral's read-out times (`data.field_maps.spiral_readout_times`), by time
segmentation (`ops.off_resonance.OffResonanceEncoding`, within 1e-3 of the exact sum for the demo data's
fields); ``"known"`` also gives the map and the times to the model.

File listing, checks, sharding, slice selection and shuffling are the Cartesian pipelines'
(`cartesian`, `volumes`); samples and targets are multiplied by ``config.scale_factor``.
"""

import tensorflow as tf

from fastmri_recon.data.datasets.cartesian import replica_batch_size, batched_dataset, check_config_type, example_indices
from fastmri_recon.data.datasets.nc_config import NonCartesianConfig
from fastmri_recon.data.datasets.transforms import random_global_phase, volume_geometry, window_image
from fastmri_recon.data.datasets.volumes import common_shape, scan_volumes, slice_reader, shard_volumes
from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.field_maps import spiral_readout_times
from fastmri_recon.data.masks import tf_center_lines, tf_num_low
from fastmri_recon.data.sensitivity import acs_sensitivity_maps, nc_lowres_sensitivity_maps
from fastmri_recon.data.trajectories import SPIRAL_SHOTS, make_trajectory
from fastmri_recon.data.h5 import FIELD_MAP_KEY
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.fourier import ifft2c
from fastmri_recon.ops.nufft import NUFFTPlan
from fastmri_recon.ops.off_resonance import OffResonanceEncoding


class SimulatedAcquisition:
    """A trajectory with its NUFFT plan and density compensation, computed once for an image grid.

    Args:
        kind: trajectory kind (`data.trajectories.KINDS`).
        image_shape: the image grid ``(H, W)`` or ``(D, H, W)``.
        acceleration: acceleration factor.
        options: extra arguments of the trajectory function.
        density_iterations: Pipe-Menon iterations.
        eps: NUFFT accuracy of the simulation.

    Attributes:
        trajectory: float32 tensor ``(ndim, M)``; ``density``: float32 tensor ``(M,)``;
        plan: the shared `ops.nufft.NUFFTPlan`; ``image_shape``: tuple of ints.
    """

    def __init__(self, kind, image_shape, acceleration, options, density_iterations, eps):
        self.image_shape = tuple(image_shape)
        self.trajectory = tf.constant(make_trajectory(kind, image_shape, acceleration, **options))
        self.plan = NUFFTPlan(self.trajectory, self.image_shape, eps=eps)
        self.density = pipe_menon_density(self.trajectory, self.image_shape, n_iter=density_iterations)

    def sample(self, images):
        """Non-Cartesian samples of images ``(..., *image_shape)`` complex64 -> ``(..., M)``."""
        return self.plan.forward(images)

    def sample_off_resonance(self, images, field_map, readout_times):
        """Off-resonant samples of one slice's (coil) images ``([coils,] *image_shape)`` complex64 -> ``([coils,] M)``.

        Args:
            images: complex64 ``([coils,] *image_shape)``.
            field_map: float32 ``image_shape``, Hz.
            readout_times: float32 ``(M,)``, seconds.
        """
        encoding = OffResonanceEncoding(self.trajectory, field_map[None], readout_times, self.image_shape, plan=self.plan)
        return encoding.forward(images[None])[0]


def calibration_band(num_cols, fraction):
    """float32 ``(num_cols,)``: the centre band of ``max(1, round(num_cols * fraction))`` columns (fastMRI's placement)."""
    return tf.cast(tf_center_lines(num_cols, tf.maximum(tf_num_low(num_cols, fraction), 1)), tf.float32)


def noncartesian_dataset(directory, config=NonCartesianConfig(), training=True, input_context=None, images=False):
    """The non-Cartesian train / validation pipeline of a directory of fastMRI files (single- or multi-coil).

    Args:
        directory: a directory of fastMRI files with targets, all single-coil or all multi-coil
            (the first file decides).
        config: `NonCartesianConfig`.
        training: True: shuffling, incomplete batch dropped; False: files' order, every batch.
        input_context: optional ``tf.distribute.InputContext`` (sharding by file, per-replica batch).
        images: give the (coil) images on the grid instead of their samples, for a model that
            samples them on its own (learned) trajectory (`models.learned_trajectory`): inputs
            ``images`` complex64 ``(batch, [coils,] H, W)`` or ``(images, smaps)`` (``"acs"`` maps
            only: the ``"lowres"`` ones depend on the trajectory); phase augmentation multiplies the
            images. ``config.trajectory`` is then not simulated.

    Returns:
        ``tf.data.Dataset`` of ``((kspace, trajectory, density), target)``, or
        ``((kspace, trajectory, density, smaps), target)`` for multi-coil files with
        ``config.sensitivity_maps``: kspace complex64 ``(batch, M)`` or ``(batch, coils, M)``,
        trajectory float32 ``(batch, 2, M)``, density float32 ``(batch, M)``, smaps complex64
        ``(batch, coils, H, W)`` (``image_shape``), target float32 ``(batch, h, w)``; samples and
        targets multiplied by ``config.scale_factor``. With ``off_resonance="known"`` the inputs
        end with the field map float32 ``(batch, H, W)`` (Hz) and the read-out times float32
        ``(batch, M)`` (seconds).

    Raises:
        DataError: naming the file, for a corrupt or non-conforming file (unless
            ``config.skip_bad_files``) or one without a field map with ``off_resonance``; naming
            the directory when no file is usable.
        ConfigError: when the configuration is not a `NonCartesianConfig` or does not fit the data
            (image grid smaller than a target, targets of different sizes without ``image_shape``).
    """
    check_config_type(config, NonCartesianConfig)
    volumes = scan_volumes(directory, None, True, config.contrasts, config.skip_bad_files)
    multicoil = len(volumes[0].kspace_shape) == 3
    volumes = shard_volumes(volumes, input_context)
    batch_size = replica_batch_size(config, input_context)
    target_shape = common_shape([v.target_shape for v in volumes])
    image_shape = config.image_shape or target_shape
    if None in image_shape:
        raise ConfigError(
            f"image_shape=None: the files' targets differ in size ({sorted({v.target_shape for v in volumes})}); "
            "give an image_shape"
        )
    if batch_size > 1 and None in target_shape:
        raise ConfigError(f"batch_size={config.batch_size}: the files' targets differ in size; use batch_size=1")
    offsets = tf.constant([volume_geometry(v, image_shape)[2] for v in volumes], tf.int32)
    maps = config.sensitivity_maps if multicoil else None
    if images and maps == "lowres":
        raise ConfigError("sensitivity_maps='lowres': estimated from the trajectory's samples; a learned trajectory needs 'acs' maps")
    if not images:
        acquisition = SimulatedAcquisition(
            config.trajectory, image_shape, config.acceleration, config.trajectory_options, config.density_iterations,
            config.nufft_eps,
        )
    off_resonance = config.off_resonance
    if off_resonance is not None:
        if images:
            raise ConfigError(f"off_resonance={off_resonance!r}: not with a learned trajectory (its read-out times are not a fixed spiral's)")
        missing = [v.path for v in volumes if not v.has_field_map]
        if missing:
            raise DataError(f"{missing[0]}: no '{FIELD_MAP_KEY}' dataset (B0 field map); off_resonance={off_resonance!r} needs one in every file")
        n_shots = config.trajectory_options.get("n_shots", SPIRAL_SHOTS)
        readout_times = tf.constant(spiral_readout_times(acquisition.trajectory.numpy(), n_shots, config.dwell_time, config.echo_time))
    scale = tf.constant(config.scale_factor, tf.complex64)
    read = slice_reader(volumes, common_shape([v.kspace_shape for v in volumes]), target_shape, off_resonance is not None)

    def example(file_index, slice_index, seed):
        kspace, target, *file_field_map = read(file_index, slice_index)  # the field map with off_resonance
        grid_images = window_image(ifft2c(kspace * scale), offsets[file_index], image_shape)
        if images:
            inputs = (random_global_phase(grid_images, seed) if training and config.phase_augmentation else grid_images,)
        elif off_resonance is None:
            samples = acquisition.sample(grid_images)
        else:  # the file's map on the target's grid, centred on the image grid
            field_map = tf.image.resize_with_crop_or_pad(file_field_map[0][..., None], *image_shape)[..., 0]
            samples = acquisition.sample_off_resonance(grid_images, field_map, readout_times)
        if not images:
            if training and config.phase_augmentation:
                samples = random_global_phase(samples, seed)
            inputs = (samples, acquisition.trajectory, acquisition.density)
        if maps == "acs":
            band = calibration_band(tf.shape(kspace)[-1], config.calibration_fraction)
            smaps = acs_sensitivity_maps(kspace, band, config.acs_threshold)
            inputs += (window_image(smaps, offsets[file_index], image_shape),)
        elif maps == "lowres":
            inputs += (
                nc_lowres_sensitivity_maps(
                    samples, acquisition.trajectory, image_shape, acquisition.density,
                    config.calibration_fraction, config.acs_threshold, plan=acquisition.plan,
                ),
            )
        if off_resonance == "known":
            inputs += (field_map, readout_times)
        return (inputs[0] if len(inputs) == 1 else inputs), target * config.scale_factor

    return batched_dataset(example_indices(volumes, config, training), example, batch_size, training, input_context)
