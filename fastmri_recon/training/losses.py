"""Training losses on magnitude images, and the name -> loss lookup of the training configs.

Every loss takes float32 magnitude images ``(batch, H, W)`` (``(batch, H, W, 1)`` is accepted as
well) and, with ``reduction=None``, returns one value per image ``(batch,)``:

* ``"mae"``: Keras' own ``keras.losses.MeanAbsoluteError`` (the loss of most fastMRI papers).
* ``"mse"``: Keras' own ``keras.losses.MeanSquaredError``.
* ``"ssim"``: `SSIMLoss`, ``1 - SSIM`` with the fastMRI metric's SSIM (7x7 uniform window).
* ``"msssim_l1"``: `MSSSIML1Loss`, Zhao et al. 2017's compound
  ``alpha * (1 - MS-SSIM) + (1 - alpha) * L1``.

Keras' MAE / MSE average over the last axis only, so with ``reduction=None`` they return
``(batch, H)`` for ``(batch, H, W)`` images; the default reduction (``"sum_over_batch_size"``)
gives the mean over all pixels, the same value as the mean of per-image means.

The SSIM-based losses use, like the fastMRI metrics, the max of each target image as its data
range, floored at ``MIN_DATA_RANGE`` so that an all-zero target gives a finite loss.
"""

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.evaluate.metrics import ssim_local_statistics, tf_ssim

#: Smallest data range used by the SSIM losses (all-zero targets would give 0 / 0).
MIN_DATA_RANGE = 1e-7

#: Weights of the 5 scales of MS-SSIM (Wang et al. 2003), finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_K1 = 0.01
_K2 = 0.03


def _as_images(y_true, y_pred):
    """Return ``(y_true, y_pred)`` as float32 ``(batch, H, W)``, dropping a trailing channel of 1.

    Args:
        y_true: target images ``(batch, H, W)`` or ``(batch, H, W, 1)``.
        y_pred: predictions, ``(batch, H, W)`` or ``(batch, H, W, 1)``.

    Raises:
        ValueError: if the shapes are not one of these or do not match.
    """
    images = []
    for x in (y_true, y_pred):
        x = tf.cast(x, tf.float32)
        if x.shape.rank == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        images.append(x)
    y_true, y_pred = images
    if y_true.shape.rank != 3 or not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(
            "y_true and y_pred must be magnitude images of the same shape (batch, H, W) or "
            f"(batch, H, W, 1), got y_true {y_true.shape} and y_pred {y_pred.shape}"
        )
    return y_true, y_pred


def _data_range(y_true):
    """Per-image data range: the max of each target image, floored; float32 ``(batch,)``."""
    return tf.maximum(tf.reduce_max(y_true, axis=[1, 2]), MIN_DATA_RANGE)


def _check_size(shape, minimum, what):
    """Raise a ValueError if a static side of ``shape`` ``(batch, H, W)`` is below ``minimum``."""
    for size in shape[1:3]:
        if size is not None and size < minimum:
            raise ValueError(
                f"{what} needs images of at least {minimum}x{minimum} pixels, got "
                f"{tuple(shape[1:3])}"
            )


def gaussian_window(size, sigma):
    """Normalised 1D Gaussian window, the separable factor of ``tf.image.ssim``'s 2D window.

    Args:
        size: number of taps, a positive int.
        sigma: standard deviation in pixels, positive.

    Returns:
        float32 NumPy array ``(size,)`` summing to 1.
    """
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2
    window = np.exp(-(coords**2) / (2 * sigma**2))
    return (window / window.sum()).astype(np.float32)


def ms_ssim_min_size(filter_size=11, scales=len(MS_SSIM_WEIGHTS)):
    """Smallest image side accepted by `ms_ssim`: ``(filter_size - 1) * 2^(scales - 1) + 1``.

    Each scale halves the image (rounding up) and the coarsest one must still hold the window:
    161 pixels for the defaults (11-tap window, 5 scales).
    """
    return (filter_size - 1) * 2 ** (scales - 1) + 1


def _positive_power(x, exponent):
    """``x ** exponent`` for ``x >= 0`` (0 where ``x <= 0``) with a finite gradient everywhere."""
    positive = x > 0
    safe = tf.where(positive, tf.maximum(x, 1e-30), tf.ones_like(x))
    return tf.where(positive, safe**exponent, tf.zeros_like(x))


