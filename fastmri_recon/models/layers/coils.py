"""Coil-wise helpers of the networks that estimate or refine coil sensitivity maps.

The sensitivity networks (XPDNet's map refinement, E2E-VarNet's map estimation) apply one
complex-image network to every coil independently (`apply_per_coil`, coils folded into the batch)
and normalise the maps so that their root-sum-of-squares over coils is 1 (`normalize_by_rss`).
`low_frequency_mask` finds the fully-sampled centre of a Cartesian mask as fastMRI's VarNet does.
`build_smaps_refiner` is the map refiner of XPDNet and NC-PDNet (a residual U-net per coil).
"""

import tensorflow as tf

from fastmri_recon.models.layers.multiscale import ComplexDenoiser
from fastmri_recon.models.layers.unet import UNet

RSS_EPSILON = 1e-12  # under the square root: keeps maps and gradients finite where all coils vanish


def rss(x, axis=1):
    """Root-sum-of-squares of the magnitudes over ``axis`` (the coils).

    Args:
        x: complex64 ``(batch, coils, H, W)``.
        axis: the coil axis.

    Returns:
        float32 ``(batch, H, W)``.
    """
    return tf.sqrt(tf.reduce_sum(tf.square(tf.abs(x)), axis=axis))


def normalize_by_rss(maps):
    """Divide coil maps by their root-sum-of-squares over coils (``sum_c |S_c|^2 = 1`` afterwards).

    Args:
        maps: complex64 ``(batch, coils, H, W)``.

    Returns:
        complex64 ``(batch, coils, H, W)``.
    """
    inverse = tf.math.rsqrt(tf.reduce_sum(tf.square(tf.abs(maps)), axis=1, keepdims=True) + RSS_EPSILON)
    return maps * tf.complex(inverse, 0.0)


def apply_per_coil(network, images):
    """Apply a complex-image network to each coil image, with shared weights.

    Args:
        network: a layer mapping complex64 ``(n, H, W, 1)`` to ``(n, H, W, 1)`` (a
            `multiscale.ComplexDenoiser`).
        images: complex64 ``(batch, coils, H, W)``.

    Returns:
        complex64 ``(batch, coils, H, W)``.
    """
    shape = tf.shape(images)
    folded = tf.reshape(images, tf.concat([[-1], shape[2:], [1]], 0))
    return tf.reshape(network(folded), shape)


SMAPS_REFINER = dict(filters=(4, 8, 16), n_convs=2, activation="lrelu")
"""The default map refiner: a U-net of 3 levels of 4, 8, 16 filters, 2 convolutions each, leaky ReLU."""


def build_smaps_refiner(params=None, odd_padding="end"):
    """The sensitivity-map refiner of the unrolled networks: ``S + U(S)`` per coil (complex maps).

    Args:
        params: `layers.unet.UNet` arguments replacing `SMAPS_REFINER`'s (the benchmark code's
            refiners also have a leaky-ReLU 4-channel 1x1 convolution before the output one), or None.
        odd_padding: where an odd padding's extra pixel goes (`multiscale.ComplexDenoiser`).

    Returns:
        `multiscale.ComplexDenoiser` named ``smaps_refiner``, mapping complex64 ``(n, H, W, 1)`` to
        ``(n, H, W, 1)``; use it with `refine_smaps`.
    """
    unet = UNet(out_channels=2, **{**SMAPS_REFINER, **(params or {})})
    return ComplexDenoiser(unet, residual=True, odd_padding=odd_padding, name="smaps_refiner")


def refine_smaps(refiner, smaps):
    """Refine each coil's map with ``refiner`` (`build_smaps_refiner`) and renormalise by the RSS.

    Args:
        refiner: the refiner layer.
        smaps: complex64 ``(batch, coils, H, W)``.

    Returns:
        complex64 ``(batch, coils, H, W)`` with root-sum-of-squares 1 over coils.
    """
    return normalize_by_rss(apply_per_coil(refiner, smaps))


def low_frequency_mask(mask):
    """The auto-calibration (low-frequency) columns of a Cartesian mask, as fastMRI's VarNet finds them.

    From the centre column ``W // 2``, ``left`` columns are sampled contiguously to its left and
    ``right`` from it to the right; the centre kept is the symmetric run of
    ``n = max(2 min(left, right), 1)`` columns starting at ``(W - n + 1) // 2``.

    Args:
        mask: float ``(batch, W)`` or ``(W,)`` of zeros and ones.

    Returns:
        float32 ``(batch, W)`` (``(1, W)`` for a ``(W,)`` mask): ones on the centre columns.
    """
    mask = tf.cast(mask, tf.float32)
    if mask.shape.rank == 1:
        mask = mask[None]
    width = tf.shape(mask)[-1]
    centre = width // 2
    left = tf.reduce_sum(tf.math.cumprod(tf.reverse(mask[:, :centre], [1]), axis=1), axis=1)
    right = tf.reduce_sum(tf.math.cumprod(mask[:, centre:], axis=1), axis=1)
    count = tf.maximum(2.0 * tf.minimum(left, right), 1.0)[:, None]
    start = tf.math.floordiv(tf.cast(width, tf.float32) - count + 1.0, 2.0)
    columns = tf.cast(tf.range(width), tf.float32)[None]
    return tf.cast((columns >= start) & (columns < start + count), tf.float32)
