"""Tests of the training losses: SSIM against the fastMRI metric, MS-SSIM against
tf.image.ssim_multiscale, gradients, serialisation and the name lookup."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from fastmri_recon.errors import ConfigError
from fastmri_recon.evaluate.metrics import tf_ssim
from fastmri_recon.training.losses import (
    LOSS_NAMES,
    MS_SSIM_WEIGHTS,
    MSSSIML1Loss,
    SSIMLoss,
    get_loss,
    ms_ssim,
    ms_ssim_min_size,
)


def smooth_images(shape, seed=0, sigma=2.0):
    """Non-negative smooth random float32 images (batch, H, W) of different scales per image."""
    rng = np.random.default_rng(seed)
    images = np.abs(gaussian_filter(rng.standard_normal(shape), sigma=(0, sigma, sigma)))
    return (images * np.arange(1, shape[0] + 1)[:, None, None]).astype(np.float32)


def noisy(images, seed=1, level=0.2):
    """images + smooth noise of relative level ``level``, kept non-negative."""
    noise = smooth_images(images.shape, seed=seed, sigma=1.0)
    return np.abs(images + level * noise).astype(np.float32)


def reference_ms_ssim(gt, pred, **kwargs):
    """tf.image.ssim_multiscale image by image with data range = that image's max."""
    return np.array(
        [
            tf.image.ssim_multiscale(
                g[..., None], p[..., None], max_val=float(g.max()), **kwargs
            ).numpy()
            for g, p in zip(gt, pred)
        ]
    )


# --- SSIM -----------------------------------------------------------------------------------------


def test_ssim_loss_of_identical_images_is_zero():
    gt = smooth_images((2, 24, 20))
    assert float(SSIMLoss()(gt, gt)) == pytest.approx(0.0, abs=1e-6)


def test_ssim_loss_matches_the_metric():
    gt = smooth_images((3, 24, 20))
    pred = noisy(gt)
    per_image = SSIMLoss(reduction=None)(gt, pred).numpy()
    expected = 1.0 - tf_ssim(gt, pred).numpy()
    assert per_image.shape == (3,)
    np.testing.assert_allclose(per_image, expected, rtol=1e-6, atol=1e-7)
    assert np.all(expected > 1e-3)
    # channel axis accepted on either side; default reduction is the batch mean
    with_channel = SSIMLoss(reduction=None)(gt[..., None], pred).numpy()
    np.testing.assert_allclose(with_channel, per_image, rtol=1e-6)
    mean = float(SSIMLoss()(gt[..., None], pred[..., None]))
    assert mean == pytest.approx(per_image.mean(), rel=1e-6)


def test_ssim_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="7x7"):
        SSIMLoss()(np.ones((1, 6, 10), np.float32), np.ones((1, 6, 10), np.float32))
    with pytest.raises(ValueError, match="same shape"):
        SSIMLoss()(np.ones((1, 8, 10), np.float32), np.ones((1, 8, 12), np.float32))
    with pytest.raises(ValueError, match="batch, H, W"):
        SSIMLoss()(np.ones((8, 10), np.float32), np.ones((8, 10), np.float32))


# --- MS-SSIM + L1 ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 176, 176), (2, 161, 167)])  # even, and odd (padded) sizes
def test_ms_ssim_matches_tensorflow(shape):
    gt = smooth_images(shape)
    pred = noisy(gt)
    got = ms_ssim(gt, pred).numpy()
    expected = reference_ms_ssim(gt, pred)
    assert np.all(expected < 0.999)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(ms_ssim(gt, gt).numpy(), 1.0, atol=1e-5)


@pytest.mark.slow
def test_msssim_l1_loss_value():
    gt = smooth_images((2, 176, 176))
    pred = noisy(gt)
    per_image = MSSSIML1Loss(reduction=None)(gt, pred).numpy()
    l1 = np.mean(np.abs(gt - pred), axis=(1, 2))
    expected = 0.84 * (1 - reference_ms_ssim(gt, pred)) + 0.16 * l1
    np.testing.assert_allclose(per_image, expected, rtol=1e-4, atol=1e-6)
    assert float(MSSSIML1Loss()(gt[..., None], gt)) == pytest.approx(0.0, abs=1e-5)
    assert float(MSSSIML1Loss(alpha=0.0)(gt, pred)) == pytest.approx(l1.mean(), rel=1e-6)


