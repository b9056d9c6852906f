"""Reading, validating and writing files in the fastMRI HDF5 schema.

A fastMRI volume file holds:

- ``kspace``: complex64 ``(slices, H, W)`` (single-coil) or ``(slices, coils, H, W)`` (multi-coil),
  H the read-out axis, W the phase-encoding (undersampled) axis;
- a target (train / val files): ``reconstruction_esc`` (single-coil) and / or ``reconstruction_rss``,
  float32 ``(slices, h, w)`` with ``(h, w)`` the header's reconstruction matrix;
- ``mask`` (test / challenge files only, no target): ``(W,)`` sampling mask of the stored k-space;
- ``ismrmrd_header``: the ISMRMRD XML header (encoded / reconstruction matrix sizes, encoding limits);
- optionally ``b0_map`` (`FIELD_MAP_KEY`, not part of fastMRI's schema: the demo data's): float32
  ``(slices, h, w)``, the B0 field map of each slice on the target's grid, in Hz, which the non-Cartesian
  pipelines use to simulate off-resonance (`data.datasets.nc_config.NonCartesianConfig.off_resonance`);
- attributes ``acquisition``, ``patient_id`` and, with a target, ``max`` and ``norm``.

`FastMRIFile` validates a file's structure when it opens (without reading the k-space) and reads
slices on demand; `read_volume` reads and checks a whole volume. A data file may not take its data
from elsewhere (HDF5 external links, external storage or virtual datasets), nor declare slices that
cannot fit in memory (`MAX_SLICE_BYTES`). Writers are atomic: they write a temporary file beside the
destination and rename it.
"""

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np

from fastmri_recon.errors import DataError
from fastmri_recon.files import atomic_path

ISMRMRD_NS = "http://www.ismrm.org/ISMRMRD"
TARGET_KEYS = {False: "reconstruction_esc", True: "reconstruction_rss"}
RECONSTRUCTION_KEY = "reconstruction"
FIELD_MAP_KEY = "b0_map"
"""The optional B0 field map dataset (Hz, float32 ``(slices, h, w)`` on the target's grid)."""
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_SLICE_BYTES = 2**30
"""Largest k-space or target slice a file may declare (fastMRI's largest multi-coil slices take about 50 MB)."""


@dataclasses.dataclass(frozen=True)
class Header:
    """What the ISMRMRD header says about the acquisition geometry.

    Attributes:
        encoded_size: encoded matrix ``(x, y, z)``; x is the read-out, y the phase-encoding size.
        recon_size: reconstruction matrix ``(x, y, z)``; the target is ``(x, y)`` in-plane.
        encoding_center: ``kspace_encoding_step_1.center``.
        encoding_maximum: ``kspace_encoding_step_1.maximum``.
    """

    encoded_size: tuple
    recon_size: tuple
    encoding_center: int
    encoding_maximum: int

    @property
    def padding_left(self):
        """First acquired phase-encoding column (fastMRI's ``padding_left``)."""
        return self.encoded_size[1] // 2 - self.encoding_center

    @property
    def padding_right(self):
        """One past the last acquired phase-encoding column (fastMRI's ``padding_right``)."""
        return self.padding_left + self.encoding_maximum + 1

    @property
    def target_shape(self):
        """In-plane size ``(h, w)`` of the target images."""
        return self.recon_size[0], self.recon_size[1]

    def to_xml(self):
        """Serialise as a minimal ISMRMRD XML header (bytes), readable by fastMRI's parser."""
        ET.register_namespace("", ISMRMRD_NS)
        root = ET.Element(f"{{{ISMRMRD_NS}}}ismrmrdHeader")
        encoding = ET.SubElement(root, f"{{{ISMRMRD_NS}}}encoding")
        for space, size in (("encodedSpace", self.encoded_size), ("reconSpace", self.recon_size)):
            matrix = ET.SubElement(ET.SubElement(encoding, f"{{{ISMRMRD_NS}}}{space}"), f"{{{ISMRMRD_NS}}}matrixSize")
            for axis, value in zip("xyz", size):
                ET.SubElement(matrix, f"{{{ISMRMRD_NS}}}{axis}").text = str(int(value))
        limits = ET.SubElement(encoding, f"{{{ISMRMRD_NS}}}encodingLimits")
        step1 = ET.SubElement(limits, f"{{{ISMRMRD_NS}}}kspace_encoding_step_1")
        for name, value in (("minimum", 0), ("maximum", self.encoding_maximum), ("center", self.encoding_center)):
            ET.SubElement(step1, f"{{{ISMRMRD_NS}}}{name}").text = str(int(value))
        return ET.tostring(root, xml_declaration=True, encoding="utf-8")

    @classmethod
    def from_xml(cls, xml, path="<header>"):
        """Parse an ISMRMRD XML header.

        Args:
            xml: the header, bytes or str.
            path: the file it came from, for error messages.

        Raises:
            DataError: if the XML is malformed or lacks a field fastMRI relies on.
        """
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as err:
            raise DataError(f"{path}: ismrmrd_header is not valid XML ({err})") from None

        def query(*names):
            node = root
            for name in names:
                node = node.find(f"{{{ISMRMRD_NS}}}{name}")
                if node is None:
                    raise DataError(f"{path}: ismrmrd_header lacks {'/'.join(names)}")
            try:
                return int(node.text)
            except (TypeError, ValueError):
                raise DataError(f"{path}: ismrmrd_header field {'/'.join(names)} is not an integer") from None

        size = lambda space: tuple(query("encoding", space, "matrixSize", axis) for axis in "xyz")  # noqa: E731
        step1 = ("encoding", "encodingLimits", "kspace_encoding_step_1")
        return cls(size("encodedSpace"), size("reconSpace"), query(*step1, "center"), query(*step1, "maximum"))


