"""Reconstructions as NIfTI and DICOM: geometry from the header, pixels equal to the reconstruction."""

from pathlib import Path

import nibabel
import numpy as np
import pytest

from fastmri_recon.data.h5 import read_volume
from fastmri_recon.data.raw import convert
from fastmri_recon.errors import DataError
from fastmri_recon.outputs import ImageGeometry, dicom_levels, image_geometry, write_dicom_series, write_nifti

pydicom = pytest.importorskip("pydicom")
GRE = Path(__file__).parent / "fixtures" / "raw" / "gre.dat"


@pytest.fixture(scope="module")
def gre_file(tmp_path_factory):
    """The twix GRE phantom converted to a fastMRI file (field of view 200 mm, 160 x 160, 4 mm slice)."""
    pytest.importorskip("twixtools")
    if not GRE.is_file():
        pytest.skip(f"{GRE} absent")
    (path,) = convert(GRE, tmp_path_factory.mktemp("gre"))
    return path


def _images(slices=3, size=(8, 6), seed=0):
    return np.random.default_rng(seed).random((slices,) + size).astype(np.float32) * 1e-4


def test_geometry_of_a_converted_file(gre_file):
    geometry = image_geometry(gre_file)
    assert geometry.pixel_spacing_mm == (1.25, 1.25) and geometry.slice_thickness_mm == 4.0
    np.testing.assert_allclose(geometry.positions, [[-2.5897, 53.9224, -53.9995]], atol=1e-3)


def test_nifti_affine_matches_the_field_of_view(gre_file, tmp_path):
    volume = read_volume(gre_file)
    geometry = image_geometry(gre_file)
    path = tmp_path / "gre.nii.gz"
    write_nifti(path, volume.target, geometry, description="rss")
    image = nibabel.load(path)
    assert image.shape == (160, 160, 1)
    np.testing.assert_array_equal(np.asarray(image.dataobj), np.transpose(volume.target, (1, 2, 0)))
    np.testing.assert_allclose(nibabel.affines.voxel_sizes(image.affine), [200 / 160, 200 / 160, 4.0], rtol=1e-6)
    # the centre voxel (80, 80) sits at the slice position, in RAS
    centre = image.affine @ [80, 80, 0, 1]
    np.testing.assert_allclose(centre[:3], np.diag([-1, -1, 1]) @ geometry.positions[0], atol=1e-4)
    assert image.header.get_sform(coded=True)[1] == 1 and image.header["descrip"].tobytes().startswith(b"rss")


def test_nifti_of_a_file_without_geometry(demo_dir, tmp_path):
    path = demo_dir / "multicoil_val" / "demo_001.h5"
    geometry = image_geometry(path)
    write_nifti(tmp_path / "demo.nii", read_volume(path).target, geometry)
    image = nibabel.load(tmp_path / "demo.nii")
    np.testing.assert_allclose(nibabel.affines.voxel_sizes(image.affine), [1.0, 1.0, 1.0])
    assert image.shape == (32, 32, 3)


def _geometry(slices=3):
    directions = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    positions = np.array([[0.0, 0.0, 2.5 * i] for i in range(slices)])
    return ImageGeometry((0.5, 0.75), 2.0, positions, directions)


def test_dicom_series_opens_with_pixels_equal_to_the_reconstruction(tmp_path):
    images = _images()
    geometry = _geometry()
    files = write_dicom_series(tmp_path / "series", images, geometry, "xpdnet x4", patient_id="abc", seed="vol1")
    assert [f.name for f in files] == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm"]
    pixels, slope, intercept = dicom_levels(images)
    series = set()
    for index, path in enumerate(files):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.Modality == "MR"
        assert ds.SeriesDescription == "xpdnet x4" and ds.InstanceNumber == index + 1
        assert str(ds.PatientName) == "ANONYMOUS" and ds.PatientID.startswith("ANON-") and "abc" not in ds.PatientID
        assert np.array_equal(ds.pixel_array, pixels[index])
        rescaled = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(rescaled, images[index], atol=float(ds.RescaleSlope) / 2 * 1.0001)
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [0.5, 0.75])
        np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient], [1, 0, 0, 0, 1, 0])
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], [-3 * 0.75, -4 * 0.5, 2.5 * index])
        assert float(ds.SpacingBetweenSlices) == 2.5 and float(ds.SliceThickness) == 2.0
        series.add(ds.SeriesInstanceUID)
    assert len(series) == 1
    again = write_dicom_series(tmp_path / "series", images[:2], _geometry(2), "xpdnet x4", "abc", seed="vol1")
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == [p.name for p in again]  # replaced as a whole
    assert pydicom.dcmread(again[0]).SeriesInstanceUID == series.pop()  # reproducible with a seed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_images_write_nothing(tmp_path):
    images = _images()
    images[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_dicom_series(tmp_path / "series", images, _geometry(), "unet x4", "abc")
    with pytest.raises(DataError, match="expected \\(slices, h, w\\)"):
        write_nifti(tmp_path / "a.nii", _images(2), _geometry(3))
    assert list(tmp_path.iterdir()) == []
