"""Tests of the fastMRI metrics: hand-computed values, scikit-image as reference, TF vs NumPy."""

import math
import statistics

import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fastmri_recon.evaluate.metrics import (
    MetricsSummary,
    evaluate_volume,
    nmse,
    psnr,
    ssim,
    tf_nmse,
    tf_example_psnr_ssim,
    tf_psnr,
    tf_ssim,
)


def smooth_volume(rng, shape, sigma=2.0):
    """Non-negative smooth random volume, smoothed in-plane only."""
    return np.abs(gaussian_filter(rng.standard_normal(shape), sigma=(0, sigma, sigma)))


@pytest.fixture
def pair():
    """(gt, pred) float64 volumes (3, 40, 48): smooth target, prediction = target + smooth error."""
    rng = np.random.default_rng(0)
    gt = smooth_volume(rng, (3, 40, 48))
    pred = gt + 0.3 * smooth_volume(rng, gt.shape, sigma=1.0) - 0.05
    return gt, pred


def skimage_ssim(gt, pred):
    """fastMRI's SSIM: mean over slices of skimage's SSIM with data_range = gt.max()."""
    return np.mean([structural_similarity(g, p, data_range=gt.max()) for g, p in zip(gt, pred)])


# --- hand-computed values ------------------------------------------------------------------------


def test_constant_offset_by_hand():
    gt = np.full((2, 8, 8), 2.0)
    pred = gt + 0.1
    assert nmse(gt, pred) == pytest.approx(0.01 / 4.0, rel=1e-12)
    assert psnr(gt, pred) == pytest.approx(10 * math.log10(4.0 / 0.01), rel=1e-12)
    # flat images: only the luminance term, (2 ux uy + C1) / (ux^2 + uy^2 + C1), C1 = (0.01 * 2)^2
    c1 = (0.01 * 2.0) ** 2
    assert ssim(gt, pred) == pytest.approx((2 * 2.0 * 2.1 + c1) / (4.0 + 2.1**2 + c1), rel=1e-12)


def test_identical_images(pair):
    gt, _ = pair
    assert nmse(gt, gt) == 0.0
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert psnr(gt, gt) == math.inf  # as skimage


def test_explicit_maxval(pair):
    gt, pred = pair
    assert psnr(gt, pred, maxval=2 * gt.max()) == pytest.approx(
        psnr(gt, pred) + 20 * math.log10(2), rel=1e-12
    )
    assert ssim(gt, pred, maxval=gt.max()) == ssim(gt, pred)


# --- against scikit-image ------------------------------------------------------------------------


def test_psnr_matches_skimage(pair):
    gt, pred = pair
    assert psnr(gt, pred) == pytest.approx(
        peak_signal_noise_ratio(gt, pred, data_range=gt.max()), rel=1e-12
    )


def test_ssim_matches_skimage(pair):
    gt, pred = pair
    assert ssim(gt, pred) == pytest.approx(skimage_ssim(gt, pred), abs=1e-10)


def test_ssim_matches_skimage_float32_and_non_square():
    rng = np.random.default_rng(1)
    gt = smooth_volume(rng, (2, 33, 21)).astype(np.float32)
    pred = (gt + 0.2 * rng.standard_normal(gt.shape)).astype(np.float32)
    assert ssim(gt, pred) == pytest.approx(skimage_ssim(gt, pred), abs=1e-6)
    assert psnr(gt, pred) == pytest.approx(
        peak_signal_noise_ratio(gt, pred, data_range=gt.max()), abs=1e-5
    )


def test_nmse_matches_fastmri_formula(pair):
    gt, pred = pair
    expected = np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2
    assert nmse(gt, pred) == pytest.approx(expected, rel=1e-12)


# --- evaluate_volume ------------------------------------------------------------------------------


def test_evaluate_volume_crops_prediction(pair):
    gt, pred = pair
    big = np.full((3, 44, 55), 1e3)  # junk outside the centre must not count
    big[:, 2:42, 3:51] = pred  # center_crop offsets: (44 - 40) // 2, (55 - 48) // 2
    result = evaluate_volume(gt, big)
    assert set(result) == {"PSNR", "SSIM", "NMSE"}
    assert result["PSNR"] == psnr(gt, pred)
    assert result["SSIM"] == ssim(gt, pred)
    assert result["NMSE"] == nmse(gt, pred)