def _open(path):
    """Open ``path`` read-only as HDF5, turning every failure into a `DataError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    with open(path, "rb") as handle:
        if handle.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
            raise DataError(f"{path}: not an HDF5 file (no HDF5 signature)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: truncated or corrupt HDF5 file ({err})") from None


def _check_finite(array, path, field):
    if not np.all(np.isfinite(array)):
        raise DataError(f"{path}: {field} contains NaN or Inf values")


class FastMRIFile:
    """One fastMRI HDF5 volume, validated on opening, read slice by slice.

    Use as a context manager (or call `close`). Opening checks the structure — presence, dtype and
    rank of ``kspace``, target and ``mask``, consistent slice counts, target size against the header —
    without reading the k-space; reads check values (NaN / Inf).

    Attributes:
        path: the file's path.
        header: the parsed `Header`.
        num_slices: number of slices.
        is_multicoil: whether k-space has a coil axis.
        kspace_shape: shape of the ``kspace`` dataset.
        target_key: name of the target dataset used (``reconstruction_esc`` for single-coil,
            ``reconstruction_rss`` for multi-coil), or None for a test file.
        has_field_map: whether the file holds a ``b0_map`` (`FIELD_MAP_KEY`).
        attrs: the file attributes as a dict of Python values.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._file = _open(self.path)
        try:
            self._validate()
        except (DataError, OSError, KeyError, RuntimeError) as err:
            self._file.close()
            if isinstance(err, DataError):
                raise
            raise DataError(f"{self.path}: truncated or corrupt HDF5 file ({err})") from None

    def _dataset(self, key):
        link = self._file.get(key, getlink=True)
        if link is None:
            raise DataError(f"{self.path}: missing dataset '{key}'")
        if isinstance(link, h5py.ExternalLink):
            raise DataError(f"{self.path}: '{key}' is an external link to {link.filename}; data files must hold their own data")
        dataset = self._file[key]
        if not isinstance(dataset, h5py.Dataset):
            raise DataError(f"{self.path}: '{key}' is not a dataset")
        if dataset.external or dataset.is_virtual:
            kind = "external storage" if dataset.external else "a virtual dataset"
            raise DataError(f"{self.path}: '{key}' uses {kind} (data in other files); data files must hold their own data")
        return dataset

    def _check_slice_size(self, dataset, key):
        if 0 in dataset.shape:
            raise DataError(f"{self.path}: {key} has an empty axis (shape {dataset.shape})")
        size = int(np.prod(dataset.shape[1:], dtype=np.int64)) * dataset.dtype.itemsize
        if size > MAX_SLICE_BYTES:
            raise DataError(
                f"{self.path}: {key} of shape {dataset.shape} declares {size / 2**30:.1f} GiB per slice, more than "
                f"the {MAX_SLICE_BYTES / 2**30:g} GiB a slice may take"
            )

    def _validate(self):
        kspace = self._dataset("kspace")
        if kspace.dtype.kind != "c":
            raise DataError(f"{self.path}: kspace has dtype {kspace.dtype}, expected complex64")
        if kspace.ndim not in (3, 4):
            raise DataError(
                f"{self.path}: kspace has rank {kspace.ndim} (shape {kspace.shape}), expected "
                "(slices, H, W) for single-coil or (slices, coils, H, W) for multi-coil"
            )
        if kspace.shape[0] == 0:
            raise DataError(f"{self.path}: kspace has no slices")
        self._check_slice_size(kspace, "kspace")
        self.kspace_shape = tuple(kspace.shape)
        self.num_slices = kspace.shape[0]
        self.is_multicoil = kspace.ndim == 4
        self.header = Header.from_xml(self._dataset("ismrmrd_header")[()], self.path)
        padding = (self.header.padding_left, self.header.padding_right)
        if not 0 <= padding[0] <= padding[1] <= kspace.shape[-1]:
            raise DataError(
                f"{self.path}: header gives acquired columns {padding}, outside the k-space's {kspace.shape[-1]} columns"
            )
        self.attrs = {key: self._attribute(key, value) for key, value in self._file.attrs.items()}
        self.target_key = TARGET_KEYS[self.is_multicoil] if TARGET_KEYS[self.is_multicoil] in self._file else None
        if self.target_key is None and "mask" not in self._file:
            raise DataError(
                f"{self.path}: missing dataset '{TARGET_KEYS[self.is_multicoil]}' (target) "
                "and no 'mask' (a test file carries its sampling mask)"
            )
        if self.target_key is not None:
            self._validate_target(self._dataset(self.target_key))
        if "mask" in self._file:
            mask = self._dataset("mask")
            if mask.shape != (kspace.shape[-1],):
                raise DataError(f"{self.path}: mask has shape {mask.shape}, expected ({kspace.shape[-1]},)")
            if mask.dtype.kind not in "biuf":
                raise DataError(f"{self.path}: mask has dtype {mask.dtype.str}, expected bool or numbers")
        self.has_field_map = FIELD_MAP_KEY in self._file
        if self.has_field_map:
            field_map = self._dataset(FIELD_MAP_KEY)
            expected = (self.num_slices, *self.header.target_shape)
            if field_map.dtype.kind != "f" or tuple(field_map.shape) != expected:
                raise DataError(
                    f"{self.path}: {FIELD_MAP_KEY} is {field_map.dtype} of shape {field_map.shape}, expected float32 {expected} "
                    "(a field map in Hz per slice, on the target's grid)"
                )

    def _attribute(self, key, value):
        """A file attribute as a Python value (bytes decoded as UTF-8)."""
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise DataError(f"{self.path}: attribute '{key}' is not UTF-8 text") from None
        if isinstance(value, np.generic):
            return value.item()
        return value

    def _validate_target(self, target):
        if target.dtype.kind != "f":
            raise DataError(f"{self.path}: {self.target_key} has dtype {target.dtype}, expected float32")
        if target.ndim != 3:
            raise DataError(f"{self.path}: {self.target_key} has rank {target.ndim}, expected (slices, h, w)")
        if target.shape[0] != self.num_slices:
            raise DataError(
                f"{self.path}: {self.target_key} has {target.shape[0]} slices but kspace has {self.num_slices}"
            )
        if tuple(target.shape[1:]) != self.header.target_shape:
            raise DataError(
                f"{self.path}: {self.target_key} has in-plane size {tuple(target.shape[1:])}, expected the "
                f"header's reconstruction matrix {self.header.target_shape}"
            )
        self._check_slice_size(target, self.target_key)

    def _read(self, key, index):
        try:
            array = self._dataset(key)[index]
        except (OSError, RuntimeError, ValueError) as err:
            raise DataError(f"{self.path}: cannot read '{key}': truncated or corrupt file ({err})") from None
        _check_finite(array, self.path, key)
        return array

    def kspace(self, index=slice(None)):
        """Read k-space, complex64 ``([slices,] [coils,] H, W)`` for an int or slice ``index``."""
        return self._read("kspace", index).astype(np.complex64, copy=False)

    def target(self, index=slice(None)):
        """Read the target, float32 ``([slices,] h, w)``; None for a test file."""
        if self.target_key is None:
            return None
        return self._read(self.target_key, index).astype(np.float32, copy=False)

    def field_map(self, index=slice(None)):
        """Read the B0 field map, float32 ``([slices,] h, w)`` in Hz; None when the file has none."""
        if not self.has_field_map:
            return None
        return self._read(FIELD_MAP_KEY, index).astype(np.float32, copy=False)

    @property
    def mask(self):
        """The stored sampling mask, float32 ``(W,)``, or None when the file has none."""
        if "mask" not in self._file:
            return None
        return self._read("mask", ()).astype(np.float32)

    def close(self):
        """Close the underlying HDF5 file."""
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclasses.dataclass
class Volume:
    """A whole fastMRI volume in memory.

    Attributes:
        path: the file it was read from (or will be written to).
        kspace: complex64 ``(slices, H, W)`` or ``(slices, coils, H, W)``.
        header: the acquisition `Header`.
        target: float32 ``(slices, h, w)`` or None (test files).
        mask: float32 ``(W,)`` or None (files without a stored mask).
        attrs: file attributes (``acquisition``, ``patient_id``, ``max``, ``norm``, ...).
        field_map: float32 ``(slices, h, w)`` B0 field map in Hz (`FIELD_MAP_KEY`), or None.
    """

    path: Path
    kspace: np.ndarray
    header: Header
    target: np.ndarray = None
    mask: np.ndarray = None
    attrs: dict = dataclasses.field(default_factory=dict)
    field_map: np.ndarray = None

    @property
    def is_multicoil(self):
        return self.kspace.ndim == 4


