"""Reading ISMRMRD raw data files (HDF5, ``.h5`` / ``.mrd``) through the ``ismrmrd`` package.

`read_ismrmrd` reads the header and every acquisition of a file's ISMRMRD container (``dataset``, or
the only one) into a `RawScan`, which `fastmri_recon.data.raw.scan.scan_volumes` assembles:

- noise pre-scans (``ACQ_IS_NOISE_MEASUREMENT``) become the scan's noise samples;
- navigator, phase-correction, feedback, dummy-scan, phase-stabilisation and surface-coil-correction
  acquisitions are skipped;
- parallel-imaging calibration lines (``ACQ_IS_PARALLEL_CALIBRATION``) are kept as calibration-only
  read-outs unless also flagged ``ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING``;
- ``discard_pre`` / ``discard_post`` samples are dropped.

Refused (`DataError`): non-Cartesian trajectories (header or per-acquisition trajectories),
reversed read-outs (``ACQ_IS_REVERSE``, EPI), acquisitions of another encoding space than the first.
"""

from pathlib import Path

import h5py
import numpy as np

from fastmri_recon.data.raw.header import parse_header
from fastmri_recon.data.raw.optional import require
from fastmri_recon.data.raw.scan import RawScan, Readout
from fastmri_recon.errors import DataError

SKIPPED_FLAGS = (
    "ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA", "ACQ_IS_HPFEEDBACK_DATA", "ACQ_IS_RTFEEDBACK_DATA",
    "ACQ_IS_DUMMYSCAN_DATA", "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA", "ACQ_IS_PHASE_STABILIZATION",
    "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
)
"""Acquisitions that carry no image data and are skipped."""
CHUNK = 4096
"""Acquisitions read from the file at a time."""


def ismrmrd_container(path):
    """The name of the ISMRMRD container of an HDF5 file (``dataset`` or the only group with ``xml`` and ``data``), or None."""
    try:
        with h5py.File(path, "r") as handle:
            names = [n for n, g in handle.items() if isinstance(g, h5py.Group) and "xml" in g and "data" in g]
    except OSError:
        return None
    if "dataset" in names:
        return "dataset"
    return names[0] if len(names) == 1 else None


def _readout(acq, ismrmrd, path):
    if acq.trajectory_dimensions:
        raise DataError(f"{path}: acquisition {acq.scan_counter} has a non-Cartesian trajectory; expected Cartesian data")
    if acq.is_flag_set(ismrmrd.ACQ_IS_REVERSE):
        raise DataError(f"{path}: acquisition {acq.scan_counter} is a reversed read-out (EPI); expected Cartesian data")
    if acq.encoding_space_ref:
        raise DataError(
            f"{path}: acquisition {acq.scan_counter} belongs to encoding space {acq.encoding_space_ref}; "
            "conversion handles files with one encoding space"
        )
    samples = acq.data.shape[1]
    data = acq.data[:, acq.discard_pre : samples - acq.discard_post]
    idx = acq.idx
    calibration = acq.is_flag_set(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION)
    imaging = acq.is_flag_set(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
    return Readout(
        data=np.array(data, np.complex64),
        line=int(idx.kspace_encode_step_1),
        partition=int(idx.kspace_encode_step_2),
        slice=int(idx.slice),
        average=int(idx.average),
        group=(int(idx.contrast), int(idx.phase), int(idx.repetition), int(idx.set)),
        center_sample=int(acq.center_sample) - int(acq.discard_pre),
        calibration_only=calibration and not imaging,
        position=tuple(float(v) for v in acq.position),
        directions=tuple(tuple(float(v) for v in d) for d in (acq.read_dir, acq.phase_dir, acq.slice_dir)),
    )


def read_ismrmrd(path):
    """Read an ISMRMRD HDF5 file into a `RawScan`.

    Args:
        path: an ISMRMRD file (HDF5 with a ``dataset`` group holding ``xml`` and ``data``).

    Returns:
        `fastmri_recon.data.raw.scan.RawScan`: the header's encoding, the imaging and calibration read-outs
        (complex64 ``(coils, samples)`` each) and the noise samples (complex64 ``(coils, samples)``) or None.

    Raises:
        ConfigError: the ``ismrmrd`` package is not installed.
        DataError: naming the file, for a file that is not ISMRMRD, is truncated, has a bad header or
            unsupported acquisitions (see the module docstring).
    """
    ismrmrd = require("ismrmrd", "reading ISMRMRD files")
    path = Path(path)
    container = ismrmrd_container(path)
    if container is None:
        raise DataError(f"{path}: not an ISMRMRD file (no group with 'xml' and 'data' datasets)")
    skipped = [getattr(ismrmrd, name) for name in SKIPPED_FLAGS]
    readouts, noise = [], []
    try:
        with ismrmrd.File(str(path), "r") as handle:
            dataset = handle[container]
            try:
                document = dataset.header
            except Exception as err:  # xsdata's parser errors
                raise DataError(f"{path}: the ISMRMRD header is not valid ISMRMRD XML ({err})") from None
            encoding = parse_header(document, path)
            acquisitions = dataset.acquisitions
            for start in range(0, len(acquisitions), CHUNK):
                for acq in acquisitions[start : start + CHUNK]:
                    if acq.is_flag_set(ismrmrd.ACQ_IS_NOISE_MEASUREMENT):
                        noise.append(np.array(acq.data, np.complex64))
                    elif not any(acq.is_flag_set(flag) for flag in skipped):
                        readouts.append(_readout(acq, ismrmrd, path))
    except (OSError, KeyError, RuntimeError) as err:
        raise DataError(f"{path}: truncated or corrupt ISMRMRD file ({err})") from None
    if noise and len({n.shape[0] for n in noise}) > 1:
        raise DataError(f"{path}: noise pre-scans with different channel counts")
    return RawScan(path, encoding, readouts, np.concatenate(noise, axis=1) if noise else None)
