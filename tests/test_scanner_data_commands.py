"""A user's own scanner data end to end on the command line: convert, evaluate, reconstruct as NIfTI / DICOM."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

GRE = Path(__file__).resolve().parent / "fixtures" / "raw" / "gre.dat"


def run(*args, cwd=None):
    exe = Path(sys.executable).with_name("fastmri-recon")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
@pytest.mark.e2e
def test_convert_the_twix_phantom_then_evaluate_it(tmp_path):
    pytest.importorskip("twixtools")
    done = run("convert", GRE, tmp_path / "scan")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "scan" / "gre.h5").is_file() and "1 file(s) written" in done.stdout
    evaluated = run("evaluate", tmp_path / "scan", "--model", "zero-filled", "--model", "sense", "--mask-type", "equispaced",
                    "--acceleration", "2", "--center-fraction", "0.16", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "| sense | equispaced x2 (cf 0.16) | 1 |" in evaluated.stdout
    bad = run("convert", tmp_path / "scan" / "gre.h5", tmp_path / "again")
    assert bad.returncode == 2 and "fastMRI files need no conversion" in bad.stderr and len(bad.stderr.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.e2e
def test_reconstruct_as_nifti_and_dicom(demo_dir, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    nibabel = pytest.importorskip("nibabel")
    test_dir = demo_dir / "singlecoil_test"
    assert run("reconstruct", "--model", "zero-filled", test_dir, tmp_path / "h5", "--quiet").returncode == 0
    for output_format in ("nifti", "dicom"):
        done = run("reconstruct", "--model", "zero-filled", test_dir, tmp_path / output_format, "--format", output_format, "--quiet")
        assert done.returncode == 0, done.stderr
    for path in sorted(test_dir.glob("*.h5")):
        with h5py.File(tmp_path / "h5" / path.name) as handle:
            expected = handle["reconstruction"][()]
        image = nibabel.load(tmp_path / "nifti" / f"{path.stem}.nii.gz")
        np.testing.assert_allclose(np.transpose(np.asarray(image.dataobj), (2, 0, 1)), expected, rtol=1e-6)
        slices = [pydicom.dcmread(f) for f in sorted((tmp_path / "dicom" / path.stem).glob("*.dcm"))]
        assert len(slices) == len(expected) and slices[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
        assert slices[0].SeriesDescription.startswith("zero-filled x") and slices[0].PatientName == "ANONYMOUS"
        pixels = np.stack([s.pixel_array * float(s.RescaleSlope) + float(s.RescaleIntercept) for s in slices])
        np.testing.assert_allclose(pixels, expected, atol=float(slices[0].RescaleSlope))


def _bad_raw_files(directory, volume):
    """name -> a bad raw file: truncated, not raw data, a non-Cartesian trajectory, a header without encoding limits."""
    ismrmrd = pytest.importorskip("ismrmrd")
    from fastmri_recon.data.raw.export import write_ismrmrd

    good = directory / "good.h5"
    write_ismrmrd(volume, good)
    files = {"text.dat": b"not raw data at all\n", "truncated.h5": good.read_bytes()[: good.stat().st_size // 2]}
    for name, path in files.items():
        (directory / name).write_bytes(path)
    for name, edit in {
        "radial.h5": lambda xml: xml.replace(b">cartesian<", b">radial<"),
        "no_limits.h5": lambda xml: xml.replace(b"kspace_encoding_step_1>", b"user_0>"),
    }.items():
        write_ismrmrd(volume, directory / name)
        dataset = ismrmrd.Dataset(str(directory / name), "dataset", mode="r+")
        dataset.write_xml_header(edit(dataset.read_xml_header()))
        dataset.close()
    return {name: directory / name for name in ("text.dat", "truncated.h5", "radial.h5", "no_limits.h5")}


@pytest.mark.slow
@pytest.mark.e2e
def test_bad_raw_files_one_line_exit_2_nothing_written(demo_dir, tmp_path):
    from fastmri_recon.data.h5 import read_volume

    volume = read_volume(demo_dir / "multicoil_val" / "demo_001.h5")
    for name, path in _bad_raw_files(tmp_path, volume).items():
        done = run("convert", path, tmp_path / f"out_{name}")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, (name, done.stderr)
        assert str(path) in lines[0], name
        assert not (tmp_path / f"out_{name}").exists() or not any((tmp_path / f"out_{name}").iterdir()), name
