"""From read-outs to fastMRI volumes: the part of the conversion common to ISMRMRD and twix.

A reader turns its file into a `RawScan` — the header's `Encoding`, the imaging and calibration
`Readout`\\ s with their counters, the noise pre-scan samples — and `scan_volumes` assembles it:

- one volume per combination of contrast, phase, repetition and set counters (file suffixes
  ``_contrast1``, ``_rep2``, ...; none for the first);
- k-space ``(slices, coils, H, W)``: H the read-out axis with the header's encoded size (read-out
  oversampling kept, as in fastMRI; each read-out placed so that its ``center_sample`` falls on
  ``H // 2``), W the phase-encoding axis with the encoded size: line counter ``k`` goes to column
  ``k + W // 2 - kspace_encoding_step_1.center``, so the header's ``padding_left`` /
  ``padding_right`` bound the acquired columns;
- averages: the average counters of a line are summed (a line acquired fewer times than the others is
  scaled to the same number of averages);
- calibration (ACS) lines are part of the acquired mask; a line acquired both as calibration and as
  imaging data (flagged both ways, or a calibration-only read-out of an imaging line) counts once,
  the imaging read-out being kept;
- noise pre-whitening when the scan has noise samples (`noise.whitening_matrix`), then optionally
  coil compression (`fastmri_recon.data.coil_compression.compress_coils`);
- 2D multi-slice data: slices ordered by position along the slice normal; 3D Cartesian data: the
  partition axis (fully sampled within its limits) is inverse-Fourier-transformed and cropped to the
  reconstruction matrix, each partition becoming a slice (slabs one after another);
- fully sampled volumes (every column in ``[padding_left, padding_right)`` acquired in every slice)
  get fastMRI's target (root-sum-of-squares, or magnitude for one coil, center-cropped to the
  reconstruction matrix) and no ``mask``; undersampled ones get their ``mask`` (as fastMRI's test
  files) with attributes ``acceleration`` (acquired range / acquired columns) and ``num_low_frequency``
  (the fully sampled central band);
- attributes: ``acquisition`` (the protocol name), an anonymous ``patient_id`` (a hash of the
  k-space), ``noise_prewhitened``, and the geometry (`GEOMETRY_ATTRIBUTES`).

One-coil data becomes single-coil files ``(slices, H, W)``.
"""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from fastmri_recon.data.coil_compression import compress_coils, mix_coils
from fastmri_recon.data.h5 import Volume
from fastmri_recon.data.raw.noise import whitening_matrix
from fastmri_recon.errors import DataError
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_ifftc

GEOMETRY_ATTRIBUTES = ("slice_positions", "slice_directions")
"""Volume attributes holding the geometry, in the patient coordinate system of ISMRMRD and DICOM (LPS, mm):
``slice_positions`` float64 ``(slices, 3)``, the centre of each slice; ``slice_directions`` float64
``(3, 3)``, rows the read-out (H), phase-encoding (W) and slice-normal unit vectors."""

GROUP_COUNTERS = ("contrast", "phase", "repetition", "set")
"""Counters whose values make separate volumes (file suffixes ``_contrast1``, ``_phase1``, ``_rep1``, ``_set1``)."""
_SUFFIXES = {"contrast": "contrast", "phase": "phase", "repetition": "rep", "set": "set"}


@dataclasses.dataclass
class Readout:
    """One read-out of imaging or calibration data.

    Attributes:
        data: complex64 ``(coils, samples)``.
        line, partition, slice, average: the encoding counters (``kspace_encode_step_1`` / ``_2``, ...).
        group: values of `GROUP_COUNTERS`, a tuple of 4 ints.
        center_sample: the sample at the k-space centre.
        calibration_only: a parallel-imaging calibration (ACS) read-out that is not imaging data.
        position: the slice (or slab) centre, LPS mm, 3 floats.
        directions: read-out, phase-encoding and slice unit vectors, ``(3, 3)`` rows.
    """

    data: np.ndarray
    line: int
    partition: int = 0
    slice: int = 0
    average: int = 0
    group: tuple = (0, 0, 0, 0)
    center_sample: int = 0
    calibration_only: bool = False
    position: tuple = (0.0, 0.0, 0.0)
    directions: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclasses.dataclass
class RawScan:
    """A raw file's content, as its reader found it.

    Attributes:
        path: the raw file.
        encoding: its `fastmri_recon.data.raw.header.Encoding`.
        readouts: list of `Readout` (imaging and calibration data).
        noise: complex ``(coils, samples)`` noise pre-scan samples, or None.
    """

    path: Path
    encoding: object
    readouts: list
    noise: np.ndarray = None


