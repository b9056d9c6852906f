"""Evaluating a reconstruction model or baseline on a directory of fastMRI files (or of 3D volumes).

One loop serves every method. `undersampled_volumes` is the seam where the acquisition decides how
each volume's model inputs are produced:

- Cartesian (a `MaskSampler`): each volume's fully-sampled k-space is undersampled with a mask
  seeded by the file name (the same mask for every slice, and for every method: fastMRI's
  validation protocol); inputs ``(kspace, mask[, smaps])``;
- non-Cartesian (a `NonCartesianAcquisition`): the samples are simulated by the non-Cartesian
  pipelines in validation order (`data.datasets.noncartesian` for slices of fastMRI files,
  `data.datasets.volume3d` for 3D volumes): one trajectory with its density for every volume (as in
  training and in the NC-PDNet paper) and a deterministic NUFFT, so every method sees the same
  samples; inputs ``(kspace, trajectory, density[, smaps])``.

The loop then reconstructs each volume batch by batch (timing the model calls only) and compares it
with its target by the fastMRI metrics (`evaluate.metrics`); a 3D volume is compared as a stack of
its depth slices.
"""

import dataclasses
import itertools
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from fastmri_recon.data.acquisition import NonCartesianAcquisition, describe_acquisition
from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR
from fastmri_recon.data.datasets.volume3d import nifti_paths
from fastmri_recon.data.datasets.volumes import reading_errors
from fastmri_recon.data.h5 import FastMRIFile, list_volumes
from fastmri_recon.data.masks import MaskSampler, seeded_volume_mask
from fastmri_recon.data.sensitivity import acs_sensitivity_maps
from fastmri_recon.errors import ConfigError, DataError, quote
from fastmri_recon.evaluate.metrics import MetricsSummary, evaluate_volume
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.progress import progress_bar


def volume_mask(handle, sampler):
    """The sampling mask of a volume: the file's own ``mask`` if it has one, else a drawn one.

    A drawn mask is seeded by the file name and its columns outside the header's acquired range
    (``padding_left`` / ``padding_right``) are zeroed, as fastMRI does.

    Args:
        handle: an open `FastMRIFile`.
        sampler: a `MaskSampler`.

    Returns:
        float32 ``(W,)``.
    """
    if handle.mask is not None:
        return handle.mask
    padding = (handle.header.padding_left, handle.header.padding_right)
    return seeded_volume_mask(sampler, handle.path.name, handle.kspace_shape[-1], padding)


def cartesian_batches(model, handle, mask, batch_size=8, scale_factor=DEFAULT_SCALE_FACTOR, compression=None):
    """The Cartesian model inputs of every slice of a volume, ``batch_size`` slices at a time.

    k-space is multiplied by ``scale_factor`` (as the training pipelines do), undersampled, and,
    with a ``compression``, each slice compressed to virtual coils from its acquired samples (as the
    multi-coil pipelines do); multi-coil data gets sensitivity maps from its ACS band when the
    model needs them.

    Args:
        model: a registered Cartesian model or baseline.
        handle: an open `FastMRIFile` (read as the batches are consumed).
        mask: float32 ``(W,)``, applied to every slice.
        batch_size: slices per batch.
        scale_factor: the data scaling the model was trained with.
        compression: a `coil_compression.SliceCompression` (multi-coil files), or None.

    Yields:
        ``(kspace, mask[, smaps])``: complex64 ``(batch, [coils,] H, W)``, float32 ``(batch, W)``,
        complex64 ``(batch, coils, H, W)``.
    """
    for start in range(0, handle.num_slices, batch_size):
        kspace = handle.kspace(slice(start, start + batch_size)) * np.complex64(scale_factor)
        if compression is not None:
            kspace = compression.apply(kspace * mask)
        kspace = tf.constant(kspace)
        masks = tf.constant(np.broadcast_to(mask, (kspace.shape[0], mask.shape[0])))
        inputs = (kspace, masks)
        if handle.is_multicoil and model.needs_smaps:
            inputs += (acs_sensitivity_maps(kspace, masks),)
        yield inputs


def reconstruct_batches(model, batches, scale_factor=DEFAULT_SCALE_FACTOR):
    """Reconstruct a volume from its batches of model inputs.

    Args:
        model: a registered model or baseline.
        batches: iterable of input tuples, the volume's slices in order (3D: one volume).
        scale_factor: the factor the inputs carry; the images are divided by it.

    Returns:
        (float32 ``(slices, h, w)`` reconstruction — a 3D volume ``(D, H, W)``: its depth slices —,
        seconds spent in the model calls).
    """
    images, seconds = [], 0.0
    for inputs in batches:
        tic = time.perf_counter()
        images.append(np.asarray(model(inputs)) / scale_factor)
        seconds += time.perf_counter() - tic
    images = np.concatenate(images)
    return images.reshape((-1, *images.shape[-2:])), seconds


