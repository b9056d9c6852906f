"""The fastMRI reconstruction metrics: NMSE, PSNR and SSIM.

Two families share one definition:

* NumPy, per volume, exactly as fastMRI's ``evaluate.py`` (which calls scikit-image):
  ``nmse``, ``psnr``, ``ssim``, ``evaluate_volume`` and the ``MetricsSummary`` aggregator that
  reports mean (std) over volumes. The peak value is ``gt.max()`` over the whole volume.
* TensorFlow, per image, for training-time monitoring on batches ``(batch, H, W)``:
  ``tf_nmse``, ``tf_psnr``, ``tf_ssim``. The peak value is the max of each target image.
  ``tf_example_psnr_ssim`` also takes volumes ``(batch, D, H, W)`` (3D models), per volume as the
  NumPy functions: the volume's peak, PSNR over the volume, SSIM averaged over its slices.

SSIM is scikit-image's ``structural_similarity`` with its defaults as fastMRI uses them: a 7x7
uniform window, K1 = 0.01, K2 = 0.03, sample covariances (normalised by NP / (NP - 1), NP = 49), and
the SSIM map averaged after dropping the 3-pixel border where the window leaves the image. PSNR of
identical images is ``inf``, as scikit-image returns.
"""

import math

import numpy as np
import tensorflow as tf
from scipy.ndimage import uniform_filter

from fastmri_recon.ops.crop import center_crop

METRIC_NAMES = ("PSNR", "SSIM", "NMSE")

_K1 = 0.01
_K2 = 0.03
_WIN = 7
_COV_NORM = _WIN**2 / (_WIN**2 - 1)
_PAD = (_WIN - 1) // 2


