"""Shared fixtures: small fastMRI-format files and a tiny demo data set."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastmri_recon.data.demo import DemoConfig, build_demo_dataset  # noqa: E402
from fastmri_recon.data.h5 import Header, Volume, write_volume  # noqa: E402

MAX_WORKERS = 4
"""At most this many pytest-xdist workers for ``-n auto`` (pyproject.toml): each holds its own TensorFlow."""


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per CPU this process may use, at most `MAX_WORKERS`."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(usable, MAX_WORKERS)


TINY_DEMO = DemoConfig(train_subjects=1, val_subjects=2, test_subjects=2, slices=3, image_size=32, coils=4)


def random_volume(path, multicoil=False, slices=2, height=16, width=12, target=True, mask=False, seed=0):
    """A valid fastMRI volume with random content, written at ``path``; returns the `Volume`."""
    rng = np.random.default_rng(seed)
    shape = (slices, 3, height, width) if multicoil else (slices, height, width)
    kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    header = Header((height, width, 1), (height // 2, width // 2, 1), width // 2, width - 1)
    volume = Volume(
        path,
        kspace,
        header,
        target=rng.random((slices, height // 2, width // 2)).astype(np.float32) if target else None,
        mask=(rng.random(width) > 0.5).astype(np.float32) if mask else None,
        attrs={"acquisition": "CORPD_FBK", "patient_id": "abc"},
    )
    write_volume(volume)
    return volume


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """A tiny demo data set (1 / 2 / 2 subjects, 3 slices, 32 x 32 targets, 4 coils)."""
    out = tmp_path_factory.mktemp("demo")
    build_demo_dataset(out, TINY_DEMO, progress=False)
    return out


TINY_UNET_RUN = {"filters": [4, 8], "n_convs": 1}


@pytest.fixture(scope="session")
def tiny_run(demo_dir, tmp_path_factory):
    """A finished 2-step single-coil U-net training run on the tiny demo data (its run directory)."""
    from fastmri_recon.training.config import TrainConfig
    from fastmri_recon.training.run import run_training

    config = TrainConfig(
        model="unet", model_config=TINY_UNET_RUN, data_dir=str(demo_dir), epochs=1, steps_per_epoch=2,
        output_dir=str(tmp_path_factory.mktemp("runs")), run_name="tiny-unet",
    )
    return Path(run_training(config, progress=False)["run_dir"])