def reconstruct_volume(model, handle, mask, batch_size=8, scale_factor=DEFAULT_SCALE_FACTOR):
    """Reconstruct every slice of a volume from its Cartesian k-space (`cartesian_batches`).

    Returns:
        (float32 ``(slices, h, w)`` reconstruction, seconds spent in the model calls).
    """
    return reconstruct_batches(model, cartesian_batches(model, handle, mask, batch_size, scale_factor), scale_factor)


def _check_acquisition(model, name, acquisition):
    model_kind = getattr(model, "acquisition", "cartesian")
    if not isinstance(acquisition, (MaskSampler, NonCartesianAcquisition)):
        raise ConfigError(f"acquisition: expected a MaskSampler or a NonCartesianAcquisition, got {type(acquisition).__name__}")
    given = describe_acquisition(acquisition)
    if (model_kind == "cartesian") != isinstance(acquisition, MaskSampler):
        expected = "a mask (MaskSampler)" if model_kind == "cartesian" else "a trajectory (NonCartesianAcquisition)"
        raise ConfigError(f"{name}: reconstructs {model_kind} acquisitions: evaluate it with {expected}, not '{given}'")
    if model_kind != "cartesian" and (model_kind == "learned") != acquisition.learned:
        what = "learns its trajectory: it takes images" if model_kind == "learned" else "takes samples on a given trajectory"
        raise ConfigError(f"{name}: {what}, not the inputs of '{given}'")
    if model_kind == "noncartesian" and acquisition.volumetric != (len(model.image_shape) == 3):
        raise ConfigError(f"{name}: works on {len(model.image_shape)}D images {model.image_shape}, not on a '{given}' acquisition")


def _checked_files(directory):
    """The fastMRI files of a directory, each checked to have a target."""
    files = list_volumes(directory)
    for path in files:  # structure of every file first: fail before any work
        with FastMRIFile(path) as handle:
            if handle.target_key is None:
                raise DataError(
                    f"{path}: has no target (a test file); evaluate needs files with "
                    "reconstruction_esc / reconstruction_rss"
                )
    return files


def _stacked(examples, batch_size):
    """Batches of ``batch_size`` pipeline examples ``(inputs, target)``: the inputs (a tuple or one tensor) stacked, the last batch smaller."""
    examples = iter(examples)
    while chunk := list(itertools.islice(examples, batch_size)):
        inputs = [inputs for inputs, _ in chunk]
        if isinstance(inputs[0], tuple):
            yield tuple(tf.stack(parts) for parts in zip(*inputs))
        else:  # one input: the images of a model that learns its trajectory
            yield tf.stack(inputs)


def _check_compression(files, compression):
    """Refuse, before any work, a coil compression of single-coil files or to more coils than a file's."""
    for path in files:
        with FastMRIFile(path) as handle:
            if not handle.is_multicoil:
                raise ConfigError(f"{compression.describe()}: {path} is single-coil")
            compression.check(handle.kspace_shape[1], path)


def undersampled_volumes(model, directory, acquisition, batch_size=8, scale_factor=DEFAULT_SCALE_FACTOR, name=None, compression=None):
    """Each volume's target and model inputs: the acquisition's dispatch of the evaluation loop.

    Args:
        model: a registered model or baseline; a non-Cartesian one sets the simulation grid (its
            ``image_shape``).
        directory: a directory of fastMRI files with targets; 3D acquisitions: a directory of
            NIfTI volumes or an array ``(n, D, H, W)`` of volumes.
        acquisition: a `MaskSampler` (Cartesian models) or a `NonCartesianAcquisition`.
        batch_size: slices per model call (3D: one volume per call).
        scale_factor: the k-space scaling of Cartesian data (a `NonCartesianAcquisition` has its
            pipeline's ``scale_factor``).
        name: the method's name for messages (None: the model's class name).
        compression: Cartesian multi-coil files: a `coil_compression.SliceCompression`, or None.

    Returns:
        ``(names, volumes, scale)``: the volume names in order; a generator of ``(name, target,
        batches)`` per volume, target float32 ``(slices, h, w)`` (3D: ``(D, H, W)``) in the
        data's units, batches an iterable of model inputs to consume before the next volume; and
        the factor the inputs carry.

    Raises:
        ConfigError: when the model's acquisition (`Entry.acquisition`) is not the acquisition's, or
            for a ``compression`` of non-Cartesian or single-coil data or to more coils than a file's.
        DataError: for a missing / empty directory, a bad file, or a file without target.
    """
    _check_acquisition(model, name or type(model).__name__, acquisition)
    if compression is not None and not isinstance(acquisition, MaskSampler):
        raise ConfigError(f"{compression.describe()}: coil compression applies to Cartesian multi-coil files, not to '{acquisition.describe()}'")
    if isinstance(acquisition, MaskSampler):
        files = _checked_files(directory)
        if compression is not None:
            _check_compression(files, compression)

        def cartesian():
            for path in files:
                with FastMRIFile(path) as handle:
                    mask = volume_mask(handle, acquisition)
                    yield path.name, handle.target(), cartesian_batches(model, handle, mask, batch_size, scale_factor, compression)

        return [path.name for path in files], cartesian(), scale_factor
    if acquisition.volumetric:
        acquisition = acquisition.on_grid(model.image_shape, batch_size=1)
        from_files = isinstance(directory, (str, Path))
        names = [p.name for p in nifti_paths(directory)] if from_files else [f"volume_{i:03d}" for i in range(len(directory))]
        data = acquisition.dataset(directory)

        def volumes():
            for volume, (inputs, target) in zip(names, data):
                yield volume, target.numpy()[0] / acquisition.scale_factor, [inputs]

        return names, volumes(), acquisition.scale_factor
    files = _checked_files(directory)
    # every slice of every file, in the files' order: the examples line up with list_volumes
    acquisition = acquisition.on_grid(
        model.image_shape, batch_size=1, slice_selection="all", edge_slices=0, contrasts=None, skip_bad_files=False
    )
    examples = iter(acquisition.dataset(directory).unbatch())

    def noncartesian():
        for path in files:
            with FastMRIFile(path) as handle:
                target = handle.target()
            yield path.name, target, _stacked(itertools.islice(examples, len(target)), batch_size)

    return [path.name for path in files], noncartesian(), acquisition.scale_factor


