"""Reconstructions as images a viewer opens: NIfTI (nibabel) and DICOM (pydicom).

A reconstruction is float32 ``(slices, h, w)``: h along the read-out (H) axis of its fastMRI file,
w along the phase-encoding (W) axis. Its geometry (`ImageGeometry`, `image_geometry`) comes from the
file's header — pixel spacing = reconstruction field of view / reconstruction matrix, slice thickness =
the field of view's z — and, for files made by ``convert``, from the slice positions and directions
it carries (`fastmri_recon.data.raw.scan.GEOMETRY_ATTRIBUTES`, patient coordinates LPS in mm).
Without them (fastMRI's and the demo files): 1 mm pixels when the header has no field of view,
read-out along the patient's x (R -> L), phase encoding along y (A -> P), slices along z, centred at 0.

- `write_nifti`: one ``.nii`` / ``.nii.gz`` volume, data ``(h, w, slices)``, the affine (RAS, mm)
  from the geometry, both sform and qform set (scanner coordinates).
- `write_dicom_series`: one MR Image Storage series per volume, one file per slice, 16-bit unsigned
  pixels with a rescale slope and intercept (``pixel * RescaleSlope + RescaleIntercept`` is the
  reconstruction to within half a slope), geometry tags, a series description naming the model and
  acceleration, and an anonymous patient (name ``ANONYMOUS``, ID ``ANON-`` and a hash): no identity
  is invented or copied.

Both write atomically: a temporary file (NIfTI) or folder (DICOM series) renamed when complete.
"""

import dataclasses
import gzip
import hashlib
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import nibabel
import numpy as np

from fastmri_recon.data.h5 import ISMRMRD_NS, FastMRIFile
from fastmri_recon.data.raw.optional import require
from fastmri_recon.data.raw.scan import GEOMETRY_ATTRIBUTES
from fastmri_recon.errors import DataError
from fastmri_recon.files import atomic_path, make_directory

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
PIXEL_LEVELS = 65535
"""Largest 16-bit DICOM pixel value: the reconstruction's range is mapped onto ``0..PIXEL_LEVELS``."""


