"""The orthonormal 2D Haar wavelet transform, one level, as fixed strided operations.

`haar_dwt` splits each channel into its four 2x2 polyphase components (``tf.nn.space_to_depth``)
and mixes them with the orthogonal 4x4 Haar matrix; `haar_idwt` mixes with its transpose and
interleaves back (``tf.nn.depth_to_space``). They are the pooling / unpooling of
MWCNN (Liu et al. 2018): lossless (``haar_idwt(haar_dwt(x)) == x``) and norm-preserving.

Band layout of the ``4C`` output channels: ``[LL, LH, HL, HH]``, each with the ``C`` input channels
in order: ``LL`` the 2x2 block sums / 2, ``LH`` the differences along the width (columns), ``HL``
along the height (rows), ``HH`` the diagonal ones.
"""

import numpy as np
import tensorflow as tf

# rows: bands LL, LH, HL, HH; columns: polyphase components (row, column) = (0,0), (0,1), (1,0), (1,1)
# (the channel-block order of tf.nn.space_to_depth)
HAAR = 0.5 * np.array([[1, 1, 1, 1], [-1, 1, -1, 1], [-1, -1, 1, 1], [1, -1, -1, 1]], np.float32)


def _mix(x, matrix, channels):
    """Apply the 4x4 ``matrix`` to the 4 channel blocks of ``x`` ``(batch, h, w, 4 * channels)``."""
    shape = tf.shape(x)
    blocks = tf.reshape(x, tf.concat([shape[:3], [4, channels]], 0))
    mixed = tf.einsum("ij,bhwjc->bhwic", tf.constant(matrix, x.dtype), blocks)
    return tf.reshape(mixed, shape)


def haar_dwt(x):
    """One level of the orthonormal 2D Haar transform.

    Args:
        x: float ``(batch, H, W, C)`` with even ``H`` and ``W`` and known ``C``.

    Returns:
        ``(batch, H/2, W/2, 4C)`` of ``x``'s dtype: bands ``LL, LH, HL, HH``.
    """
    return _mix(tf.nn.space_to_depth(x, 2), HAAR, x.shape[-1])


def haar_idwt(x):
    """Inverse of `haar_dwt` (its adjoint: the transform is orthonormal).

    Args:
        x: float ``(batch, h, w, 4C)`` with known ``C``: bands ``LL, LH, HL, HH``.

    Returns:
        ``(batch, 2h, 2w, C)`` of ``x``'s dtype.
    """
    return tf.nn.depth_to_space(_mix(x, HAAR.T, x.shape[-1] // 4), 2)
