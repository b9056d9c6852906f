"""Reading Siemens twix raw data (``.dat``, VB and VD/VE) through the ``twixtools`` package.

`read_twix` builds the ISMRMRD header of the imaging measurement (the last of a multi-raid file)
from its protocol (``MeasYaps``): encoded matrix = base resolution x read-out oversampling, phase-encoding
lines, partitions (3D); reconstruction matrix = base resolution, phase-encoding lines capped at the
square-pixel count, images per slab; fields of view from the first slice; phase-encoding and partition
centres from the read-outs' ``CenterLin`` / ``CenterPar``. Read-outs:

- ``NOISEADJSCAN`` read-outs (of any measurement, with the imaging data's channel count) become the
  noise samples;
- image scans (`twixtools`' ``is_image_scan``) are imaging read-outs, ``PATREFSCAN`` without
  ``PATREFANDIMASCAN`` calibration-only read-outs; phase-correction, feedback, sync and other scans are skipped;
- the slice position comes from ``SliceData`` (patient coordinates, Sag / Cor / Tra, mm), the directions
  from its quaternion (`twixtools.geometry.quat_to_rotmat`, columns phase, read-out, slice with the
  phase and read-out signs flipped, as twixtools documents).

Refused (`DataError`): reflected read-outs (``REFLECT``, EPI), files twixtools cannot parse.
"""

from pathlib import Path

import numpy as np

from fastmri_recon.data.raw.header import build_header, parse_header
from fastmri_recon.data.raw.optional import require
from fastmri_recon.data.raw.scan import RawScan, Readout
from fastmri_recon.errors import DataError

NOT_CALIBRATION_FLAGS = ("NOISEADJSCAN", "PHASCOR", "RTFEEDBACK", "HPFEEDBACK", "SYNCDATA", "ACQEND", "REFPHASESTABSCAN",
                         "PHASESTABSCAN")
"""Flags of the ``PATREFSCAN`` read-outs that are not calibration lines (their phase correction, feedback)."""
_DIMENSION_3D = 4
"""``sKSpace.ucDimension`` of 3D acquisitions (2D: 2)."""


def is_twix(path):
    """Whether ``path`` starts as a Siemens twix file: VD/VE (raid header: 0, then 1 to 64 measurements) or VB (``Config`` buffer)."""
    with open(path, "rb") as handle:
        start = handle.read(16)
    if len(start) < 16:
        return False
    zero, count = np.frombuffer(start[:8], "<u4")
    return (zero == 0 and 1 <= count <= 64) or start[8:14] == b"Config"


def _protocol(hdr, path):
    try:
        yaps = hdr["MeasYaps"]
        space, first = yaps["sKSpace"], yaps["sSliceArray"]["asSlice"][0]
        return {
            "base": int(space["lBaseResolution"]),
            "lines": int(space["lPhaseEncodingLines"]),
            "is_3d": int(space.get("ucDimension", 2)) == _DIMENSION_3D,
            "partitions": int(space.get("lPartitions", 1)),
            "images_per_slab": int(space.get("lImagesPerSlab", space.get("lPartitions", 1))),
            "read_fov": float(first["dReadoutFOV"]),
            "phase_fov": float(first["dPhaseFOV"]),
            "thickness": float(first["dThickness"]),
            "oversampling": float(hdr["Meas"].get("flReadoutOSFactor", 2.0)),
            "name": yaps.get("tProtocolName"),
            "position": hdr["Meas"].get("tPatientPosition", "HFS"),
            "frequency": int(hdr["Dicom"].get("lFrequency", 0)),
        }
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise DataError(f"{path}: the twix protocol lacks a field the conversion needs ({err!r})") from None


