"""Reconstructing test data: fastMRI submission files from a directory of undersampled files.

Input files carry their undersampled k-space and the ``mask`` that sampled it (fastMRI's test and
challenge files, the demo data's ``*_test`` splits). The inference pipeline
(`data.datasets.inference_dataset`) scales k-space as in training and gives multi-coil models that
need them ACS sensitivity maps; each volume's reconstruction, divided by the scale factor and
center-cropped to the header's reconstruction size, is written as a fastMRI submission file: the
input's file name, dataset ``reconstruction``, float32 ``(slices, h, w)``. The files are written
beside their destination under temporary names and renamed together once every volume is done, so
a failure leaves none of them.

A non-Cartesian model (a run of NC-PDNet or another 2D non-Cartesian network) has no scanner data to
read here: its ``acquisition`` (the run's, `training.rundir.RunDirectory.acquisition`) is simulated from
the input files' images as ``evaluate`` does (every slice sampled on the run's trajectory with the
NUFFT), so the inputs must carry their targets (fastMRI train / val files); the reconstructions are
written the same way.

``output_format="nifti"`` writes ``NAME.nii.gz`` instead (the geometry from the input's header,
`outputs.write_nifti`) and ``"dicom"`` a DICOM series folder ``NAME/`` per volume (MR Image Storage,
anonymous patient, the series description naming the model and the acceleration,
`outputs.write_dicom_series`); those are written once every volume has been reconstructed.
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


OUTPUT_FORMATS = ("hdf5", "nifti", "dicom")


def _volume(input_dir, name, indices, images, scale_factor):
    """A volume's reconstruction in the data's units, cropped to its header's size: float32 ``(slices, h, w)``."""
    with FastMRIFile(Path(input_dir) / name) as handle:
        height, width = handle.header.target_shape
    order = np.argsort(np.concatenate(indices))
    volume = np.concatenate(images)[order] / scale_factor
    if volume.shape[-2] < height or volume.shape[-1] < width:
        raise DataError(
            f"{Path(input_dir) / name}: the model returns {volume.shape[-2]} x {volume.shape[-1]} images, smaller than "
            f"the header's reconstruction size {height} x {width} (weights trained for another image size)"
        )
    return center_crop(volume, (height, width))


def _write_image_volume(input_path, output_dir, volume, output_format, description):
    """Write a reconstruction as NIfTI (``NAME.nii.gz``) or a DICOM series (``NAME/``); return the path."""
    from fastmri_recon.outputs import image_geometry, write_dicom_series, write_nifti

    geometry = image_geometry(input_path)
    with FastMRIFile(input_path) as handle:
        mask, patient = handle.mask, handle.attrs.get("patient_id", input_path.name)
    acceleration = f" x{mask.size / max(mask.sum(), 1):.1f}" if mask is not None else ""
    label = f"{description}{acceleration}"
    stem = Path(output_dir) / input_path.stem
    if output_format == "nifti":
        path = stem.with_name(f"{stem.name}.nii.gz")
        write_nifti(path, volume, geometry, label)
        return path
    write_dicom_series(stem, volume, geometry, label, str(patient), seed=input_path.name)
    return stem


def _cartesian_volumes(model, input_dir, output_dir, scale_factor, batch_size, progress, compression):
    """Every file's reconstruction from its own undersampled k-space and mask: name -> float32 ``(slices, h, w)``."""
    from fastmri_recon.data.datasets import inference_dataset
    from fastmri_recon.data.datasets.volumes import reading_errors

    with FastMRIFile(list_volumes(input_dir)[0]) as first:
        smaps = "acs" if first.is_multicoil and model.needs_smaps else None
    coils = {} if compression is None else {"virtual_coils": compression.coils, "coil_compression": compression.method}
    config = InferenceConfig(batch_size=batch_size, scale_factor=scale_factor, sensitivity_maps=smaps, **coils)
    dataset = inference_dataset(input_dir, config)
    make_directory(output_dir)
    volumes, current, indices, images = {}, None, [], []
    with reading_errors(), progress_bar(dataset, "reconstruct", "batch", progress) as batches:
        for names, slices, inputs in batches:
            name = names[0].numpy().decode()
            if current is not None and name != current:
                volumes[current] = _volume(input_dir, current, indices, images, scale_factor)
                indices, images = [], []
            current = name
            indices.append(slices.numpy())
            images.append(np.asarray(model(inputs, training=False), np.float32))
        if current is not None:
            volumes[current] = _volume(input_dir, current, indices, images, scale_factor)
    return volumes


