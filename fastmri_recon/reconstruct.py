"""Reconstructing test data: fastMRI submission files from a directory of undersampled files.

Input files carry their undersampled k-space and the ``mask`` that sampled it (fastMRI's test and
challenge files, the demo data's ``*_test`` splits). The inference pipeline
(`data.datasets.inference_dataset`) scales k-space as in training and gives multi-coil models that
need them ACS sensitivity maps; each volume's reconstruction, divided by the scale factor and
center-cropped to the header's reconstruction size, is written as a fastMRI submission file: the
input's file name, dataset ``reconstruction``, float32 ``(slices, h, w)``. The files are written
beside their destination under temporary names and renamed together once every volume is done, so
a failure leaves none of them.
"""

import contextlib
from pathlib import Path

import numpy as np

from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR, InferenceConfig
from fastmri_recon.data.h5 import FastMRIFile, list_volumes, write_reconstruction
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.files import atomic_path, make_directory
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.progress import progress_bar


def _write_volume(input_dir, output_dir, name, indices, images, scale_factor, pending):
    """Write a volume's reconstruction under a temporary name that ``pending`` (an ExitStack) renames at its end."""
    with FastMRIFile(Path(input_dir) / name) as handle:
        height, width = handle.header.target_shape
    order = np.argsort(np.concatenate(indices))
    volume = np.concatenate(images)[order] / scale_factor
    if volume.shape[-2] < height or volume.shape[-1] < width:
        raise DataError(
            f"{Path(input_dir) / name}: the model returns {volume.shape[-2]} x {volume.shape[-1]} images, smaller than "
            f"the header's reconstruction size {height} x {width} (weights trained for another image size)"
        )
    path = Path(output_dir) / name
    write_reconstruction(pending.enter_context(atomic_path(path)), center_crop(volume, (height, width)))
    return path


def reconstruct_directory(model, input_dir, output_dir, scale_factor=DEFAULT_SCALE_FACTOR, batch_size=8, progress=True):
    """Reconstruct every file of ``input_dir`` into a submission file of the same name in ``output_dir``.

    Args:
        model: a Cartesian reconstruction model (``model((kspace, mask[, smaps]))``).
        input_dir: fastMRI files with ``mask`` and undersampled ``kspace`` (no target needed).
        output_dir: where the submission files are written (all at the end, atomically; created first).
        scale_factor: the k-space scaling the model was trained with.
        batch_size: slices per model call.
        progress: a progress bar over the batches.

    Returns:
        list of the written paths, in file-name order.

    Raises:
        ConfigError: ``output_dir`` is ``input_dir``, or a non-Cartesian model.
        DataError: a missing / empty directory, a bad file (NaN / Inf values included), a file
            without ``mask``, an ``output_dir`` that cannot be created or written; no file is written.
    """
    from fastmri_recon.data.datasets import inference_dataset
    from fastmri_recon.data.datasets.volumes import reading_errors

    if Path(output_dir).resolve() == Path(input_dir).resolve():
        raise ConfigError(f"{output_dir}: the output directory must differ from the input directory")
    if getattr(model, "acquisition", "cartesian") != "cartesian":
        raise ConfigError(f"{type(model).__name__}: reconstruct handles Cartesian data and models only")
    with FastMRIFile(list_volumes(input_dir)[0]) as first:
        smaps = "acs" if first.is_multicoil and model.needs_smaps else None
    config = InferenceConfig(batch_size=batch_size, scale_factor=scale_factor, sensitivity_maps=smaps)
    dataset = inference_dataset(input_dir, config)
    make_directory(output_dir)
    written, current, indices, images = [], None, [], []
    with contextlib.ExitStack() as pending, reading_errors(), progress_bar(dataset, "reconstruct", "batch", progress) as batches:
        for names, slices, inputs in batches:
            name = names[0].numpy().decode()
            if current is not None and name != current:
                written.append(_write_volume(input_dir, output_dir, current, indices, images, scale_factor, pending))
                indices, images = [], []
            current = name
            indices.append(slices.numpy())
            images.append(np.asarray(model(inputs, training=False), np.float32))
        if current is not None:
            written.append(_write_volume(input_dir, output_dir, current, indices, images, scale_factor, pending))
    return written
