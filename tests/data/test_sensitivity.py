"""Sensitivity maps from the auto-calibration region, against the demo data's simulated coils."""

import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.data.demo import birdcage_maps
from fastmri_recon.data.h5 import read_volume
from fastmri_recon.data.masks import MaskSampler, apply_mask, center_mask
from fastmri_recon.data.sensitivity import acs_columns, acs_sensitivity_maps, espirit_maps
from fastmri_recon.ops.fourier import np_ifftc


@pytest.fixture(scope="module")
def multicoil_volume(demo_dir):
    """Fully sampled multi-coil k-space (3 slices, 4 coils, 64 x 32) and its true coil maps."""
    kspace = read_volume(demo_dir / "multicoil_val" / "demo_001.h5").kspace
    return kspace, birdcage_maps(kspace.shape[1], kspace.shape[-2:])


def correlation_inside_object(estimate, truth, kspace):
    """Mean over the object of |<s_est, s_true>| / (|s_est| |s_true|), across coils at each pixel."""
    rss = np.sqrt(np.sum(np.abs(np_ifftc(kspace)) ** 2, axis=0))
    inside = rss > 0.2 * rss.max()
    inner = np.abs(np.sum(estimate * truth.conj(), axis=0))
    norms = np.linalg.norm(estimate, axis=0) * np.linalg.norm(truth, axis=0)
    return np.mean(inner[inside] / np.maximum(norms[inside], 1e-12))


def test_acs_maps_match_the_simulated_coils(multicoil_volume):
    kspace, truth = multicoil_volume
    mask, _ = MaskSampler("random", [0.08], [4])(32, seed="demo_001.h5")  # 3 ACS columns of 32
    undersampled = apply_mask(kspace, mask)
    maps = acs_sensitivity_maps(tf.constant(undersampled), tf.constant(np.tile(mask, (3, 1)))).numpy()
    assert maps.shape == kspace.shape and maps.dtype == np.complex64
    for index in range(3):
        assert correlation_inside_object(maps[index], truth, kspace[index]) > 0.98
    norms = np.linalg.norm(maps, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, atol=1e-5)  # unit norm inside, zero background
    single = acs_sensitivity_maps(tf.constant(undersampled[1]), tf.constant(mask)).numpy()
    np.testing.assert_allclose(single, maps[1], atol=1e-6)


def test_espirit_maps_match_the_simulated_coils(multicoil_volume):
    kspace, truth = multicoil_volume
    mask = center_mask(32, 12)  # ESPIRiT needs a calibration region wider than its kernel
    for index in range(3):
        maps = espirit_maps(apply_mask(kspace[index], mask), mask)
        assert maps.shape == kspace.shape[1:] and maps.dtype == np.complex64
        assert correlation_inside_object(maps, truth, kspace[index]) > 0.99
        norms = np.linalg.norm(maps, axis=0)
        np.testing.assert_allclose(norms[norms > 0], 1.0, atol=1e-5)
        kept = norms > 0
        assert np.all(maps[0][kept].real >= 0) and np.allclose(maps[0][kept].imag, 0, atol=1e-6)
    with pytest.raises(ValueError, match="centre column is not sampled"):
        espirit_maps(kspace[0], np.ones(32) - center_mask(32, 1))


def test_acs_columns():
    mask = np.zeros((3, 12), np.float32)
    mask[0, [1, 5, 6, 7, 9]] = 1  # band 5..7 around column 6
    mask[1, [6, 7, 8, 9, 10, 11]] = 1  # band reaching the edge
    mask[2, [5, 7]] = 1  # centre column not sampled: no band
    expected = np.zeros((3, 12), np.float32)
    expected[0, 5:8] = 1
    expected[1, 6:] = 1
    np.testing.assert_array_equal(acs_columns(mask).numpy(), expected)
    np.testing.assert_array_equal(tf.function(acs_columns)(tf.constant(mask[0])).numpy(), expected[0])