@dataclasses.dataclass(frozen=True)
class ImageGeometry:
    """Where a reconstruction's pixels are, in patient coordinates (LPS, mm).

    Attributes:
        pixel_spacing_mm: ``(along h, along w)``.
        slice_thickness_mm: the slice thickness.
        positions: float64 ``(slices, 3)``, the centre of each slice (pixel ``(h // 2, w // 2)``).
        directions: float64 ``(3, 3)``, rows the unit vectors along h, along w and the slice normal.
    """

    pixel_spacing_mm: tuple
    slice_thickness_mm: float
    positions: np.ndarray
    directions: np.ndarray

    def slice_step(self):
        """The vector between consecutive slices, float64 ``(3,)`` (thickness along the normal for one slice)."""
        if len(self.positions) > 1:
            return (self.positions[-1] - self.positions[0]) / (len(self.positions) - 1)
        return self.slice_thickness_mm * self.directions[2]

    def corner(self, index, shape):
        """LPS position of the first pixel of slice ``index`` of ``(h, w)`` images, float64 ``(3,)``."""
        offsets = np.array([shape[0] // 2, shape[1] // 2]) * np.asarray(self.pixel_spacing_mm)
        return self.positions[index] - offsets @ self.directions[:2]

    def affine(self, shape):
        """The NIfTI affine (RAS, mm) of a ``(h, w, slices)`` array of ``(h, w)`` images, float64 ``(4, 4)``."""
        affine = np.eye(4)
        columns = np.stack([self.directions[0] * self.pixel_spacing_mm[0], self.directions[1] * self.pixel_spacing_mm[1],
                            self.slice_step()], axis=1)
        affine[:3, :3] = LPS_TO_RAS @ columns
        affine[:3, 3] = LPS_TO_RAS @ self.corner(0, shape)
        return affine


def _recon_fov(xml):
    """The header's reconstruction field of view ``(x, y, z)`` in mm, or None when it has none."""
    try:
        root = ET.fromstring(xml)
        node = root.find(f"{{{ISMRMRD_NS}}}encoding/{{{ISMRMRD_NS}}}reconSpace/{{{ISMRMRD_NS}}}fieldOfView_mm")
        return None if node is None else tuple(float(node.find(f"{{{ISMRMRD_NS}}}{a}").text) for a in "xyz")
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        return None


def image_geometry(path):
    """The geometry of the reconstruction of a fastMRI file (see the module docstring).

    Args:
        path: the fastMRI file that was reconstructed.

    Returns:
        `ImageGeometry`.

    Raises:
        DataError: for a file that does not follow the fastMRI schema, or geometry attributes of the wrong shape.
    """
    with FastMRIFile(path) as handle:
        header, attrs, slices = handle.header, handle.attrs, handle.num_slices
    with h5py.File(path, "r") as handle:
        fov = _recon_fov(handle["ismrmrd_header"][()])
    height, width = header.target_shape
    spacing = (fov[0] / height, fov[1] / width) if fov else (1.0, 1.0)
    thickness = fov[2] if fov else 1.0
    if all(name in attrs for name in GEOMETRY_ATTRIBUTES):
        positions = np.asarray(attrs["slice_positions"], np.float64)
        directions = np.asarray(attrs["slice_directions"], np.float64)
        if positions.shape != (slices, 3) or directions.shape != (3, 3):
            raise DataError(
                f"{path}: slice_positions {positions.shape} / slice_directions {directions.shape}: expected "
                f"({slices}, 3) and (3, 3)"
            )
    else:
        directions = np.eye(3)
        positions = np.outer(np.arange(slices) - slices // 2, directions[2] * thickness)
    return ImageGeometry(spacing, thickness, positions, directions)


def _check_images(images, geometry, path):
    images = np.asarray(images, np.float32)
    if images.ndim != 3 or len(images) != len(geometry.positions):
        raise DataError(
            f"{path}: images of shape {images.shape}: expected (slices, h, w) with the geometry's {len(geometry.positions)} slices"
        )
    if not np.all(np.isfinite(images)):
        raise DataError(f"{path}: the reconstruction contains NaN or Inf values")
    return images


def write_nifti(path, images, geometry, description=""):
    """Write a reconstruction as a NIfTI-1 file, atomically.

    Args:
        path: ``.nii`` or ``.nii.gz`` (gzip-compressed) file.
        images: float32 ``(slices, h, w)``.
        geometry: `ImageGeometry` of the images.
        description: the header's ``descrip`` (at most 80 characters are kept).

    Raises:
        DataError: images not ``(slices, h, w)`` with the geometry's slices, non-finite values, or a
            path that cannot be written.
    """
    path = Path(path)
    images = _check_images(images, geometry, path)
    data = np.ascontiguousarray(np.transpose(images, (1, 2, 0)))
    affine = geometry.affine(images.shape[1:])
    image = nibabel.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_sform(affine, code="scanner")
    image.set_qform(affine, code="scanner")
    image.header["descrip"] = description[:80].encode("ascii", "replace")
    content = image.to_bytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(content, mtime=0) if path.name.endswith(".gz") else content)


class _atomic_directory:
    """A temporary folder beside ``path`` that replaces ``path`` on success and is removed on failure."""

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        make_directory(self.path.parent)
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent))
        except OSError as err:
            raise DataError(f"{self.path}: cannot write ({err.strerror or err})") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                old = None
                if self.path.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
                    os.replace(self.path, old / self.path.name)
                os.replace(self.tmp, self.path)
                if old is not None:
                    shutil.rmtree(old)
                return
            except OSError as err:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise DataError(f"{self.path}: cannot write ({err.strerror or err})") from None
        shutil.rmtree(self.tmp, ignore_errors=True)


def anonymous_patient_id(key):
    """An anonymous DICOM patient ID from a key (the fastMRI file's ``patient_id``, a file name): ``ANON-`` and 12 hex digits."""
    return "ANON-" + hashlib.sha256(str(key).encode()).hexdigest()[:12]


