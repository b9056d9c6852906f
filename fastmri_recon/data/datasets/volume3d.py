"""3D non-Cartesian pipeline: volumes -> simulated stack-of-spirals / stack-of-radial / kooshball samples.

The NC-PDNet paper's 3D experiments simulate a single-coil 3D acquisition of magnitude brain volumes
(OASIS). Here the volumes come from

- a directory of NIfTI files (``.nii`` / ``.nii.gz``, e.g. OASIS-style T1 volumes), each read with
  nibabel when its example is produced and resampled (linear interpolation) to ``volume_shape``;
- or an array of volumes ``(n, D, H, W)`` in memory, such as `demo_volumes`: the MNI ICBM152 template
  shipped in nilearn's wheel (`data.demo`) under random rotations, scalings and shifts, at a reduced
  size for CPUs (32^3 or 48^3).

Each volume is normalised to a maximum magnitude of 1; its samples are the NUFFT of the volume on the
trajectory, computed with its plan and Pipe-Menon density once for the pipeline
(`noncartesian.SimulatedAcquisition`). The target is the magnitude volume.
"""

import math
from pathlib import Path

import nibabel
import numpy as np
import tensorflow as tf
from scipy import ndimage

from fastmri_recon.data.datasets.cartesian import check_config_type
from fastmri_recon.data.datasets.nc_config import Volume3DConfig
from fastmri_recon.data.datasets.noncartesian import SimulatedAcquisition
from fastmri_recon.data.demo import load_template
from fastmri_recon.errors import ConfigError, DataError

HEAD_CENTRE_VOXEL = (98.0, 117.0, 81.0)
"""Template voxel (x, y, z) at the centre of the head's bounding box."""