def test_evaluate_volume_takes_fastmri_crop_of_tall_targets():
    """fastMRI's evaluate.py center-crops target and reconstruction to (W, W) before its metrics."""
    rng = np.random.default_rng(5)
    gt = smooth_volume(rng, (3, 48, 32))
    pred = gt + 0.3 * smooth_volume(rng, gt.shape, sigma=1.0)
    g, p = gt[:, 8:40], pred[:, 8:40]  # fastMRI's center_crop to (32, 32): rows (48 - 32) // 2 on
    result = evaluate_volume(gt, pred)
    assert result["SSIM"] == pytest.approx(skimage_ssim(g, p), rel=1e-12)
    assert result["PSNR"] == pytest.approx(peak_signal_noise_ratio(g, p, data_range=g.max()), rel=1e-12)
    assert result["NMSE"] == pytest.approx(np.linalg.norm(g - p) ** 2 / np.linalg.norm(g) ** 2, rel=1e-12)
    assert result["SSIM"] != pytest.approx(skimage_ssim(gt, pred), rel=1e-6)  # the whole target differs


def test_evaluate_volume_rejects_smaller_prediction_and_slice_mismatch(pair):
    gt, pred = pair
    with pytest.raises(ValueError):
        evaluate_volume(gt, pred[:, :30])
    with pytest.raises(ValueError, match=r"\(2, 40, 48\)"):
        evaluate_volume(gt, pred[:2])


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [nmse, psnr, ssim])
def test_shape_mismatch_names_shapes(metric, pair):
    gt, pred = pair
    with pytest.raises(ValueError, match=r"gt \(3, 40, 48\) and pred \(3, 40, 47\)"):
        metric(gt, pred[..., :47])


@pytest.mark.parametrize("metric", [nmse, psnr, ssim])
def test_not_3d(metric, pair):
    gt, pred = pair
    with pytest.raises(ValueError, match=r"\(40, 48\)"):
        metric(gt[0], pred[0])


@pytest.mark.parametrize("metric", [nmse, psnr, ssim])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(metric, bad, pair):
    gt, pred = pair
    pred = pred.copy()
    pred[1, 5, 5] = bad
    with pytest.raises(ValueError, match="pred contains NaN or Inf"):
        metric(gt, pred)
    with pytest.raises(ValueError, match="gt contains NaN or Inf"):
        metric(pred, gt)


def test_degenerate_inputs(pair):
    gt, pred = pair
    with pytest.raises(ValueError, match="all zeros"):
        nmse(np.zeros_like(gt), pred)
    with pytest.raises(ValueError, match="must be positive"):
        psnr(np.zeros_like(gt), pred)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(gt[:, :6], pred[:, :6])
    with pytest.raises(ValueError, match="real"):
        nmse(gt.astype(np.complex64), pred)


# --- aggregator -----------------------------------------------------------------------------------


def test_summary_mean_std_and_format():
    summary = MetricsSummary()
    volumes = {
        "a": {"PSNR": 30.0, "SSIM": 0.80, "NMSE": 0.02},
        "b": {"PSNR": 32.0, "SSIM": 0.90, "NMSE": 0.01},
        "c": {"PSNR": 34.5, "SSIM": 0.85, "NMSE": 0.03},
    }
    for name, metrics in volumes.items():
        summary.add(name, metrics)
    assert len(summary) == 3
    assert summary.per_volume == volumes
    for key in ("PSNR", "SSIM", "NMSE"):
        values = [v[key] for v in volumes.values()]
        assert summary.means()[key] == pytest.approx(statistics.mean(values), rel=1e-12)
        # sample std (ddof=1), as fastMRI's runstats Statistics.stddev
        assert summary.stds()[key] == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert summary.formatted()["PSNR"] == "32.17 (2.255)"
    assert summary.formatted(digits=2)["SSIM"] == "0.85 (0.05)"


def test_summary_single_volume_and_errors():
    summary = MetricsSummary()
    assert summary.means() == {}
    summary.add("a", {"PSNR": 30.0, "SSIM": 0.8, "NMSE": 0.02})
    assert summary.means()["SSIM"] == 0.8
    assert math.isnan(summary.stds()["SSIM"])
    with pytest.raises(ValueError, match="already added"):
        summary.add("a", {"PSNR": 31.0, "SSIM": 0.8, "NMSE": 0.02})
    with pytest.raises(ValueError, match="expected"):
        summary.add("b", {"PSNR": 31.0})