def ms_ssim(
    y_true, y_pred, maxval=None, power_factors=MS_SSIM_WEIGHTS, filter_size=11, filter_sigma=1.5
):
    """Per-image multi-scale SSIM, the definition of ``tf.image.ssim_multiscale``.

    At each scale (the first at full resolution, each next one halved by 2x2 average pooling, odd
    sizes padded symmetrically first), the local statistics come from a ``filter_size`` Gaussian
    window of width ``filter_sigma`` over VALID positions, with population (co)variances. MS-SSIM
    is ``prod_j cs_j^w_j`` over the scales with ``l_M * cs_M`` (the SSIM) at the coarsest one,
    where ``cs`` is the contrast-structure term; negative terms count as 0. Unlike
    ``tf.image.ssim_multiscale``, the data range is per image and the gradient stays finite where a
    term is clipped to 0.

    Args:
        y_true: target magnitude images, float32 ``(batch, H, W)``; ``H, W >=
            ms_ssim_min_size(filter_size, len(power_factors))`` (161 for the defaults).
        y_pred: predictions, same shape.
        maxval: data range, a scalar or ``(batch,)``; defaults to the max of each ``y_true`` image.
        power_factors: weights of the scales, finest first; their number is the number of scales.
        filter_size: side of the Gaussian window.
        filter_sigma: standard deviation of the Gaussian window, in pixels.

    Returns:
        float32 tensor ``(batch,)`` in ``[0, 1]``.

    Raises:
        ValueError: on bad shapes or (static) images smaller than the minimum size. With
            dynamic shapes, too small images raise ``tf.errors.InvalidArgumentError`` when run.
    """
    y_true, y_pred = _as_images(y_true, y_pred)
    min_size = ms_ssim_min_size(filter_size, len(power_factors))
    _check_size(
        y_true.shape, min_size, f"MS-SSIM ({len(power_factors)} scales, {filter_size}-tap window)"
    )
    size_check = tf.debugging.assert_greater_equal(
        tf.reduce_min(tf.shape(y_true)[1:3]),
        min_size,
        message=f"MS-SSIM needs images of at least {min_size}x{min_size} pixels",
    )
    with tf.control_dependencies([size_check]):  # dynamic shapes: fail before the convolutions
        y_true, y_pred = tf.identity(y_true), tf.identity(y_pred)
    peak = _data_range(y_true) if maxval is None else tf.cast(maxval, tf.float32)
    peak = tf.reshape(tf.broadcast_to(peak, tf.shape(y_true)[:1]), [-1, 1, 1, 1])
    c1, c2 = tf.square(_K1 * peak), tf.square(_K2 * peak)
    window = tf.constant(gaussian_window(filter_size, filter_sigma))
    rows, cols = tf.reshape(window, [-1, 1, 1, 1]), tf.reshape(window, [1, -1, 1, 1])

    def local_mean(x):
        return tf.nn.conv2d(tf.nn.conv2d(x, rows, 1, "VALID"), cols, 1, "VALID")

    def downsample(x):
        remainder = tf.shape(x)[1:3] % 2
        x = tf.pad(x, [[0, 0], [0, remainder[0]], [0, remainder[1]], [0, 0]], mode="SYMMETRIC")
        return tf.nn.avg_pool2d(x, 2, 2, "VALID")

    x, y = y_true[..., None], y_pred[..., None]
    terms = []
    for scale in range(len(power_factors)):
        if scale > 0:
            x, y = downsample(x), downsample(y)
        ux, uy, vx, vy, vxy = ssim_local_statistics(local_mean, x, y, cov_norm=1.0)
        contrast_structure = (2 * vxy + c2) / (vx + vy + c2)
        if scale < len(power_factors) - 1:
            terms.append(tf.reduce_mean(contrast_structure, axis=[1, 2, 3]))
        else:
            luminance = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
            terms.append(tf.reduce_mean(luminance * contrast_structure, axis=[1, 2, 3]))
    weighted = [_positive_power(t, float(w)) for t, w in zip(terms, power_factors)]
    return tf.reduce_prod(tf.stack(weighted, axis=-1), axis=-1)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class SSIMLoss(keras.losses.Loss):
    """``1 - SSIM`` per image, the SSIM of the fastMRI metric (7x7 uniform window, K1 = 0.01,
    K2 = 0.03, sample covariances, VALID positions) with the max of each target image as its
    data range (`fastmri_recon.evaluate.metrics.tf_ssim`).

    Call with ``y_true``, ``y_pred``: float32 ``(batch, H, W)`` or ``(batch, H, W, 1)``,
    ``H, W >= 7``.
    Per-image values ``(batch,)`` before the reduction.

    Args:
        reduction: Keras loss reduction (default ``"sum_over_batch_size"``: the batch mean).
        name: name of the loss.
        dtype: dtype of the loss computation (the SSIM itself runs in float32).
    """

    def __init__(self, reduction="sum_over_batch_size", name="ssim_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        """Per-image ``1 - SSIM``, float32 ``(batch,)``."""
        y_true, y_pred = _as_images(y_true, y_pred)
        _check_size(y_true.shape, 7, "SSIM (7x7 window)")
        return 1.0 - tf_ssim(y_true, y_pred, maxval=_data_range(y_true))


@keras.saving.register_keras_serializable(package="fastmri_recon")
class MSSSIML1Loss(keras.losses.Loss):
    """Zhao et al. 2017's compound loss ``alpha * (1 - MS-SSIM) + (1 - alpha) * L1`` per image.

    MS-SSIM is `ms_ssim` (that of ``tf.image.ssim_multiscale``: 11-tap Gaussian window of width
    1.5, 5 scales with the standard weights) with the max of each target image as its data range.
    The L1 term is the plain mean absolute error over the image, on the images as given (the
    paper's Gaussian-weighted L1, which only matters for its patch-centre training, is simplified
    away), so its weight relative to the MS-SSIM term depends on the intensity scaling of the data.

    Call with ``y_true``, ``y_pred``: float32 ``(batch, H, W)`` or ``(batch, H, W, 1)`` with
    ``H, W >= ms_ssim_min_size(filter_size, len(power_factors))`` (161 by default). Per-image
    values ``(batch,)`` before the reduction.

    Args:
        alpha: weight of the MS-SSIM term, in ``[0, 1]`` (0.84 in the paper).
        power_factors: MS-SSIM weights of the scales, finest first.
        filter_size: side of the Gaussian window.
        filter_sigma: standard deviation of the Gaussian window, in pixels.
        reduction: Keras loss reduction (default ``"sum_over_batch_size"``: the batch mean).
        name: name of the loss.
        dtype: dtype of the loss computation (MS-SSIM itself runs in float32).

    Raises:
        ConfigError: if ``alpha`` is outside ``[0, 1]`` or ``power_factors`` is empty.
        ValueError: when called on images smaller than the minimum size.
    """

    def __init__(
        self,
        alpha=0.84,
        power_factors=MS_SSIM_WEIGHTS,
        filter_size=11,
        filter_sigma=1.5,
        reduction="sum_over_batch_size",
        name="msssim_l1_loss",
        dtype=None,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"MSSSIML1Loss: alpha must be in [0, 1], got {alpha}")
        if len(power_factors) == 0:
            raise ConfigError("MSSSIML1Loss: power_factors must hold at least one weight")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.power_factors = tuple(float(w) for w in power_factors)
        self.filter_size = int(filter_size)
        self.filter_sigma = float(filter_sigma)

    def call(self, y_true, y_pred):
        """Per-image compound loss, float32 ``(batch,)``."""
        y_true, y_pred = _as_images(y_true, y_pred)
        similarity = ms_ssim(
            y_true,
            y_pred,
            power_factors=self.power_factors,
            filter_size=self.filter_size,
            filter_sigma=self.filter_sigma,
        )
        l1 = tf.reduce_mean(tf.abs(y_true - y_pred), axis=[1, 2])
        return self.alpha * (1.0 - similarity) + (1.0 - self.alpha) * l1

    def get_config(self):
        """The constructor arguments, for ``from_config`` and ``model.save``."""
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "power_factors": list(self.power_factors),
                "filter_size": self.filter_size,
                "filter_sigma": self.filter_sigma,
            }
        )
        return config


_LOSSES = {
    "mae": keras.losses.MeanAbsoluteError,
    "mse": keras.losses.MeanSquaredError,
    "ssim": SSIMLoss,
    "msssim_l1": MSSSIML1Loss,
}

#: The names `get_loss` knows.
LOSS_NAMES = tuple(_LOSSES)


def get_loss(name, **kwargs):
    """A new loss from its configuration name.

    Args:
        name: one of ``"mae"``, ``"mse"``, ``"ssim"``, ``"msssim_l1"`` (case-insensitive).
        **kwargs: constructor arguments of the loss (e.g. ``alpha`` or ``reduction``).

    Returns:
        A ``keras.losses.Loss`` instance.

    Raises:
        ConfigError: for an unknown name; the message lists the known ones.
    """
    key = str(name).lower()
    if key not in _LOSSES:
        raise ConfigError(f"unknown loss {name!r}: expected one of {', '.join(LOSS_NAMES)}")
    return _LOSSES[key](**kwargs)