def _select(readouts, path):
    """One read-out per (slice, partition, line, average): imaging preferred to calibration-only."""
    chosen = {}
    for readout in readouts:
        key = (readout.slice, readout.partition, readout.line, readout.average)
        kept = chosen.get(key)
        if kept is None or (kept.calibration_only and not readout.calibration_only):
            chosen[key] = readout
        elif kept.calibration_only == readout.calibration_only:
            raise DataError(
                f"{path}: two read-outs with the same counters (slice {key[0]}, partition {key[1]}, line {key[2]}, "
                f"average {key[3]}); expected one per line and average"
            )
    return list(chosen.values())


def _kspace_index(counter, size, center, maximum, name, path):
    index = counter + size // 2 - center
    if counter > maximum or not 0 <= index < size:
        raise DataError(
            f"{path}: {name} counter {counter} is outside the header's encoding (center {center}, maximum {maximum}, "
            f"encoded size {size})"
        )
    return index


def _partition_limits(encoding):
    """``kspace_encoding_step_2`` (center, maximum); a 3D header without them: every encoded partition."""
    depth = encoding.header.encoded_size[2]
    if depth > 1 and encoding.partition_maximum == 0:
        return depth // 2, depth - 1
    return encoding.partition_center, encoding.partition_maximum


def _fill(readouts, scan):
    """Assemble k-space complex128 ``(slices, partitions, coils, H, W)`` and the acquired (slice, partition, column) grid."""
    header, encoding, path = scan.encoding.header, scan.encoding, scan.path
    height, width, depth = header.encoded_size
    slices = sorted({r.slice for r in readouts})
    coils = readouts[0].data.shape[0]
    kspace = np.zeros((len(slices), depth, coils, height, width), np.complex128)
    counts = np.zeros((len(slices), depth, width), np.int64)
    slice_index = {s: i for i, s in enumerate(slices)}
    for readout in readouts:
        if readout.data.shape[0] != coils:
            raise DataError(f"{path}: read-outs with {readout.data.shape[0]} and {coils} channels; expected one coil count")
        samples = readout.data.shape[1]
        start = height // 2 - readout.center_sample
        if start < 0 or start + samples > height:
            raise DataError(
                f"{path}: a read-out of {samples} samples centred on sample {readout.center_sample} does not fit the "
                f"header's encoded read-out size {height}"
            )
        column = _kspace_index(readout.line, width, header.encoding_center, header.encoding_maximum, "kspace_encode_step_1", path)
        partition = _kspace_index(readout.partition, depth, *_partition_limits(encoding), "kspace_encode_step_2", path)
        where = slice_index[readout.slice], partition
        kspace[where + (slice(None), slice(None), column)][:, start : start + samples] += readout.data
        counts[where + (column,)] += 1
    averages = counts.max()
    acquired = counts > 0
    kspace *= np.where(acquired, averages / np.maximum(counts, 1), 0)[:, :, None, None, :]
    return kspace, acquired, slices