def _check_volumes(gt, pred):
    """Validate a (target, prediction) pair of volumes and return them as float64 arrays.

    Args:
        gt: array-like, real, shape ``(slices, H, W)``.
        pred: array-like, real, same shape as ``gt``.

    Returns:
        ``(gt, pred)`` as float64 NumPy arrays.

    Raises:
        ValueError: if the shapes differ or are not 3D, if an input is complex, or holds NaN / Inf.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.ndim != 3 or gt.shape != pred.shape:
        raise ValueError(
            f"gt and pred must be volumes of the same shape (slices, H, W), "
            f"got gt {gt.shape} and pred {pred.shape}"
        )
    for name, x in (("gt", gt), ("pred", pred)):
        if np.iscomplexobj(x):
            raise ValueError(f"{name} must be real (magnitude images), got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or Inf values")
    return gt.astype(np.float64), pred.astype(np.float64)


def _peak(gt, maxval):
    """Return the data range: ``maxval`` if given, else ``gt.max()``; it must be positive."""
    peak = float(gt.max() if maxval is None else maxval)
    if not peak > 0:
        raise ValueError(f"the data range (maxval, default gt.max()) must be positive, got {peak}")
    return peak


def nmse(gt, pred):
    """Normalised mean squared error ``||gt - pred||^2 / ||gt||^2`` over the whole volume.

    Args:
        gt: target volume, real float array of shape ``(slices, H, W)``.
        pred: prediction, same shape.

    Returns:
        The NMSE as a Python float (accumulated in float64).

    Raises:
        ValueError: on invalid inputs (see shapes / NaN / Inf) or an all-zero target.
    """
    gt, pred = _check_volumes(gt, pred)
    norm = np.sum(gt**2)
    if norm == 0:
        raise ValueError("gt is all zeros: the NMSE is undefined")
    return float(np.sum((gt - pred) ** 2) / norm)


def psnr(gt, pred, maxval=None):
    """Peak signal-to-noise ratio ``10 log10(maxval^2 / mse)`` over the whole volume, in dB.

    Same value as ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=gt.max())``.

    Args:
        gt: target volume, real float array of shape ``(slices, H, W)``.
        pred: prediction, same shape.
        maxval: data range; defaults to ``gt.max()`` over the volume.

    Returns:
        The PSNR as a Python float; ``inf`` when ``pred`` equals ``gt``.

    Raises:
        ValueError: on invalid inputs or a non-positive data range.
    """
    gt, pred = _check_volumes(gt, pred)
    peak = _peak(gt, maxval)
    mse = np.mean((gt - pred) ** 2)
    if mse == 0:
        return math.inf
    return float(10 * np.log10(peak**2 / mse))


def ssim(gt, pred, maxval=None):
    """Structural similarity, averaged over the slices of a volume.

    Same value as the mean over slices of
    ``skimage.metrics.structural_similarity(gt[i], pred[i], data_range=gt.max())``, computed in
    float64 with a 7x7 uniform window.

    Args:
        gt: target volume, real float array of shape ``(slices, H, W)`` with ``H, W >= 7``.
        pred: prediction, same shape.
        maxval: data range; defaults to ``gt.max()`` over the whole volume.

    Returns:
        The mean SSIM as a Python float.

    Raises:
        ValueError: on invalid inputs, images smaller than 7x7, or a non-positive data range.
    """
    gt, pred = _check_volumes(gt, pred)
    if min(gt.shape[1:]) < _WIN:
        raise ValueError(f"SSIM needs slices of at least {_WIN}x{_WIN}, got {gt.shape[1:]}")
    peak = _peak(gt, maxval)

    def local_mean(x):
        # size 1 on the slice axis: each slice is filtered on its own
        return uniform_filter(x, size=(1, _WIN, _WIN))

    ssim_map = _ssim_map(local_mean, gt, pred, (_K1 * peak) ** 2, (_K2 * peak) ** 2)
    interior = ssim_map[:, _PAD:-_PAD, _PAD:-_PAD]
    return float(np.mean(interior.mean(axis=(1, 2))))


def ssim_local_statistics(local_mean, x, y, cov_norm=_COV_NORM):
    """Local means, variances and covariance of two images; works on NumPy arrays and TF tensors.

    The shared first stage of every SSIM in the package: the fastMRI SSIM here (uniform window,
    sample covariances) and the MS-SSIM of ``fastmri_recon.training.losses`` (Gaussian window,
    ``cov_norm=1`` as ``tf.image.ssim_multiscale``).

    Args:
        local_mean: function returning the window mean of its argument (same shape in and out, or
            the positions it keeps).
        x: target images.
        y: predictions, same shape as ``x``.
        cov_norm: factor applied to the (co)variances: ``NP / (NP - 1)`` for sample covariances
            over a window of ``NP`` pixels (the default, 49 for the 7x7 window), 1 for population
            ones.

    Returns:
        ``(ux, uy, vx, vy, vxy)``: local means of ``x`` and ``y``, their local variances and their
        local covariance, each the shape ``local_mean`` returns.
    """
    ux, uy = local_mean(x), local_mean(y)
    vx = cov_norm * (local_mean(x * x) - ux * ux)
    vy = cov_norm * (local_mean(y * y) - uy * uy)
    vxy = cov_norm * (local_mean(x * y) - ux * uy)
    return ux, uy, vx, vy, vxy


def _ssim_map(local_mean, x, y, c1, c2):
    """SSIM map from a local-mean operator; works on NumPy arrays and TF tensors alike.

    Args:
        local_mean: function returning the 7x7 window mean of its argument.
        x: target images.
        y: predictions, same shape as ``x``.
        c1: ``(K1 * maxval)^2``, broadcastable to the local means.
        c2: ``(K2 * maxval)^2``, broadcastable to the local means.

    Returns:
        The per-pixel SSIM at every position ``local_mean`` returns.
    """
    ux, uy, vx, vy, vxy = ssim_local_statistics(local_mean, x, y)
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return numerator / denominator


def evaluate_volume(gt, pred):
    """All three fastMRI metrics of one volume, on the crops fastMRI's ``evaluate.py`` takes.

    As ``evaluate.py``, both volumes are center-cropped to ``(W, W)``, ``W`` the target's width
    (the target's own size for square targets; a ``48 x 32`` target is compared on its central
    ``32 x 32``). ``evaluate.py`` fails on a target wider than tall; there the whole target is used.
    ``pred`` is first center-cropped to the target's size.

    Args:
        gt: target volume, real float array of shape ``(slices, H, W)``.
        pred: reconstruction of shape ``(slices, H', W')`` with ``H' >= H`` and ``W' >= W``.

    Returns:
        ``{"PSNR": float, "SSIM": float, "NMSE": float}``.

    Raises:
        ValueError: if the volumes are not 3D, have different slice counts, ``pred`` is smaller
            than ``gt`` in-plane, or any metric rejects the inputs.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.ndim != 3 or pred.ndim != 3 or gt.shape[0] != pred.shape[0]:
        raise ValueError(
            f"gt and pred must be volumes (slices, H, W) with the same number of slices, "
            f"got gt {gt.shape} and pred {pred.shape}"
        )
    pred = center_crop(pred, gt.shape[-2:])
    height, width = gt.shape[-2:]
    if height >= width:
        gt, pred = center_crop(gt, (width, width)), center_crop(pred, (width, width))
    return {"PSNR": psnr(gt, pred), "SSIM": ssim(gt, pred), "NMSE": nmse(gt, pred)}