@dataclasses.dataclass
class EvaluationResult:
    """Metrics of one method on one directory.

    Attributes:
        model: the method's name.
        directory: the evaluated directory (or a description of the volumes evaluated).
        acquisition: e.g. ``"random x4 (cf 0.08)"`` or ``"radial x4"``.
        summary: per-volume `MetricsSummary`.
        seconds_per_slice: mean model time per slice (data reading and simulation excluded; a 3D
            volume counts its depth slices).
        num_params: number of trainable and non-trainable weights.
        example: ``(volume name, slice index, target, reconstruction)`` of the middle slice of the
            first volume, float32 ``(h, w)`` images, for figures.
    """

    model: str
    directory: str
    acquisition: str
    summary: MetricsSummary
    seconds_per_slice: float
    num_params: int
    example: tuple = None

    def to_json(self):
        return {
            "model": self.model,
            "directory": self.directory,
            "acquisition": self.acquisition,
            "volumes": len(self.summary),
            "mean": self.summary.means(),
            "std": {k: None if math.isnan(v) else v for k, v in self.summary.stds().items()},
            "per_volume": self.summary.per_volume,
            "seconds_per_slice": self.seconds_per_slice,
            "num_params": self.num_params,
        }


def evaluate_directory(
    model, name, directory, sampler, batch_size=8, progress=True, scale_factor=DEFAULT_SCALE_FACTOR, max_volumes=None, compression=None
):
    """Evaluate a model or baseline on every volume of a directory.

    Args:
        model: a registered model or baseline (``keras.Model``).
        name: its name, for the report.
        directory: a directory of fastMRI files with targets (train / val files); for a 3D
            acquisition a directory of NIfTI volumes or an array ``(n, D, H, W)`` of volumes.
        sampler: the acquisition: a `MaskSampler` (Cartesian models) or a
            `NonCartesianAcquisition` (non-Cartesian models; simulated on the model's grid).
        batch_size: slices per model call.
        progress: show a progress bar over volumes.
        scale_factor: the data scaling Cartesian models were trained with (`cartesian_batches`).
        max_volumes: evaluate only the first volumes (in file-name order), or None for all.
        compression: Cartesian multi-coil files: a `coil_compression.SliceCompression` applied to
            every slice (as the multi-coil pipelines do), or None.

    Returns:
        `EvaluationResult`.

    Raises:
        ConfigError: when the model's acquisition is not the sampler's, or ``batch_size`` is not a
            positive integer.
        DataError: for a missing / empty directory, a bad file, a file without target or with a
            target that is zero everywhere (no data range for PSNR / SSIM).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={quote(batch_size)}: expected a positive integer")
    names, volumes, scale = undersampled_volumes(model, directory, sampler, batch_size, scale_factor, name, compression)
    names = names[:max_volumes]  # the volumes are produced lazily: the rest are never read
    summary, seconds, slices, example = MetricsSummary(), 0.0, 0, None
    where = Path(directory) if isinstance(directory, (str, Path)) else Path("volumes in memory")
    with reading_errors(), progress_bar(names, name, "volume", progress) as bar:
        for _, (volume, target, batches) in zip(bar, volumes):
            if not np.max(target) > 0:
                raise DataError(f"{where / volume}: the target is zero everywhere; PSNR and SSIM need a positive data range")
            recon, spent = reconstruct_batches(model, batches, scale)
            summary.add(volume, evaluate_volume(target, recon))
            if example is None:
                middle = len(target) // 2
                example = (volume, middle, target[middle], center_crop(recon[middle], target.shape[-2:]))
            seconds += spent
            slices += len(target)
    return EvaluationResult(
        model=name,
        directory=str(directory) if isinstance(directory, (str, Path)) else f"{len(directory)} volumes in memory",
        acquisition=describe_acquisition(sampler) + (f", {compression.describe()}" if compression is not None else ""),
        summary=summary,
        seconds_per_slice=seconds / slices,
        num_params=int(model.count_params()) if model.built else 0,
        example=example,
    )
