"""Regridding, header padding on a new grid, file scanning helpers."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_volume

from fastmri_recon.data.datasets.transforms import grid_padding, regrid, volume_geometry, window_offset
from fastmri_recon.data.datasets.volumes import common_shape, scan_volumes, shard_volumes
from fastmri_recon.data.h5 import read_volume, write_volume
from fastmri_recon.errors import DataError
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_fftc, np_ifftc


@pytest.mark.parametrize("shape, grid", [((64, 30), (40, 36)), ((63, 33), (80, 24)), ((40, 36), (40, 36))])
def test_regrid_keeps_the_target_crop(shape, grid):
    rng = np.random.default_rng(0)
    image = (rng.standard_normal((3, *shape)) + 1j * rng.standard_normal((3, *shape))).astype(np.complex64)
    crop = (20, 22)
    offsets = [window_offset(s, g, c) for s, g, c in zip(shape, grid, crop)]
    result = regrid(tf.constant(np_fftc(image).astype(np.complex64)), tf.constant(offsets), grid).numpy()
    assert result.shape == (3, *grid)
    np.testing.assert_allclose(center_crop(np_ifftc(result), crop), center_crop(image, crop), atol=1e-4)


def test_grid_padding_keeps_the_acquired_frequencies():
    assert grid_padding((0, 32), 32, 32) == (0, 32)
    assert grid_padding((1, 368), 368, 368) == (1, 368)
    left, right = grid_padding((1, 368), 368, 400)  # finer columns over the same frequencies
    assert (left, right) == (1, 400)  # the new column 0 lies below the band of the old column 1
    assert grid_padding((10, 358), 368, 184) == (5, 179)
    assert grid_padding((0, 32), 32, 36) == (0, 36)  # fully sampled stays fully sampled
    assert grid_padding((2, 11), 12, 6) == (1, 6)


def test_geometry_and_helpers(tmp_path):
    random_volume(tmp_path / "a.h5", slices=2, height=16, width=12)
    random_volume(tmp_path / "b.h5", multicoil=True, slices=2, height=16, width=12)
    with pytest.warns(UserWarning, match="b.h5: multi-coil"):
        (volume,) = scan_volumes(tmp_path, False, True, skip_bad_files=True)
    assert volume.kspace_shape == (16, 12) and volume.target_shape == (8, 6) and volume.padding == (0, 12)
    assert volume_geometry(volume, None) == ((16, 12), (0, 12), (0, 0))
    assert volume_geometry(volume, (8, 16)) == ((8, 16), (0, 16), (4, -2))
    assert common_shape([(4, 16, 12), (4, 16, 14)]) == (4, 16, None)
    volume = read_volume(tmp_path / "a.h5")
    volume.header = dataclasses.replace(volume.header, encoding_center=8)  # padding_left = 6 - 8
    write_volume(volume)
    with pytest.raises(DataError, match=r"a.h5: header gives acquired columns \(-2, 10\)"):
        scan_volumes(tmp_path, False, True)
    parts = [shard_volumes(list("abcde"), tf.distribute.InputContext(2, i, 2)) for i in range(2)]
    assert parts == [list("ace"), list("bd")]
