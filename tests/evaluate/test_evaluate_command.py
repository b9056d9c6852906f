"""``fastmri-recon evaluate``: methods that do not fit the data are refused before any work."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastmri_recon.errors import DataError
from fastmri_recon.models.registry import build


def run(args):
    exe = Path(sys.executable).with_name("fastmri-recon")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("method", ["sense", "grappa", "e2e-varnet"])
def test_multicoil_only_methods_refuse_singlecoil_files(demo_dir, method):
    done = run(["evaluate", demo_dir / "singlecoil_val", "--model", "zero-filled", "--model", method])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"--model: '{method}' needs multi-coil data; the files of {demo_dir / 'singlecoil_val'} are single-coil" in lines[0]


@pytest.mark.parametrize("name", ["sense", "grappa"])
def test_multicoil_baselines_refuse_singlecoil_kspace(name):
    kspace = np.zeros((1, 16, 8), np.complex64)
    with pytest.raises(DataError, match="multi-coil only"):
        build(name)((kspace, np.ones((1, 8), np.float32)))


@pytest.mark.slow
@pytest.mark.e2e
def test_readme_evaluate_command_in_an_empty_folder(tmp_path):
    """The README's `evaluate demo_data/...` works before the benchmark ran: the demo data is built first."""
    exe = Path(sys.executable).with_name("fastmri-recon")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(exe), "evaluate", "demo_data/singlecoil_val", "--model", "zero-filled", "--quiet"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "building the demo data in demo_data/ first" in done.stderr
    assert "| zero-filled | random x4 (cf 0.08) | 2 |" in done.stdout
    assert (tmp_path / "demo_data" / "demo_info.json").is_file()


@pytest.mark.slow
@pytest.mark.e2e
def test_readme_train_dry_run_in_an_empty_folder(tmp_path):
    """`fastmri-recon train --model pdnet --dry-run` in an empty folder builds the default demo data first."""
    exe = Path(sys.executable).with_name("fastmri-recon")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(exe), "train", "--model", "pdnet", "--dry-run", "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "building the demo data in demo_data/ first" in done.stderr and '"model": "pdnet"' in done.stdout