def test_summary_from_evaluate_volume(pair):
    gt, pred = pair
    summary = MetricsSummary()
    summary.add("v0", evaluate_volume(gt, pred))
    summary.add("v1", evaluate_volume(gt, gt + 0.01))
    assert summary.means()["SSIM"] == pytest.approx((ssim(gt, pred) + ssim(gt, gt + 0.01)) / 2)


# --- TensorFlow versions --------------------------------------------------------------------------


def per_slice(metric, gt, pred):
    """NumPy metric of each slice on its own (so maxval = that slice's max, as the TF versions)."""
    return np.array([metric(gt[i : i + 1], pred[i : i + 1]) for i in range(len(gt))])


def test_tf_metrics_match_numpy(pair):
    gt, pred = (x.astype(np.float32) for x in pair)
    np.testing.assert_allclose(tf_ssim(gt, pred).numpy(), per_slice(ssim, gt, pred), atol=1e-4)
    np.testing.assert_allclose(tf_psnr(gt, pred).numpy(), per_slice(psnr, gt, pred), rtol=1e-5)
    np.testing.assert_allclose(tf_nmse(gt, pred).numpy(), per_slice(nmse, gt, pred), rtol=1e-5)


def test_tf_example_metrics_of_volumes_are_the_numpy_volume_metrics(pair):
    gt, pred = (x.astype(np.float32) for x in pair)
    volumes = np.stack([gt, gt[::-1]]), np.stack([pred, pred[::-1] * 0.9])  # (2, 3, 40, 48)
    got_psnr, got_ssim = (t.numpy() for t in tf_example_psnr_ssim(*volumes))
    np.testing.assert_allclose(got_psnr, [psnr(g, p) for g, p in zip(*volumes)], rtol=1e-5)
    np.testing.assert_allclose(got_ssim, [ssim(g, p) for g, p in zip(*volumes)], atol=1e-4)
    images_psnr, images_ssim = (t.numpy() for t in tf_example_psnr_ssim(gt, pred))  # (batch, H, W): per image
    np.testing.assert_allclose(images_psnr, per_slice(psnr, gt, pred), rtol=1e-5)
    np.testing.assert_allclose(images_ssim, per_slice(ssim, gt, pred), atol=1e-4)


def test_tf_ssim_one_slice_matches_skimage(pair):
    gt, pred = (x[:1].astype(np.float32) for x in pair)
    expected = structural_similarity(gt[0], pred[0], data_range=gt[0].max())
    assert tf_ssim(gt, pred).numpy()[0] == pytest.approx(expected, abs=1e-4)


def test_tf_metrics_in_graph_with_unknown_batch_and_maxval(pair):
    gt, pred = (x.astype(np.float32) for x in pair)
    spec = tf.TensorSpec([None, None, None], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def all_metrics(x, y):
        return tf_psnr(x, y, maxval=2.0), tf_ssim(x, y, maxval=2.0), tf_nmse(x, y)

    got_psnr, got_ssim, got_nmse = (t.numpy() for t in all_metrics(gt, pred))
    assert got_psnr.shape == got_ssim.shape == got_nmse.shape == (3,)
    pairs = [(g[None], p[None]) for g, p in zip(gt, pred)]
    np.testing.assert_allclose(got_psnr, [psnr(g, p, maxval=2.0) for g, p in pairs], rtol=1e-5)
    np.testing.assert_allclose(got_ssim, [ssim(g, p, maxval=2.0) for g, p in pairs], atol=1e-4)


def test_tf_identical_and_validation(pair):
    gt = pair[0].astype(np.float32)
    assert np.all(np.isinf(tf_psnr(gt, gt).numpy()))
    np.testing.assert_allclose(tf_ssim(gt, gt).numpy(), 1.0, atol=1e-5)
    np.testing.assert_array_equal(tf_nmse(gt, gt).numpy(), 0.0)
    with pytest.raises(ValueError, match=r"\(3, 40, 48\).*\(3, 40, 47\)"):
        tf_nmse(gt, gt[..., :47])
    with pytest.raises(ValueError, match="batch, H, W"):
        tf_ssim(gt[0], gt[0])
