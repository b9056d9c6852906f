"""Coil-wise helpers of the networks that estimate or refine coil sensitivity maps.

The sensitivity networks (XPDNet's map refinement, E2E-VarNet's map estimation) apply one
complex-image network to every coil independently (`apply_per_coil`, coils folded into the batch)
and normalise the maps so that their root-sum-of-squares over coils is 1 (`normalize_by_rss`).
`low_frequency_mask` finds the fully-sampled centre of a Cartesian mask as fastMRI's VarNet does.
"""

import tensorflow as tf

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