def read_volume(path):
    """Read and validate a whole fastMRI volume.

    Args:
        path: an ``.h5`` file in the fastMRI schema.

    Returns:
        `Volume`.

    Raises:
        DataError: naming the file and the field when the file does not follow the schema.
    """
    with FastMRIFile(path) as handle:
        return Volume(Path(path), handle.kspace(), handle.header, handle.target(), handle.mask, handle.attrs, handle.field_map())


def list_volumes(directory):
    """The ``.h5`` files of a directory, sorted by name.

    Raises:
        DataError: if the directory does not exist, holds no ``.h5`` file or one whose name is not UTF-8.
    """
    directory = Path(directory)
    if not directory.exists():
        raise DataError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.h5"))
    if not files:
        raise DataError(f"{directory}: no .h5 files")
    for path in files:
        try:
            path.name.encode()
        except UnicodeEncodeError:
            raise DataError(f"{directory}: the file name {ascii(path.name)} is not UTF-8; rename it") from None
    return files


def target_shape(directory):
    """The target size ``(h, w)`` of the first volume of a directory (its header's reconstruction size).

    Raises:
        DataError: as `list_volumes` and `FastMRIFile`.
    """
    with FastMRIFile(list_volumes(directory)[0]) as handle:
        return handle.header.target_shape