class MetricsSummary:
    """Accumulates per-volume metrics and reports their mean and std over volumes.

    The std is the sample standard deviation (``ddof=1``), as fastMRI's ``Metrics`` (runstats'
    ``Statistics.stddev``); it is NaN with fewer than two volumes.

    Example:
        >>> summary = MetricsSummary()
        >>> summary.add("file1000000", evaluate_volume(gt, recon))  # doctest: +SKIP
        >>> summary.formatted()["PSNR"]  # doctest: +SKIP
        '31.52 (2.614)'
    """

    def __init__(self):
        self._volumes = {}

    def add(self, name, metrics):
        """Record the metrics of one volume.

        Args:
            name: the volume's name (e.g. its file name), unique within the summary.
            metrics: dict metric name -> float; every volume must have the same metric names.

        Raises:
            ValueError: if ``name`` was already added or the metric names differ from earlier ones.
        """
        if name in self._volumes:
            raise ValueError(f"volume {name!r} was already added")
        if self._volumes:
            expected = set(next(iter(self._volumes.values())))
            if set(metrics) != expected:
                raise ValueError(
                    f"volume {name!r} has metrics {sorted(metrics)}, expected {sorted(expected)}"
                )
        self._volumes[name] = {key: float(value) for key, value in metrics.items()}

    def __len__(self):
        return len(self._volumes)

    @property
    def per_volume(self):
        """dict volume name -> dict metric name -> float, in insertion order (a copy)."""
        return {name: dict(values) for name, values in self._volumes.items()}

    def _values(self):
        """dict metric name -> float64 array of its values over the volumes."""
        rows = list(self._volumes.values())
        return {key: np.array([row[key] for row in rows]) for key in rows[0]} if rows else {}

    def means(self):
        """dict metric name -> mean over volumes."""
        return {key: float(np.mean(values)) for key, values in self._values().items()}

    def stds(self):
        """dict metric name -> sample std (ddof=1) over volumes; NaN with one volume."""
        return {
            key: float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            for key, values in self._values().items()
        }

    def formatted(self, digits=4):
        """dict metric name -> ``"mean (std)"`` with ``digits`` significant digits."""
        means, stds = self.means(), self.stds()
        return {key: f"{means[key]:.{digits}g} ({stds[key]:.{digits}g})" for key in means}


def _tf_pair(gt, pred):
    """Cast a batch pair to float32 and check its static shapes.

    Args:
        gt: tensor-like, shape ``(batch, H, W)``.
        pred: tensor-like, same shape.

    Returns:
        ``(gt, pred)`` as float32 tensors.

    Raises:
        ValueError: if the static shapes are not 3D or not compatible.
    """
    gt = tf.cast(tf.convert_to_tensor(gt), tf.float32)
    pred = tf.cast(tf.convert_to_tensor(pred), tf.float32)
    if gt.shape.rank != 3 or not gt.shape.is_compatible_with(pred.shape):
        raise ValueError(
            f"gt and pred must be batches of the same shape (batch, H, W), "
            f"got gt {gt.shape} and pred {pred.shape}"
        )
    return gt, pred


