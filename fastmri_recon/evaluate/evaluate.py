"""Evaluating a reconstruction model or baseline on a directory of fastMRI files.

One loop serves every method: each volume's fully-sampled k-space is undersampled with a mask
seeded by the file name (the same mask for every slice, and for every method: fastMRI's
validation protocol), reconstructed slice batch by slice batch with ``model((kspace, mask))``,
and compared with the file's target by the fastMRI metrics (`evaluate.metrics`).
"""

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR
from fastmri_recon.data.h5 import FastMRIFile, list_volumes
from fastmri_recon.data.masks import seeded_volume_mask
from fastmri_recon.data.sensitivity import acs_sensitivity_maps
from fastmri_recon.errors import DataError
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


def reconstruct_volume(model, handle, mask, batch_size=8, scale_factor=DEFAULT_SCALE_FACTOR):
    """Reconstruct every slice of a volume.

    k-space is multiplied by ``scale_factor`` (as the training pipelines do) and the images divided
    by it; multi-coil data gets sensitivity maps from its ACS band when the model needs them.

    Args:
        model: a registered model or baseline, called as ``model((kspace, mask[, smaps]))``.
        handle: an open `FastMRIFile`.
        mask: float32 ``(W,)``, applied to every slice.
        batch_size: slices per call.
        scale_factor: the data scaling the model was trained with.

    Returns:
        (float32 ``(slices, h, w)`` reconstruction, seconds spent in the model).
    """
    images, seconds = [], 0.0
    for start in range(0, handle.num_slices, batch_size):
        kspace = tf.constant(handle.kspace(slice(start, start + batch_size)) * np.complex64(scale_factor))
        masks = tf.constant(np.broadcast_to(mask, (kspace.shape[0], mask.shape[0])))
        tic = time.perf_counter()
        inputs = (kspace, masks)
        if handle.is_multicoil and model.needs_smaps:
            inputs += (acs_sensitivity_maps(kspace, masks),)
        images.append(np.asarray(model(inputs)) / scale_factor)
        seconds += time.perf_counter() - tic
    return np.concatenate(images), seconds


def describe_sampler(sampler):
    """A short text for a `MaskSampler`, e.g. ``"random x4 (cf 0.08)"``."""
    pairs = ", ".join(f"x{a:g} (cf {c:g})" for c, a in zip(sampler.center_fractions, sampler.accelerations))
    return f"{sampler.kind} {pairs}"


@dataclasses.dataclass
class EvaluationResult:
    """Metrics of one method on one directory.

    Attributes:
        model: the method's name.
        directory: the evaluated directory.
        acquisition: e.g. ``"random x4 (cf 0.08)"``.
        summary: per-volume `MetricsSummary`.
        seconds_per_slice: mean model time per slice (data reading excluded).
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


def evaluate_directory(model, name, directory, sampler, batch_size=8, progress=True, scale_factor=DEFAULT_SCALE_FACTOR):
    """Evaluate a model or baseline on every volume of a directory.

    Args:
        model: a registered model or baseline (``keras.Model``).
        name: its name, for the report.
        directory: a directory of fastMRI files with targets (train / val files).
        sampler: the `MaskSampler` of the undersampling.
        batch_size: slices per model call.
        progress: show a progress bar over volumes.
        scale_factor: the data scaling the model was trained with (`reconstruct_volume`).

    Returns:
        `EvaluationResult`.

    Raises:
        DataError: for a missing / empty directory, a bad file, or a file without target.
    """
    files = list_volumes(directory)
    for path in files:  # structure of every file first: fail before any work
        with FastMRIFile(path) as handle:
            if handle.target_key is None:
                raise DataError(
                    f"{path}: has no target (a test file); evaluate needs files with "
                    "reconstruction_esc / reconstruction_rss"
                )
    summary, seconds, slices, example = MetricsSummary(), 0.0, 0, None
    with progress_bar(files, name, "volume", progress) as bar:
        for path in bar:
            with FastMRIFile(path) as handle:
                recon, spent = reconstruct_volume(model, handle, volume_mask(handle, sampler), batch_size, scale_factor)
                target = handle.target()
                summary.add(path.name, evaluate_volume(target, recon))
            if example is None:
                middle = len(target) // 2
                example = (path.name, middle, target[middle], center_crop(recon[middle], target.shape[-2:]))
            seconds += spent
            slices += handle.num_slices
    return EvaluationResult(
        model=name,
        directory=str(directory),
        acquisition=describe_sampler(sampler),
        summary=summary,
        seconds_per_slice=seconds / slices,
        num_params=int(model.count_params()) if model.built else 0,
        example=example,
    )