def _dicom_slice(images, index, geometry, levels, uids, series):
    """The DICOM dataset of slice ``index`` (pixels already scaled to ``levels``)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    instance_uid = generate_uid(entropy_srcs=[uids["instance"], str(index)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, instance_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids["study"], uids["series"], uids["frame"]
    ds.PatientName, ds.PatientID = "ANONYMOUS", series["patient_id"]
    ds.PatientBirthDate = ds.PatientSex = ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ""
    ds.StudyID = ds.AccessionNumber = ds.PositionReferenceIndicator = ""
    ds.Modality, ds.Manufacturer, ds.SoftwareVersions = "MR", "", series["software"]
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = series["description"], series["number"], index + 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = f"{geometry.slice_thickness_mm:.6g}"
    ds.SpacingBetweenSlices = f"{np.linalg.norm(geometry.slice_step()):.6g}"
    ds.PixelSpacing = [f"{s:.6g}" for s in geometry.pixel_spacing_mm]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in geometry.corner(index, images.shape[1:])]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in np.concatenate([geometry.directions[1], geometry.directions[0]])]
    ds.SliceLocation = f"{geometry.positions[index] @ geometry.directions[2]:.6f}"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = images.shape[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{levels[0]:.8g}", f"{levels[1]:.8g}", "US"
    ds.WindowCenter, ds.WindowWidth = f"{PIXEL_LEVELS / 2:g}", f"{PIXEL_LEVELS:g}"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = images[index].astype("<u2").tobytes()
    return ds


def dicom_levels(images):
    """The 16-bit pixels of a reconstruction and their rescale slope and intercept.

    Args:
        images: float32 ``(slices, h, w)``.

    Returns:
        ``(pixels, slope, intercept)``: uint16 ``(slices, h, w)`` with
        ``round((images - intercept) / slope)``; intercept ``min(0, images.min())``.
    """
    intercept = min(0.0, float(images.min()))
    intercept = float(f"{intercept:.8g}")  # values that their DICOM decimal strings give back exactly
    slope = float(f"{(float(images.max()) - intercept) / PIXEL_LEVELS or 1.0:.8g}")
    pixels = np.clip(np.round((images.astype(np.float64) - intercept) / slope), 0, PIXEL_LEVELS).astype(np.uint16)
    return pixels, slope, intercept


def write_dicom_series(directory, images, geometry, description, patient_id, series_number=1, seed=None):
    """Write a reconstruction as a DICOM series (MR Image Storage), one file per slice, atomically.

    Args:
        directory: the series folder, replaced as a whole; files ``IM0001.dcm``, ... (one per slice).
        images: float32 ``(slices, h, w)``.
        geometry: `ImageGeometry` of the images.
        description: the series description (model and acceleration, ``"xpdnet x4"``); at most 64 characters kept.
        patient_id: a key for the anonymous patient ID (`anonymous_patient_id`; the file's ``patient_id``).
        series_number: the DICOM series number.
        seed: makes the study, series and instance UIDs reproducible (None: new UIDs each time).

    Returns:
        list of the written files.

    Raises:
        ConfigError: pydicom is not installed (``pip install "fastmri-recon[raw]"``).
        DataError: images not ``(slices, h, w)`` with the geometry's slices, non-finite values, or
            a directory that cannot be written.
    """
    require("pydicom", "writing DICOM files")
    from pydicom.uid import generate_uid

    from fastmri_recon import __version__

    directory = Path(directory)
    images = _check_images(images, geometry, directory)
    pixels, slope, intercept = dicom_levels(images)
    seed = seed if seed is not None else generate_uid()
    uids = {  # one study and frame of reference per seed (volume), one series per description (model)
        "study": generate_uid(entropy_srcs=[seed, "study"]), "frame": generate_uid(entropy_srcs=[seed, "frame"]),
        "series": generate_uid(entropy_srcs=[seed, description, "series"]), "instance": f"{seed}|{description}",
    }
    series = {
        "patient_id": anonymous_patient_id(patient_id), "description": description[:64], "number": int(series_number),
        "software": f"fastmri-recon {__version__}",
    }
    names = [f"IM{index + 1:04d}.dcm" for index in range(len(images))]
    with _atomic_directory(directory) as tmp:
        for index, name in enumerate(names):
            ds = _dicom_slice(pixels, index, geometry, (slope, intercept), uids, series)
            ds.save_as(tmp / name, enforce_file_format=True)
    return [directory / name for name in names]
