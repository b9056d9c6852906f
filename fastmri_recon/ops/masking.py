"""Applying Cartesian sampling masks to k-space in TensorFlow."""

import tensorflow as tf


def apply_mask(kspace, mask):
    """Zero the k-space columns the mask does not keep: ``kspace * mask + 0.0``.

    The ``+ 0.0`` turns the negative zeros of ``(-a) * 0`` into positive zeros (docs/architecture.md).

    Args:
        kspace: complex64 ``(batch, H, W)`` (single-coil) or ``(batch, coils, H, W)`` (multi-coil).
        mask: float ``(batch, W)`` (one mask per example along the last, phase-encoding axis) or
            ``(W,)`` (one mask for all).

    Returns:
        complex64 tensor of ``kspace``'s shape.
    """
    kspace = tf.convert_to_tensor(kspace, tf.complex64)
    mask = tf.cast(mask, tf.float32)
    if mask.shape.rank == 2:
        extra_axes = kspace.shape.rank - 2  # (coils,) H between batch and W
        mask = tf.reshape(mask, tf.concat([tf.shape(mask)[:1], tf.ones([extra_axes], tf.int32), tf.shape(mask)[1:]], 0))
    mask = tf.complex(mask, tf.zeros_like(mask))
    return kspace * mask + tf.constant(0.0, tf.complex64)
