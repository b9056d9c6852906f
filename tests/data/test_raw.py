"""Raw scanner data to fastMRI files: ISMRMRD round trips from the demo data, undersampling, ACS, noise, twix."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from fastmri_recon.data.h5 import Header, Volume, read_volume
from fastmri_recon.data.raw import convert, detect_format, read_raw
from fastmri_recon.data.raw.export import volume_acquisitions, write_ismrmrd
from fastmri_recon.data.raw.header import build_header
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.fourier import np_fftc

ismrmrd = pytest.importorskip("ismrmrd")
GRE = Path(__file__).parents[1] / "fixtures" / "raw" / "gre.dat"
FOV = (220.0, 220.0, 5.0)


def _header_fields(header):
    return (header.encoded_size, header.recon_size, header.encoding_center, header.encoding_maximum,
            header.padding_left, header.padding_right)


@pytest.fixture(scope="module")
def full(demo_dir):
    """A fully sampled multi-coil demo volume (3 slices, 4 coils, 64 x 32)."""
    return read_volume(demo_dir / "multicoil_val" / "demo_001.h5")


@pytest.fixture(scope="module")
def undersampled(demo_dir):
    """An undersampled multi-coil demo test volume (with its mask)."""
    return read_volume(demo_dir / "multicoil_test" / "demo_003.h5")


def _convert(tmp_path, volume, **options):
    raw = tmp_path / "scan.h5"
    write_ismrmrd(volume, raw, field_of_view_mm=FOV, **options)
    return [read_volume(p) for p in convert(raw, tmp_path / "out")]


@pytest.mark.slow
def test_round_trip_fully_sampled(tmp_path, full):
    (back,) = _convert(tmp_path, full)
    assert back.path.name == "scan.h5"
    assert back.kspace.dtype == np.complex64 and np.array_equal(back.kspace, full.kspace)
    assert _header_fields(back.header) == _header_fields(full.header)
    assert back.mask is None
    np.testing.assert_allclose(back.target, full.target, rtol=1e-5, atol=1e-7 * full.target.max())
    assert back.attrs["acquisition"] == full.attrs["acquisition"]
    assert back.attrs["patient_id"] != full.attrs["patient_id"] and not back.attrs["noise_prewhitened"]
    np.testing.assert_allclose(back.attrs["slice_positions"][:, 2], [0.0, 5.0, 10.0])


def test_round_trip_undersampled(tmp_path, undersampled):
    (back,) = _convert(tmp_path, undersampled)
    assert np.array_equal(back.kspace, undersampled.kspace)
    assert np.array_equal(back.mask, undersampled.mask) and back.target is None
    assert back.attrs["acceleration"] == pytest.approx(undersampled.mask.size / undersampled.mask.sum())
    assert back.attrs["num_low_frequency"] >= undersampled.attrs["num_low_frequency"]


def test_missing_lines_of_a_partial_fourier_header(tmp_path, full):
    """Lines beyond ``kspace_encoding_step_1.maximum`` are not acquired: padding_right bounds the data."""
    header = dataclasses.replace(full.header, encoding_maximum=23)  # columns 0..23 of 32 acquired
    kspace = full.kspace.copy()
    kspace[..., 24:] = 0
    (back,) = _convert(tmp_path, Volume(None, kspace, header, attrs=full.attrs))
    assert back.header.padding_right == 24 and back.mask is None  # fully sampled within the header's range
    assert np.array_equal(back.kspace, kspace)


def test_flagged_acs_lines(tmp_path, undersampled, full):
    centre = np.flatnonzero(undersampled.mask)[np.abs(np.flatnonzero(undersampled.mask) - 16) <= 2]
    # imaging lines without the centre, the centre as calibration-only lines, one duplicated as calibration
    imaging_mask = undersampled.mask.copy()
    imaging_mask[centre] = 0
    imaging = dataclasses.replace(undersampled, mask=imaging_mask)
    calibration = dataclasses.replace(undersampled, mask=np.isin(np.arange(32), centre).astype(np.float32))
    other = np.flatnonzero(imaging_mask)[0]
    duplicate = dataclasses.replace(full, mask=np.eye(32, dtype=np.float32)[other])  # different data, same line
    extra = volume_acquisitions(calibration, calibration_columns=centre, calibration_only=True)
    extra += volume_acquisitions(duplicate, calibration_columns=[other], calibration_only=True)
    (back,) = _convert(tmp_path, imaging, calibration_columns=np.flatnonzero(imaging_mask)[:2], extra_acquisitions=extra)
    assert np.array_equal(back.mask, undersampled.mask)
    assert np.array_equal(back.kspace, undersampled.kspace)  # the imaging read-out kept, each line once


def test_noise_prewhitening(tmp_path, full):
    rng = np.random.default_rng(0)
    mixing = np.eye(4) + 0.4 * (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)))
    noise = (1e-6 * mixing @ (rng.standard_normal((4, 3000)) + 1j * rng.standard_normal((4, 3000)))).astype(np.complex64)
    (back,) = _convert(tmp_path, full, noise=noise)
    # NumPy reference: W = sqrt(mean noise variance) * inv(cholesky(noise covariance))
    samples = noise.astype(np.complex128)
    covariance = samples @ samples.conj().T / samples.shape[1]
    whitening = np.sqrt(np.mean(np.diag(covariance).real)) * np.linalg.inv(np.linalg.cholesky(covariance))
    expected = np.einsum("oc,schw->sohw", whitening, full.kspace.astype(np.complex128))
    np.testing.assert_allclose(back.kspace, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    whitened = whitening @ samples
    np.testing.assert_allclose(whitened @ whitened.conj().T / samples.shape[1], np.mean(np.diag(covariance).real) * np.eye(4),
                               atol=1e-9 * np.abs(covariance).max())
    assert back.attrs["noise_prewhitened"]


@pytest.mark.slow
def test_averages_are_summed(tmp_path, full):
    (back,) = _convert(tmp_path, full, extra_acquisitions=volume_acquisitions(full, counters={"average": 1}))
    assert np.array_equal(back.kspace, 2 * full.kspace)


def test_repetitions_become_separate_files(tmp_path, full, undersampled):
    second = dataclasses.replace(undersampled, mask=undersampled.mask)
    first, rep = _convert(tmp_path, full, extra_acquisitions=volume_acquisitions(second, counters={"repetition": 1}))
    assert [first.path.name, rep.path.name] == ["scan.h5", "scan_rep1.h5"]
    assert np.array_equal(first.kspace, full.kspace) and first.mask is None
    assert np.array_equal(rep.mask, undersampled.mask)


def test_3d_cartesian(tmp_path):
    """A 3D acquisition: FFT along the partitions, then one fastMRI slice per partition."""
    rng = np.random.default_rng(1)
    depth, coils, height, width = 4, 2, 16, 8
    images = (rng.standard_normal((depth, coils, height, width)) + 1j * rng.standard_normal((depth, coils, height, width)))
    kspace = np_fftc(images, axes=(0, 2, 3)).astype(np.complex64)
    header = Header((height, width, depth), (height // 2, width, depth), width // 2, width - 1)
    raw = tmp_path / "scan3d.h5"
    dataset = ismrmrd.Dataset(str(raw), "dataset", mode="w")
    dataset.write_xml_header(build_header(header.encoded_size, header.recon_size, (32.0, 8.0, 4.0), (16.0, 8.0, 4.0),
                                          (width // 2, width - 1), (depth // 2, depth - 1)))
    for partition in range(depth):
        part = Volume(None, kspace[partition][None], header)
        for acq in volume_acquisitions(part, counters={"kspace_encode_step_2": partition}):
            dataset.append_acquisition(acq)
    dataset.close()
    (volume,) = read_raw(raw).values()
    np.testing.assert_allclose(volume.kspace, np_fftc(images), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(volume.attrs["slice_positions"][:, 2], [-2.0, -1.0, 0.0, 1.0])


def test_coil_compression_on_conversion(tmp_path, full):
    raw = tmp_path / "scan.h5"
    write_ismrmrd(full, raw)
    (path,) = convert(raw, tmp_path / "out", coils=2)
    assert read_volume(path).kspace.shape == (3, 2, 64, 32)
    with pytest.raises(ConfigError, match="coils=9"):
        convert(raw, tmp_path / "bad", coils=9)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_twix_gre_phantom(tmp_path):
    """The real 2-coil GRE phantom shipped with twixtools (see tests/fixtures/raw/README.md)."""
    twixtools = pytest.importorskip("twixtools")
    if not GRE.is_file():
        pytest.skip(f"{GRE} absent")
    assert detect_format(GRE) == "twix"
    (path,) = convert(GRE, tmp_path)
    volume = read_volume(path)
    assert volume.kspace.shape == (1, 2, 320, 160) and volume.target.shape == (1, 160, 160) and volume.mask is None
    assert volume.header.encoded_size == (320, 160, 1) and volume.header.recon_size == (160, 160, 1)
    assert (volume.header.padding_left, volume.header.padding_right) == (0, 160)
    mapped = twixtools.map_twix(str(GRE), verbose=False)[-1]["image"]
    mapped.flags["remove_os"] = False
    reference = np.squeeze(mapped[:])  # (lines, coils, samples)
    assert np.array_equal(volume.kspace[0], np.transpose(reference, (1, 2, 0)))
    assert volume.attrs["acquisition"] == "gre"
    np.testing.assert_allclose(volume.attrs["slice_directions"][2], [0.0, 0.0384, 0.9993], atol=1e-4)


def test_bad_files_give_one_data_error(tmp_path, full, demo_dir):
    text = tmp_path / "notes.dat"
    text.write_text("not raw data at all\n")
    with pytest.raises(DataError, match="neither ISMRMRD"):
        convert(text, tmp_path / "out")
    with pytest.raises(DataError, match="fastMRI files need no conversion"):
        convert(demo_dir / "multicoil_val" / "demo_001.h5", tmp_path / "out")
    raw = tmp_path / "scan.h5"
    write_ismrmrd(full, raw)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.h5"):
        convert(truncated, tmp_path / "out")
    with pytest.raises(DataError, match="no such file"):
        convert(tmp_path / "missing.h5", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda xml: xml.replace(b">cartesian<", b">radial<"), "unsupported trajectory 'radial'"),
        (lambda xml: xml.replace(b"<reconSpace>", b"<reconSpaceX>").replace(b"</reconSpace>", b"</reconSpaceX>"),
         "not valid ISMRMRD XML.*reconSpaceX"),
        (lambda xml: xml.replace(b"kspace_encoding_step_1>", b"user_0>"), "lacks encoding/encodingLimits/kspace_encoding_step_1"),
        (lambda xml: xml[:100], "not valid ISMRMRD XML"),
    ],
)
def test_bad_headers(tmp_path, full, edit, message):
    raw = tmp_path / "scan.h5"
    write_ismrmrd(full, raw)
    dataset = ismrmrd.Dataset(str(raw), "dataset", mode="r+")
    dataset.write_xml_header(edit(dataset.read_xml_header()))
    dataset.close()
    with pytest.raises(DataError, match=message):
        convert(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_counters_outside_the_header(tmp_path, full):
    raw = tmp_path / "scan.h5"
    small = dataclasses.replace(full, header=dataclasses.replace(full.header, encoding_maximum=15))
    write_ismrmrd(small, raw, extra_acquisitions=volume_acquisitions(dataclasses.replace(full, mask=np.eye(32)[31])))
    with pytest.raises(DataError, match="kspace_encode_step_1 counter 31 is outside"):
        convert(raw, tmp_path / "out")


def test_missing_package_names_the_extra(tmp_path, full, monkeypatch):
    raw = tmp_path / "scan.h5"
    write_ismrmrd(full, raw)
    monkeypatch.setitem(sys.modules, "ismrmrd", None)
    with pytest.raises(ConfigError, match=r'pip install "fastmri-recon\[raw\]"'):
        convert(raw, tmp_path / "out")


@pytest.mark.slow
def test_the_evaluation_of_converted_files_is_the_original_one(tmp_path, demo_dir):
    """demo -> ISMRMRD -> convert: every method scores the same on the converted split (same names, same masks)."""
    from fastmri_recon.data.masks import MaskSampler
    from fastmri_recon.evaluate.evaluate import evaluate_directory
    from fastmri_recon.models.registry import build

    converted = tmp_path / "converted"
    for path in sorted((demo_dir / "multicoil_val").glob("*.h5")):
        raw = tmp_path / "raw" / path.name
        raw.parent.mkdir(exist_ok=True)
        write_ismrmrd(read_volume(path), raw, field_of_view_mm=FOV)
        convert(raw, converted)
    sampler = MaskSampler("equispaced_fraction", [0.08], [4])
    for method in ("zero-filled", "sense"):
        original = evaluate_directory(build(method), method, demo_dir / "multicoil_val", sampler, progress=False)
        again = evaluate_directory(build(method), method, converted, sampler, progress=False)
        assert len(again.summary) == len(original.summary) == 2
        for metric, value in original.summary.means().items():
            assert again.summary.means()[metric] == pytest.approx(value, rel=1e-4), (method, metric)