def _simulated_volumes(model, input_dir, output_dir, acquisition, scale_factor, batch_size, progress, description):
    """Every file's reconstruction from the non-Cartesian ``acquisition`` simulated from its images: name -> float32 ``(slices, h, w)``."""
    import dataclasses

    from fastmri_recon.data.datasets.volumes import reading_errors
    from fastmri_recon.evaluate.evaluate import reconstruct_batches, undersampled_volumes

    acquisition = dataclasses.replace(acquisition, pipeline=dataclasses.replace(acquisition.pipeline, scale_factor=scale_factor))
    names, examples, scale = undersampled_volumes(model, input_dir, acquisition, batch_size, scale_factor, description)
    make_directory(output_dir)
    volumes = {}
    with reading_errors(), progress_bar(names, "reconstruct", "volume", progress) as bar:
        for _, (name, target, batches) in zip(bar, examples):
            images, _ = reconstruct_batches(model, batches, scale)
            volumes[name] = center_crop(images, target.shape[-2:])
    return volumes


def reconstruct_directory(
    model, input_dir, output_dir, scale_factor=DEFAULT_SCALE_FACTOR, batch_size=8, progress=True, output_format="hdf5",
    description="fastmri-recon", compression=None, acquisition=None,
):
    """Reconstruct every file of ``input_dir`` into a submission file of the same name in ``output_dir``.

    Args:
        model: a Cartesian reconstruction model (``model((kspace, mask[, smaps]))``), or a 2D
            non-Cartesian one with its ``acquisition``.
        input_dir: fastMRI files with ``mask`` and undersampled ``kspace`` (no target needed); for
            a non-Cartesian model, files with targets.
        output_dir: where the submission files are written (all at the end, atomically; created first).
        scale_factor: the k-space scaling the model was trained with.
        batch_size: slices per model call.
        progress: a progress bar over the batches.
        output_format: ``"hdf5"`` (fastMRI submission files), ``"nifti"`` or ``"dicom"``.
        description: the model, as NIfTI / DICOM series descriptions name it (the acceleration is added).
        compression: a `coil_compression.SliceCompression` applied to every slice of multi-coil
            files (as the model's training pipeline did), or None.
        acquisition: non-Cartesian models: the `NonCartesianAcquisition` simulated from the files
            (its pipeline's ``scale_factor`` replaced by ``scale_factor``); None for Cartesian models.

    Returns:
        list of the written paths (files, or DICOM series folders), in file-name order.

    Raises:
        ConfigError: ``output_dir`` is ``input_dir``, a non-Cartesian model without a 2D acquisition
            (or a Cartesian one with one), an unknown format,
            (DICOM) pydicom missing, or a ``compression`` the files cannot take (single-coil, fewer coils).
        DataError: a missing / empty directory, a bad file (NaN / Inf values included), a file
            without ``mask``, an ``output_dir`` that cannot be created or written; no file is written.
    """
    if Path(output_dir).resolve() == Path(input_dir).resolve():
        raise ConfigError(f"{output_dir}: the output directory must differ from the input directory")
    if (getattr(model, "acquisition", "cartesian") == "cartesian") != (acquisition is None):
        raise ConfigError(f"{type(model).__name__}: a non-Cartesian model needs its acquisition, a Cartesian one none")
    if acquisition is not None and acquisition.volumetric:
        raise ConfigError(f"{type(model).__name__}: reconstruct writes 2D slices; evaluate 3D runs with 'fastmri-recon evaluate'")
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    if output_format == "dicom":
        from fastmri_recon.data.raw.optional import require

        require("pydicom", "writing DICOM files")  # before any work
    if acquisition is None:
        volumes = _cartesian_volumes(model, input_dir, output_dir, scale_factor, batch_size, progress, compression)
    else:
        volumes = _simulated_volumes(model, input_dir, output_dir, acquisition, scale_factor, batch_size, progress, description)
    if output_format != "hdf5":
        return [_write_image_volume(Path(input_dir) / n, output_dir, v, output_format, description) for n, v in volumes.items()]
    with contextlib.ExitStack() as pending:  # every file under a temporary name, all renamed at the end
        for name, volume in volumes.items():
            write_reconstruction(pending.enter_context(atomic_path(Path(output_dir) / name)), volume)
    return [Path(output_dir) / name for name in volumes]