def _create(handle, key, data):
    # track_times=False: the same data gives the same bytes.
    handle.create_dataset(key, data=data, track_times=False)


def write_volume(volume):
    """Write a `Volume` in the fastMRI schema, atomically, at ``volume.path``.

    Single-coil targets are stored as ``reconstruction_esc``, multi-coil ones as ``reconstruction_rss``;
    ``max`` and ``norm`` attributes are added from the target when it is given.
    """
    kspace = np.asarray(volume.kspace, dtype=np.complex64)
    with atomic_path(volume.path) as tmp, h5py.File(tmp, "w") as handle:
        _create(handle, "kspace", kspace)
        _create(handle, "ismrmrd_header", np.bytes_(volume.header.to_xml()))
        if volume.target is not None:
            target = np.asarray(volume.target, dtype=np.float32)
            _create(handle, TARGET_KEYS[kspace.ndim == 4], target)
            handle.attrs["max"] = float(target.max())
            handle.attrs["norm"] = float(np.linalg.norm(target))
        if volume.mask is not None:
            _create(handle, "mask", np.asarray(volume.mask, dtype=bool))
        if volume.field_map is not None:
            _create(handle, FIELD_MAP_KEY, np.asarray(volume.field_map, dtype=np.float32))
        for key, value in volume.attrs.items():
            handle.attrs[key] = value


def write_reconstruction(path, reconstruction):
    """Write a fastMRI submission file: dataset ``reconstruction``, float32 ``(slices, h, w)``, atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        _create(handle, RECONSTRUCTION_KEY, np.asarray(reconstruction, dtype=np.float32))
