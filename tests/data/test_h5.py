import dataclasses
import hashlib

import h5py
import numpy as np
import pytest
from conftest import random_volume

from fastmri_recon.data.h5 import (
    FastMRIFile,
    Header,
    list_volumes,
    read_volume,
    write_reconstruction,
    write_volume,
)
from fastmri_recon.errors import DataError
from fastmri_recon.files import atomic_path

# A header as fastMRI's knee files have it (namespace, other fields, 640 x 368 encoded, 320 x 320 recon).
KNEE_HEADER = b"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <studyInformation><studyTime>00:00:00</studyTime></studyInformation>
  <encoding>
    <trajectory>cartesian</trajectory>
    <encodedSpace><matrixSize><x>640</x><y>368</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>161</y><z>4.5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>320</x><y>320</y><z>1</z></matrixSize></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>366</maximum><center>183</center></kspace_encoding_step_1>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>"""


def test_header_parses_fastmri_xml_and_padding():
    header = Header.from_xml(KNEE_HEADER)
    assert header.encoded_size == (640, 368, 1)
    assert header.recon_size == (320, 320, 1)
    assert header.target_shape == (320, 320)
    assert header.padding_left == 368 // 2 - 183 == 1
    assert header.padding_right == 1 + 366 + 1


def test_header_round_trip():
    header = Header((256, 128, 1), (128, 128, 1), 64, 127)
    assert Header.from_xml(header.to_xml()) == header


@pytest.mark.parametrize("xml, field", [(b"<not xml", "not valid XML"), (KNEE_HEADER.replace(b"reconSpace", b"other"), "reconSpace")])
def test_header_errors(xml, field):
    with pytest.raises(DataError, match=field):
        Header.from_xml(xml, "f.h5")


@pytest.mark.parametrize("multicoil", [False, True])
def test_write_read_round_trip(tmp_path, multicoil):
    written = random_volume(tmp_path / "v.h5", multicoil=multicoil)
    volume = read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(volume.kspace, written.kspace)
    np.testing.assert_array_equal(volume.target, written.target)
    assert volume.kspace.dtype == np.complex64 and volume.target.dtype == np.float32
    assert volume.is_multicoil == multicoil
    assert volume.header == written.header
    assert volume.attrs["acquisition"] == "CORPD_FBK"
    assert volume.attrs["max"] == pytest.approx(float(written.target.max()))
    assert volume.attrs["norm"] == pytest.approx(float(np.linalg.norm(written.target)), rel=1e-6)
    with h5py.File(tmp_path / "v.h5") as raw:  # the layout fastMRI's own loaders read
        key = "reconstruction_rss" if multicoil else "reconstruction_esc"
        assert set(raw) == {"kspace", "ismrmrd_header", key}
        Header.from_xml(raw["ismrmrd_header"][()])


def test_slices_read_on_demand(tmp_path):
    written = random_volume(tmp_path / "v.h5", multicoil=True, slices=3)
    with FastMRIFile(tmp_path / "v.h5") as handle:
        assert handle.num_slices == 3 and handle.is_multicoil
        assert handle.target_key == "reconstruction_rss"
        np.testing.assert_array_equal(handle.kspace(1), written.kspace[1])
        np.testing.assert_array_equal(handle.target(slice(1, 3)), written.target[1:3])
        assert handle.mask is None


def test_test_file_with_mask_and_no_target(tmp_path):
    written = random_volume(tmp_path / "t.h5", target=False, mask=True)
    volume = read_volume(tmp_path / "t.h5")
    assert volume.target is None
    np.testing.assert_array_equal(volume.mask, written.mask)
    assert volume.mask.dtype == np.float32


def test_same_data_same_bytes(tmp_path):
    digests = []
    for name in ("a", "b"):
        path = tmp_path / name / "v.h5"
        random_volume(path, seed=3)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_write_reconstruction(tmp_path):
    recon = np.random.default_rng(0).random((2, 8, 8)).astype(np.float64)
    write_reconstruction(tmp_path / "r.h5", recon)
    with h5py.File(tmp_path / "r.h5") as handle:
        assert handle["reconstruction"].dtype == np.float32
        np.testing.assert_allclose(handle["reconstruction"][()], recon, rtol=1e-6)


def test_list_volumes(tmp_path):
    random_volume(tmp_path / "b.h5")
    random_volume(tmp_path / "a.h5")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_volumes(tmp_path)] == ["a.h5", "b.h5"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .h5 files"):
        list_volumes(empty)
    with pytest.raises(DataError, match="no such directory"):
        list_volumes(tmp_path / "missing")


def _rewrite(path, key, data):
    with h5py.File(path, "a") as handle:
        del handle[key]
        if data is not None:
            handle[key] = data


def corrupt(kind, path):
    """Make a bad file of the given kind at ``path``; return the expected message fragment."""
    if kind == "missing":
        return "no such file"
    if kind == "text":
        path.write_text("this is not an HDF5 file\n")
        return "not an HDF5 file"
    volume = random_volume(path, slices=3)
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return "truncated or corrupt"
    if kind == "no_kspace":
        _rewrite(path, "kspace", None)
        return "missing dataset 'kspace'"
    if kind == "rank":
        _rewrite(path, "kspace", volume.kspace[0])
        return "kspace has rank 2"
    if kind == "real":
        _rewrite(path, "kspace", volume.kspace.real)
        return "expected complex64"
    if kind == "nan":
        kspace = volume.kspace.copy()
        kspace[1, 2, 3] = np.nan
        _rewrite(path, "kspace", kspace)
        return "NaN or Inf"
    if kind == "target_size":
        _rewrite(path, "reconstruction_esc", volume.target[:, :-1])
        return "expected the header's reconstruction matrix"
    if kind == "slices":
        _rewrite(path, "reconstruction_esc", volume.target[:2])
        return "2 slices but kspace has 3"
    if kind == "no_target":
        _rewrite(path, "reconstruction_esc", None)
        return "missing dataset 'reconstruction_esc'"
    if kind == "field_map_shape":
        with h5py.File(path, "a") as handle:
            handle["b0_map"] = np.zeros((3, 4, 4), np.float32)
        return r"b0_map is float32 of shape \(3, 4, 4\), expected float32"
    if kind == "field_map_nan":
        with h5py.File(path, "a") as handle:
            handle["b0_map"] = np.full((3, *volume.target.shape[1:]), np.nan, np.float32)
        return "b0_map contains NaN or Inf"
    if kind == "no_header":
        _rewrite(path, "ismrmrd_header", None)
        return "missing dataset 'ismrmrd_header'"
    raise ValueError(kind)


BAD_KINDS = ["missing", "text", "truncated", "no_kspace", "rank", "real", "nan", "target_size", "slices", "no_target", "no_header",
             "field_map_shape", "field_map_nan"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_files_raise_data_error_naming_file(tmp_path, kind):
    path = tmp_path / "bad.h5"
    message = corrupt(kind, path)
    with pytest.raises(DataError, match=message) as info:
        read_volume(path)
    assert str(path) in str(info.value)


def test_field_map_round_trip(tmp_path):
    volume = random_volume(tmp_path / "a.h5", slices=3)
    field_map = np.random.default_rng(0).uniform(-100, 100, volume.target.shape).astype(np.float32)
    write_volume(dataclasses.replace(volume, field_map=field_map))
    back = read_volume(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.field_map, field_map)
    with FastMRIFile(tmp_path / "a.h5") as handle:
        assert handle.has_field_map
        np.testing.assert_array_equal(handle.field_map(1), field_map[1])
    assert read_volume(random_volume(tmp_path / "b.h5", slices=2).path).field_map is None
