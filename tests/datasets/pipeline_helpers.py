"""Helpers and fixtures of the pipeline tests (imported by the test modules: no second conftest.py)."""

import shutil

import h5py
import numpy as np
import pytest

from fastmri_recon.data.h5 import read_volume


def copy_files(sources, directory):
    """Copy files into ``directory`` (created); returns the copies' paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return [shutil.copy(source, directory / source.name) for source in sources]


def set_acquisition(path, acquisition):
    with h5py.File(path, "a") as handle:
        handle.attrs["acquisition"] = acquisition


def scaled_targets(directory, scale=1e6):
    """``{(file name, slice): target * scale}`` of every file of a directory."""
    return {
        (path.name, index): target * np.float32(scale)
        for path in sorted(directory.glob("*.h5"))
        for index, target in enumerate(read_volume(path).target)
    }


def identify(target, targets):
    """The ``(file name, slice)`` whose scaled target equals ``target``."""
    matches = [key for key, value in targets.items() if np.array_equal(value, target)]
    assert len(matches) == 1
    return matches[0]


def demo_files_copy(demo_dir, tmp_path_factory, coils):
    """A folder with copies of the tiny demo's ``{coils}`` train and val files (3 volumes of 3 slices)."""
    sources = sorted((demo_dir / f"{coils}_train").glob("*.h5")) + sorted((demo_dir / f"{coils}_val").glob("*.h5"))
    directory = tmp_path_factory.mktemp(coils)
    copy_files(sources, directory)
    return directory


@pytest.fixture(scope="module")
def singlecoil_dir(demo_dir, tmp_path_factory):
    """Three single-coil volumes with targets (the demo's train and val files), 3 slices each."""
    return demo_files_copy(demo_dir, tmp_path_factory, "singlecoil")
