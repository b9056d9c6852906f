"""Writing fastMRI volumes as ISMRMRD raw data (the inverse of `fastmri_recon.data.raw.convert`).

For tools that read ISMRMRD (Gadgetron, BART, mrpro) and for testing the conversion: each acquired
phase-encoding line of each slice becomes one acquisition of every coil, with the counters, flags,
geometry and header that `read_ismrmrd` expects; noise samples become noise pre-scans written first.
"""

import numpy as np

from fastmri_recon.data.raw.header import build_header
from fastmri_recon.data.raw.optional import require
from fastmri_recon.data.raw.scan import GEOMETRY_ATTRIBUTES
from fastmri_recon.files import atomic_path


def _ismrmrd():
    return require("ismrmrd", "writing ISMRMRD files")


def _acquired_columns(volume):
    if volume.mask is not None:
        return np.flatnonzero(np.asarray(volume.mask) > 0)
    return np.arange(volume.header.padding_left, volume.header.padding_right)


def _geometry(volume, thickness):
    slices = volume.kspace.shape[0]
    if all(name in volume.attrs for name in GEOMETRY_ATTRIBUTES):
        return np.asarray(volume.attrs["slice_positions"]), np.asarray(volume.attrs["slice_directions"])
    positions = np.zeros((slices, 3))
    positions[:, 2] = thickness * np.arange(slices)
    return positions, np.eye(3)


def volume_acquisitions(volume, counters=None, calibration_columns=(), calibration_only=False, slice_thickness_mm=1.0):
    """The ISMRMRD acquisitions of a volume's acquired lines.

    Args:
        volume: a fastMRI `fastmri_recon.data.h5.Volume`, k-space complex64 ``(slices, [coils,] H, W)``;
            its acquired columns are those of its ``mask``, or ``[padding_left, padding_right)``.
        counters: extra encoding counters of every acquisition (``{"average": 1}``, ``{"repetition": 2}``).
        calibration_columns: columns flagged ``ACQ_IS_PARALLEL_CALIBRATION``.
        calibration_only: whether those are calibration data only; otherwise (embedded ACS) they are
            also flagged ``ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING``.
        slice_thickness_mm: slice spacing of the positions of a volume without geometry attributes.

    Returns:
        list of ``ismrmrd.Acquisition``, slice by slice, line by line.
    """
    ismrmrd = _ismrmrd()
    kspace = np.asarray(volume.kspace, np.complex64)
    if kspace.ndim == 3:
        kspace = kspace[:, None]
    calibration = set(int(c) for c in calibration_columns)
    positions, directions = _geometry(volume, slice_thickness_mm)
    acquisitions = []
    for slice_index in range(kspace.shape[0]):
        for column in _acquired_columns(volume):
            acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(kspace[slice_index, :, :, column]))
            acq.center_sample = kspace.shape[2] // 2
            acq.idx.kspace_encode_step_1 = int(column - volume.header.padding_left)
            acq.idx.slice = slice_index
            for name, value in (counters or {}).items():
                setattr(acq.idx, name, int(value))
            acq.position[:] = positions[slice_index]
            acq.read_dir[:], acq.phase_dir[:], acq.slice_dir[:] = directions
            acq.scan_counter = len(acquisitions)
            if column in calibration:
                acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION)
                if not calibration_only:
                    acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
            acquisitions.append(acq)
    return acquisitions


def noise_acquisitions(noise, samples_per_readout=None):
    """Noise pre-scan acquisitions (``ACQ_IS_NOISE_MEASUREMENT``).

    Args:
        noise: complex ``(coils, samples)`` noise samples.
        samples_per_readout: read-out length (default: all samples in one read-out).

    Returns:
        list of ``ismrmrd.Acquisition``.
    """
    ismrmrd = _ismrmrd()
    noise = np.asarray(noise, np.complex64)
    length = samples_per_readout or noise.shape[1]
    acquisitions = []
    for start in range(0, noise.shape[1], length):
        acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(noise[:, start : start + length]))
        acq.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        acquisitions.append(acq)
    return acquisitions


def volume_header(volume, field_of_view_mm=None):
    """The ISMRMRD XML header (bytes) of a volume.

    Args:
        volume: a fastMRI `fastmri_recon.data.h5.Volume`.
        field_of_view_mm: reconstruction field of view ``(x, y, z)`` in mm, z the slice thickness;
            default 1 mm pixels and slices. The encoded field of view scales it by the encoded / recon matrix.
    """
    header = volume.header
    recon_fov = field_of_view_mm or (float(header.recon_size[0]), float(header.recon_size[1]), 1.0)
    encoded_fov = [f * e / r for f, e, r in zip(recon_fov[:2], header.encoded_size, header.recon_size)] + [recon_fov[2]]
    return build_header(
        header.encoded_size, header.recon_size, encoded_fov, recon_fov,
        (header.encoding_center, header.encoding_maximum), protocol=volume.attrs.get("acquisition"),
    )


def write_ismrmrd(volume, path, noise=None, calibration_columns=(), field_of_view_mm=None, extra_acquisitions=()):
    """Write a fastMRI volume as an ISMRMRD HDF5 file, atomically.

    Args:
        volume: a fastMRI `fastmri_recon.data.h5.Volume` (complex64 ``(slices, [coils,] H, W)``).
        path: the ``.h5`` / ``.mrd`` file to write.
        noise: complex ``(coils, samples)`` noise pre-scan samples, or None.
        calibration_columns: columns flagged as embedded calibration (ACS) lines.
        field_of_view_mm: see `volume_header`.
        extra_acquisitions: more ``ismrmrd.Acquisition`` appended after the volume's (other averages,
            repetitions, separate calibration lines, from `volume_acquisitions`).

    Raises:
        DataError: ``path`` cannot be written.
    """
    ismrmrd = _ismrmrd()
    thickness = field_of_view_mm[2] if field_of_view_mm else 1.0
    acquisitions = noise_acquisitions(noise) if noise is not None else []
    acquisitions += volume_acquisitions(volume, calibration_columns=calibration_columns, slice_thickness_mm=thickness)
    acquisitions += list(extra_acquisitions)
    with atomic_path(path) as tmp:
        dataset = ismrmrd.Dataset(str(tmp), "dataset", mode="w")
        try:
            dataset.write_xml_header(volume_header(volume, field_of_view_mm))
            for acq in acquisitions:
                dataset.append_acquisition(acq)
        finally:
            dataset.close()