def _mask(acquired, scan):
    """The (W,) mask of acquired columns, checked to be the same in every slice (and every partition in 3D)."""
    mask = acquired[0, scan.encoding.header.encoded_size[2] // 2]
    if scan.encoding.is_3d:
        lines = acquired.any(axis=(0, 1))
        center, maximum = _partition_limits(scan.encoding)
        start = acquired.shape[1] // 2 - center
        partitions = acquired.any(axis=2)
        full = partitions[:, start : start + maximum + 1].all()
        if not full or not np.array_equal(acquired, partitions[:, :, None] & lines[None, None, :]):
            raise DataError(
                f"{scan.path}: 3D data undersampled along the partition axis; conversion needs every partition of "
                "every acquired line (slice-by-slice reconstruction after an FFT along the partitions)"
            )
        return lines
    if not (acquired[:, 0] == mask).all():
        raise DataError(f"{scan.path}: slices acquired with different phase-encoding lines; expected one mask per volume")
    return mask


def _recon_partitions(header):
    """Partitions kept of a 3D volume: the reconstruction matrix's z (at most the encoded one)."""
    return min(header.recon_size[2], header.encoded_size[2])


def _geometry(readouts, slices, scan):
    """``slice_positions`` ``(slices, 3)`` and ``slice_directions`` ``(3, 3)`` (see `GEOMETRY_ATTRIBUTES`)."""
    first = {}
    for readout in readouts:
        first.setdefault(readout.slice, readout)
    positions = np.array([first[s].position for s in slices], np.float64)
    directions = np.array(first[slices[0]].directions, np.float64)
    if scan.encoding.is_3d:
        depth = _recon_partitions(scan.encoding.header)
        thickness = scan.encoding.recon_fov_mm[2] / scan.encoding.header.recon_size[2]
        offsets = (np.arange(depth) - depth // 2) * thickness
        positions = (positions[:, None, :] + offsets[None, :, None] * directions[2]).reshape(-1, 3)
    return positions, directions


def _num_low_frequency(mask):
    centre = mask.size // 2
    if not mask[centre]:
        return 0
    left, right = centre, centre
    while left > 0 and mask[left - 1]:
        left -= 1
    while right < mask.size - 1 and mask[right + 1]:
        right += 1
    return right - left + 1


def _volume(readouts, scan, coils, compression):
    """Assemble the `Volume` of one group of read-outs (see the module docstring)."""
    header = scan.encoding.header
    readouts = _select(readouts, scan.path)
    kspace, acquired, slices = _fill(readouts, scan)
    mask = _mask(acquired, scan)
    positions, directions = _geometry(readouts, slices, scan)
    if scan.encoding.is_3d:
        depth = _recon_partitions(header)
        hybrid = np_ifftc(kspace, axes=(1,))
        start = (hybrid.shape[1] - depth) // 2
        kspace = hybrid[:, start : start + depth]
    kspace = kspace.reshape((-1,) + kspace.shape[2:])
    order = np.argsort(positions @ directions[2], kind="stable") if not scan.encoding.is_3d else np.arange(len(kspace))
    kspace, positions = kspace[order], positions[order]
    if scan.noise is not None:
        if scan.noise.shape[0] != kspace.shape[1]:
            raise DataError(f"{scan.path}: noise pre-scans have {scan.noise.shape[0]} channels, the data {kspace.shape[1]}")
        kspace = mix_coils(kspace, whitening_matrix(scan.noise, scan.path))
    if coils is not None:
        kspace = compress_coils(kspace, coils, compression)
    kspace = kspace.astype(np.complex64)
    if kspace.shape[1] == 1:
        kspace = kspace[:, 0]
    attrs = {
        "acquisition": scan.encoding.protocol or "unknown",
        "patient_id": hashlib.sha256(kspace.tobytes()).hexdigest()[:16],
        "noise_prewhitened": scan.noise is not None,
        "slice_positions": positions,
        "slice_directions": directions,
    }
    padding = slice(header.padding_left, header.padding_right)
    if mask[padding].all():
        return Volume(None, kspace, header, target=_target(kspace, header, scan.path), attrs=attrs)
    attrs["acceleration"] = float((header.padding_right - header.padding_left) / mask.sum())
    attrs["num_low_frequency"] = _num_low_frequency(mask)
    return Volume(None, kspace, header, mask=mask.astype(np.float32), attrs=attrs)


def _target(kspace, header, path):
    """fastMRI's target: root-sum-of-squares (multi-coil) or magnitude, center-cropped, float32 ``(slices, h, w)``."""
    images = np.abs(np_ifftc(kspace.astype(np.complex128)))
    if kspace.ndim == 4:
        images = np.sqrt(np.sum(images**2, axis=1))
    if images.shape[-2] < header.target_shape[0] or images.shape[-1] < header.target_shape[1]:
        raise DataError(
            f"{path}: encoded matrix {images.shape[-2:]} smaller than the reconstruction matrix {header.target_shape}"
        )
    return center_crop(images, header.target_shape).astype(np.float32)


def scan_volumes(scan, coils=None, compression="svd"):
    """Assemble a raw scan into fastMRI volumes (see the module docstring).

    Args:
        scan: `RawScan`.
        coils: number of virtual coils to compress to, or None to keep the coils.
        compression: ``"svd"`` or ``"geometric"``.

    Returns:
        dict from file-name suffix (``""`` for the first volume, ``"_rep1"``, ...) to `Volume` (``path``
        None): complex64 k-space ``(slices, coils, H, W)`` or ``(slices, H, W)``, a float32 target or
        a float32 ``(W,)`` mask.

    Raises:
        DataError: naming the file, for a scan without imaging data or whose counters do not fit its header.
        ConfigError: a bad ``coils`` or ``compression``.
    """
    if not scan.readouts:
        raise DataError(f"{scan.path}: no imaging read-outs (only noise, navigator or other non-imaging data)")
    groups = {}
    for readout in scan.readouts:
        groups.setdefault(tuple(readout.group), []).append(readout)
    volumes = {}
    for group in sorted(groups):
        suffix = "".join(f"_{_SUFFIXES[n]}{v}" for n, v in zip(GROUP_COUNTERS, group) if v)
        volumes[suffix] = _volume(groups[group], scan, coils, compression)
    return volumes
