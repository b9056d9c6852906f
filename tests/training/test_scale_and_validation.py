"""The k-space scale is part of a run's preprocessing (recorded, applied by every command), ``--data-scale``
brings data in other units to the model's, and training logs fastMRI's per-volume validation figures."""

import csv
import json
import shutil

import h5py
import numpy as np
import pytest
from test_cli import run_main

from fastmri_recon.errors import ConfigError
from fastmri_recon.hub.locate import resolve
from fastmri_recon.training.config import TrainConfig, from_dict

UNITS = 1e-3
"""The scanner units of the scaled copies: the demo data's values times this."""


def scaled_copy(source, destination, factor):
    """A copy of the fastMRI files of ``source`` with k-space, targets and their ``max`` multiplied by ``factor``."""
    destination.mkdir()
    for path in sorted(source.glob("*.h5")):
        with h5py.File(path, "r") as original, h5py.File(destination / path.name, "w") as copy:
            for key, value in original.attrs.items():
                copy.attrs[key] = value * factor if key in ("max", "norm") else value
            for key in original:
                data = original[key][()]
                copy[key] = data * np.asarray(factor, data.dtype) if key == "kspace" or key.startswith("reconstruction") else data
    return destination


@pytest.mark.parametrize("model, expected", [("unet", 1e6), ("ncpdnet", 1e6), ("ncpdnet-3d", 1.0)])
def test_scale_factor_default_is_recorded_and_reaches_the_pipeline(model, expected):
    config = TrainConfig(model=model)
    assert config.scale_factor == expected and config.to_json()["scale_factor"] == expected
    assert config.pipeline(0).scale_factor == expected
    given = TrainConfig(model=model, scale_factor=250.0)
    assert given.pipeline(3).scale_factor == 250.0
    stored = {key: value for key, value in config.to_json().items() if key != "scale_factor"}  # a run of an older version
    assert from_dict(stored).scale_factor == expected


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), "big", True])
def test_bad_scale_factor_is_refused(value):
    with pytest.raises(ConfigError, match="scale_factor="):
        TrainConfig(scale_factor=value)


def _with_scale(run_dir, destination, scale_factor):
    """A copy of a run directory whose recorded scale factor is ``scale_factor``."""
    shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns(".lock"))
    path = destination / "config.json"
    stored = json.loads(path.read_text())
    stored["config"]["scale_factor"] = scale_factor
    path.write_text(json.dumps(stored))
    return destination


def _psnr_row(out, label):
    row = next(line for line in out.splitlines() if line.startswith(f"| {label} |"))
    return row.split("|")[4]  # the PSNR cell


@pytest.mark.slow
def test_evaluate_applies_the_run_scale_and_the_data_scale(tiny_run, demo_dir, tmp_path, capfd):
    run = _with_scale(tiny_run, tmp_path / "tiny-unet", 1e6 / UNITS)  # as if trained on data in UNITS, scaled to the same inputs
    assert resolve(str(run)).scale_factor == pytest.approx(1e6 / UNITS)
    scanner = scaled_copy(demo_dir / "singlecoil_val", tmp_path / "scanner_val", UNITS)
    reference = ["--model", str(tiny_run), "--quiet"]
    status, out, err = run_main(["evaluate", str(demo_dir / "singlecoil_val"), *reference], capfd)
    assert status == 0, err
    expected = _psnr_row(out, "tiny-unet")
    # the same network, told that it was trained on data in other units, sees the same inputs
    status, out, err = run_main(["evaluate", str(scanner), "--model", str(run), "--quiet"], capfd)
    assert status == 0, err
    assert _psnr_row(out, "tiny-unet") == expected
    # the original run on data in other units: --data-scale brings them to its units
    status, out, err = run_main(["evaluate", str(scanner), *reference, "--data-scale", str(1 / UNITS)], capfd)
    assert status == 0, err
    assert _psnr_row(out, "tiny-unet") == expected
    status, out, err = run_main(["evaluate", str(scanner), *reference], capfd)
    assert status == 0, err
    assert _psnr_row(out, "tiny-unet") != expected


@pytest.mark.slow
def test_reconstruct_with_data_scale_writes_in_the_files_units(tiny_run, demo_dir, tmp_path, capfd):
    scanner = scaled_copy(demo_dir / "singlecoil_test", tmp_path / "scanner_test", UNITS)
    status, _, err = run_main(["reconstruct", str(demo_dir / "singlecoil_test"), str(tmp_path / "ref"), "--model", str(tiny_run), "--quiet"], capfd)
    assert status == 0, err
    args = ["reconstruct", str(scanner), str(tmp_path / "scaled"), "--model", str(tiny_run), "--data-scale", str(1 / UNITS), "--quiet"]
    status, _, err = run_main(args, capfd)
    assert status == 0, err
    for path in sorted((tmp_path / "ref").glob("*.h5")):
        with h5py.File(path) as ref, h5py.File(tmp_path / "scaled" / path.name) as scaled:
            np.testing.assert_allclose(scaled["reconstruction"][()], ref["reconstruction"][()] * UNITS, rtol=1e-4, atol=1e-9)


def test_bad_data_scale_one_line_status_2(demo_dir, capfd):
    status, _, err = run_main(["evaluate", str(demo_dir / "singlecoil_val"), "--data-scale", "0"], capfd)
    assert status == 2 and len(err) == 1 and "--data-scale" in err[0]


def test_training_logs_fastmri_per_volume_validation(tiny_run, demo_dir, capfd):
    """metrics.csv's per-volume figures are what `evaluate` reports for the same weights (one epoch: the final ones)."""
    with open(tiny_run / "metrics.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    for name in ("val_PSNR", "val_SSIM", "val_PSNR_volumes", "val_SSIM_volumes", "val_NMSE_volumes"):
        assert np.isfinite(float(row[name])), name
    status, out, err = run_main(["evaluate", str(demo_dir / "singlecoil_val"), "--model", str(tiny_run), "--weights", "final", "--quiet"], capfd)
    assert status == 0, err
    assert float(_psnr_row(out, "tiny-unet").split()[0]) == pytest.approx(float(row["val_PSNR_volumes"]), abs=0.01)