def _tf_peak(gt, maxval):
    """Per-image data range, float32 ``(batch,)``: ``maxval`` broadcast, or each image's max."""
    if maxval is None:
        return tf.reduce_max(gt, axis=[1, 2])
    return tf.broadcast_to(tf.cast(maxval, tf.float32), tf.shape(gt)[:1])


def tf_nmse(gt, pred):
    """Per-image NMSE ``||gt - pred||^2 / ||gt||^2``.

    Args:
        gt: target magnitude images, float32 ``(batch, H, W)``.
        pred: predictions, same shape.

    Returns:
        float32 tensor ``(batch,)``.
    """
    gt, pred = _tf_pair(gt, pred)
    error = tf.reduce_sum(tf.square(gt - pred), axis=[1, 2])
    return error / tf.reduce_sum(tf.square(gt), axis=[1, 2])


def tf_psnr(gt, pred, maxval=None):
    """Per-image PSNR ``10 log10(maxval^2 / mse)`` in dB (``inf`` for identical images).

    Args:
        gt: target magnitude images, float32 ``(batch, H, W)``.
        pred: predictions, same shape.
        maxval: data range, a scalar or ``(batch,)``; defaults to the max of each ``gt`` image.

    Returns:
        float32 tensor ``(batch,)``.
    """
    gt, pred = _tf_pair(gt, pred)
    mse = tf.reduce_mean(tf.square(gt - pred), axis=[1, 2])
    return 10.0 * tf.math.log(tf.square(_tf_peak(gt, maxval)) / mse) / math.log(10.0)


def tf_example_psnr_ssim(gt, pred):
    """Per-example PSNR and SSIM of images or volumes, for validation during training.

    Args:
        gt: float32 targets ``(batch, H, W)`` (per image, as `tf_psnr` / `tf_ssim`) or
            ``(batch, D, H, W)`` (per volume: the volume's max as peak, the MSE over the volume,
            SSIM the mean over the D slices computed with that peak, as `psnr` / `ssim`).
        pred: predictions, same shape.

    Returns:
        ``(psnr, ssim)``: float32 tensors ``(batch,)``.
    """
    gt, pred = tf.cast(tf.convert_to_tensor(gt), tf.float32), tf.cast(tf.convert_to_tensor(pred), tf.float32)
    if gt.shape.rank != 4:
        return tf_psnr(gt, pred), tf_ssim(gt, pred)
    shape = tf.shape(gt)
    peak = tf.reduce_max(gt, axis=[1, 2, 3])
    mse = tf.reduce_mean(tf.square(gt - pred), axis=[1, 2, 3])
    psnr = 10.0 * tf.math.log(tf.square(peak) / mse) / math.log(10.0)
    slices = tf.concat([[-1], shape[2:]], 0)
    slice_ssim = tf_ssim(tf.reshape(gt, slices), tf.reshape(pred, slices), maxval=tf.repeat(peak, shape[1]))
    return psnr, tf.reduce_mean(tf.reshape(slice_ssim, shape[:2]), axis=1)


def tf_ssim(gt, pred, maxval=None):
    """Per-image SSIM, the same definition as ``ssim`` (7x7 uniform window, VALID positions).

    Args:
        gt: target magnitude images, float32 ``(batch, H, W)`` with ``H, W >= 7``.
        pred: predictions, same shape.
        maxval: data range, a scalar or ``(batch,)``; defaults to the max of each ``gt`` image.

    Returns:
        float32 tensor ``(batch,)``.
    """
    gt, pred = _tf_pair(gt, pred)
    peak = _tf_peak(gt, maxval)[:, None, None]

    def local_mean(x):
        # VALID windows are exactly the positions skimage keeps after cropping its border
        return tf.nn.avg_pool2d(x[..., None], _WIN, 1, "VALID")[..., 0]

    ssim_map = _ssim_map(local_mean, gt, pred, tf.square(_K1 * peak), tf.square(_K2 * peak))
    return tf.reduce_mean(ssim_map, axis=[1, 2])