DEMO_FIELD_OF_VIEW_MM = 192.0
"""Side of the cubic field of view of the demo volumes (the template's voxels are 1 mm)."""

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def demo_volumes(n_volumes, shape=(32, 32, 32), seed=0, template=None):
    """Demo 3D volumes: the MNI template under random rigid-like deformations, resampled to ``shape``.

    Each volume is the template in a cubic ``DEMO_FIELD_OF_VIEW_MM`` field of view, rotated by up
    to 8 degrees about each axis, scaled by 0.92 to 1.08 and shifted by up to 5 mm (its own draw
    from ``seed``), with axes (inferior-superior, posterior-anterior, left-right).

    Args:
        n_volumes: number of volumes.
        shape: ``(D, H, W)``.
        seed: seed of the deformations (different seeds give different subjects).
        template: the output of `demo.load_template` (loaded if None).

    Returns:
        float32 ``(n_volumes, D, H, W)`` in ``[0, 1]`` (each volume's maximum is 1).
    """
    template = load_template() if template is None else template
    rng = np.random.default_rng([seed, 3])
    axes = [(np.arange(n) - n / 2 + 0.5) * (DEMO_FIELD_OF_VIEW_MM / n) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(3, -1)  # (z, y, x) in mm
    volumes = np.empty((n_volumes, *shape), np.float32)
    for index in range(n_volumes):
        rotation = _rotation(np.deg2rad(rng.uniform(-8, 8, 3)))
        scale = rng.uniform(0.92, 1.08)
        shift = rng.uniform(-5, 5, 3)
        z, y, x = (rotation @ grid) / scale + shift[:, None]
        coords = np.stack([x + HEAD_CENTRE_VOXEL[0], y + HEAD_CENTRE_VOXEL[1], z + HEAD_CENTRE_VOXEL[2]])
        volume = ndimage.map_coordinates(template, coords, order=1, cval=0.0).reshape(shape)
        volumes[index] = volume / max(float(volume.max()), 1e-12)
    return volumes


def _rotation(angles):
    """3 x 3 rotation matrix from three angles about the three axes."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [a for a in range(3) if a != axis]
        step = np.eye(3)
        step[i, i] = step[j, j] = math.cos(angle)
        step[i, j], step[j, i] = -math.sin(angle), math.sin(angle)
        matrix = step @ matrix
    return matrix


def nifti_paths(directory):
    """The NIfTI files of a directory, sorted by name.

    Raises:
        DataError: when the directory does not exist or holds no NIfTI file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory of NIfTI volumes")
    paths = sorted(p for p in directory.iterdir() if p.name.endswith(NIFTI_SUFFIXES))
    if not paths:
        raise DataError(f"{directory}: no NIfTI volume (.nii / .nii.gz)")
    return paths


def read_volume_resampled(path, shape):
    """A NIfTI volume, resampled to ``shape`` by linear interpolation and normalised to a maximum of 1.

    Args:
        path: a ``.nii`` / ``.nii.gz`` file with a 3D volume (or 4D with one frame).
        shape: ``(D, H, W)``.

    Returns:
        float32 ``shape``.

    Raises:
        DataError: naming the file, when it cannot be read, is not 3D or holds NaN / Inf.
    """
    try:
        volume = np.asarray(nibabel.load(path).dataobj, dtype=np.float32)
    except Exception as err:  # noqa: BLE001 - nibabel raises many kinds for bad files
        raise DataError(f"{path}: cannot read the NIfTI volume ({err})") from None
    volume = np.squeeze(volume)
    if volume.ndim != 3 or not np.all(np.isfinite(volume)):
        raise DataError(f"{path}: expected a finite 3D volume, got shape {volume.shape}")
    volume = np.abs(volume)
    zoomed = ndimage.zoom(volume, [n / s for n, s in zip(shape, volume.shape)], order=1, grid_mode=True, mode="nearest")
    zoomed = zoomed[tuple(slice(n) for n in shape)]
    return (zoomed / max(float(zoomed.max()), 1e-12)).astype(np.float32)


def volume3d_dataset(source, config=Volume3DConfig(), training=True):
    """The 3D non-Cartesian pipeline of a directory of NIfTI volumes or an array of volumes.

    Args:
        source: a directory of NIfTI files, or an array ``(n, D, H, W)`` of volumes (real or
            complex) of ``config.volume_shape`` (for example `demo_volumes`).
        config: `Volume3DConfig`.
        training: True: volumes shuffled with ``config.seed`` at every pass, incomplete batch
            dropped; False: in order, every batch.

    Returns:
        ``tf.data.Dataset`` of ``((kspace, trajectory, density), target)``: kspace complex64
        ``(batch, M)``, trajectory float32 ``(batch, 3, M)``, density float32 ``(batch, M)``, target
        float32 ``(batch, D, H, W)``; samples and targets multiplied by ``config.scale_factor``.

    Raises:
        DataError: for a missing or empty directory, or an unreadable volume (when it is read).
        ConfigError: for a configuration that is not a `Volume3DConfig`, or an array of another shape.
    """
    check_config_type(config, Volume3DConfig)
    shape = config.volume_shape
    if isinstance(source, (str, Path)):
        paths = nifti_paths(source)
        count = len(paths)

        def load(index):
            return read_volume_resampled(paths[int(index)], shape).astype(np.complex64)

    else:
        volumes = np.asarray(source)
        if volumes.ndim != 4 or volumes.shape[1:] != shape:
            raise ConfigError(f"volumes of shape {volumes.shape}: expected (n, *volume_shape) = (n, *{shape})")
        volumes = volumes.astype(np.complex64)
        count = volumes.shape[0]

        def load(index):
            return volumes[int(index)]

    acquisition = SimulatedAcquisition(
        config.trajectory, shape, config.acceleration, config.trajectory_options, config.density_iterations,
        config.nufft_eps,
    )
    scale = tf.constant(config.scale_factor, tf.complex64)

    def example(index):
        volume = tf.numpy_function(load, [index], tf.complex64, stateful=False)
        volume = tf.ensure_shape(volume, shape) * scale
        return (acquisition.sample(volume), acquisition.trajectory, acquisition.density), tf.abs(volume)

    dataset = tf.data.Dataset.range(count)
    if training:
        dataset = dataset.shuffle(count, seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(config.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