def test_ms_ssim_minimum_size():
    assert ms_ssim_min_size() == 161
    small = smooth_images((1, 160, 176))
    with pytest.raises(ValueError, match="at least 161x161"):
        MSSSIML1Loss()(small, small)
    # a smaller window and fewer scales accept small images (3 taps, 3 scales: 9 pixels)
    assert ms_ssim_min_size(3, 3) == 9
    tiny = smooth_images((2, 9, 12), sigma=1.0)
    loss = MSSSIML1Loss(filter_size=3, power_factors=(0.2, 0.3, 0.5))
    assert np.isfinite(float(loss(tiny, noisy(tiny))))
    with pytest.raises(ValueError, match="at least 9x9"):
        loss(tiny[:, :8], tiny[:, :8])


@pytest.mark.slow
def test_ms_ssim_dynamic_shape_too_small_fails_at_run_time():
    fn = tf.function(ms_ssim, input_signature=[tf.TensorSpec([None, None, None], tf.float32)] * 2)
    images = tf.ones((1, 100, 100))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 161x161"):
        fn(images, images)


@pytest.mark.parametrize("loss", [SSIMLoss(), MSSSIML1Loss()], ids=["ssim", "msssim_l1"])
@pytest.mark.parametrize("case", ["noisy", "anticorrelated", "zero_target"])
def test_gradients_are_finite(loss, case):
    gt = smooth_images((2, 176, 176))
    if case == "noisy":
        pred = noisy(gt)
    elif case == "anticorrelated":  # negative contrast-structure terms, clipped to 0 in MS-SSIM
        pred = gt.max(axis=(1, 2), keepdims=True) - gt
    else:
        gt, pred = np.zeros_like(gt), noisy(gt)
    pred = tf.Variable(pred)
    with tf.GradientTape() as tape:
        value = loss(gt, pred)
    grad = tape.gradient(value, pred)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(grad.numpy()))
    if case == "noisy":
        assert np.max(np.abs(grad.numpy())) > 0


# --- serialisation and lookup ---------------------------------------------------------------------


def test_config_round_trip():
    losses = (SSIMLoss(reduction=None), MSSSIML1Loss(alpha=0.5, filter_size=7, filter_sigma=1.0))
    for loss in losses:
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()
    config = MSSSIML1Loss(power_factors=(0.5, 0.5)).get_config()
    assert config["power_factors"] == [0.5, 0.5] and config["alpha"] == 0.84
    assert tuple(MSSSIML1Loss().power_factors) == MS_SSIM_WEIGHTS


@pytest.mark.slow
def test_compiled_model_with_loss_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16)), keras.layers.Dense(16)])
    loss = MSSSIML1Loss(alpha=0.7, filter_size=3, filter_sigma=0.8, power_factors=(0.4, 0.6))
    model.compile(optimizer="adam", loss=loss)
    images = smooth_images((4, 16, 16), sigma=1.0)
    history = model.fit(images, images, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.loss, MSSSIML1Loss)
    assert loaded.loss.get_config() == loss.get_config()
    assert loaded.evaluate(images, images, verbose=0) == pytest.approx(
        model.evaluate(images, images, verbose=0), rel=1e-6
    )


def test_get_loss():
    assert set(LOSS_NAMES) == {"mae", "mse", "ssim", "msssim_l1"}
    assert isinstance(get_loss("mae"), keras.losses.MeanAbsoluteError)
    assert isinstance(get_loss("mse"), keras.losses.MeanSquaredError)
    assert isinstance(get_loss("SSIM"), SSIMLoss)
    loss = get_loss("msssim_l1", alpha=0.5)
    assert isinstance(loss, MSSSIML1Loss) and loss.alpha == 0.5
    with pytest.raises(ConfigError, match="unknown loss 'l3'") as info:
        get_loss("l3")
    for name in LOSS_NAMES:
        assert name in str(info.value)


def test_invalid_options():
    with pytest.raises(ConfigError, match="alpha"):
        MSSSIML1Loss(alpha=1.5)
    with pytest.raises(ConfigError, match="power_factors"):
        MSSSIML1Loss(power_factors=())