def _header(protocol, first):
    """The ISMRMRD XML header of a twix measurement (see the module docstring)."""
    p = protocol
    pixel = p["read_fov"] / p["base"]
    recon_lines = min(int(round(p["base"] * p["phase_fov"] / p["read_fov"])), p["lines"])
    depth = (p["partitions"], p["images_per_slab"]) if p["is_3d"] else (1, 1)
    return build_header(
        (int(round(p["base"] * p["oversampling"])), p["lines"], depth[0]),
        (p["base"], recon_lines, depth[1]),
        (p["read_fov"] * p["oversampling"], p["lines"] * pixel, p["thickness"]),
        (p["read_fov"], recon_lines * pixel, p["thickness"]),
        (int(first.mdh.CenterLin), p["lines"] - 1),
        (int(first.mdh.CenterPar), p["partitions"] - 1) if p["is_3d"] else (0, 0),
        protocol=p["name"], patient_position=p["position"], h1_frequency_hz=p["frequency"],
    )


def _is_calibration(mdb):
    """A calibration-only (ACS) read-out: ``PATREFSCAN`` and not an image scan, noise or correction scan."""
    return mdb.is_flag_set("PATREFSCAN") and not any(mdb.is_flag_set(flag) for flag in NOT_CALIBRATION_FLAGS)


def _readout(mdb, twixtools, path):
    if mdb.is_flag_set("REFLECT"):
        raise DataError(f"{path}: reflected read-outs (EPI); expected Cartesian data without reflected lines")
    slice_data = mdb.mdh.SliceData
    matrix = twixtools.geometry.quat_to_rotmat(*[float(q) for q in slice_data.Quaternion])
    matrix[:, :2] *= -1  # twixtools' convention: the phase and read-out axes are flipped
    return Readout(
        data=np.array(mdb.data, np.complex64),
        line=int(mdb.cLin),
        partition=int(mdb.cPar),
        slice=int(mdb.cSlc),
        average=int(mdb.cAve),
        group=(int(mdb.cEco), int(mdb.cPhs), int(mdb.cRep), int(mdb.cSet)),
        center_sample=int(mdb.mdh.CenterCol),
        calibration_only=not mdb.is_image_scan(),
        position=(float(slice_data.SlicePos.Sag), float(slice_data.SlicePos.Cor), float(slice_data.SlicePos.Tra)),
        directions=(tuple(matrix[:, 1]), tuple(matrix[:, 0]), tuple(matrix[:, 2])),
    )


def read_twix(path):
    """Read a Siemens twix file into a `RawScan`.

    Args:
        path: a ``.dat`` file (VB or VD/VE).

    Returns:
        `fastmri_recon.data.raw.scan.RawScan` of its last measurement (imaging and calibration read-outs,
        complex64 ``(coils, samples)`` each) with the noise samples of every measurement (None without any).

    Raises:
        ConfigError: the ``twixtools`` package is not installed.
        DataError: naming the file, for a file twixtools cannot parse (truncated, not twix), a protocol
            without the needed fields, or reflected read-outs.
    """
    twixtools = require("twixtools", "reading Siemens twix files")
    require("twixtools.geometry", "reading Siemens twix files")
    path = Path(path)
    try:
        measurements = twixtools.read_twix(str(path), verbose=False, parse_pmu=False, parse_geometry=False)
    except Exception as err:  # twixtools raises assorted errors (struct, index, value, EOF) on bad files
        raise DataError(f"{path}: not a readable Siemens twix file ({type(err).__name__}: {err})") from None
    if not measurements or not measurements[-1].get("mdb"):
        raise DataError(f"{path}: the twix file holds no measurement data")
    scans = [m for m in measurements[-1]["mdb"] if m.is_image_scan() or _is_calibration(m)]
    if not scans:
        raise DataError(f"{path}: the twix file's last measurement holds no imaging read-outs")
    channels = scans[0].data.shape[0]
    noise = [
        np.array(m.data, np.complex64) for meas in measurements for m in meas["mdb"]
        if m.is_flag_set("NOISEADJSCAN") and m.data.shape[0] == channels
    ]
    encoding = parse_header(_header(_protocol(measurements[-1]["hdr"], path), scans[0]), path)
    readouts = [_readout(m, twixtools, path) for m in scans]
    return RawScan(path, encoding, readouts, np.concatenate(noise, axis=1) if noise else None)
