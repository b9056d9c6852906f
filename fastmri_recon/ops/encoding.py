"""The Cartesian MRI forward operator ``A = M F S`` and its adjoint ``A^H = S^H F^H M``.

``F`` is the centered orthonormal 2D FFT (`fourier.fft2c`), ``M`` the column sampling mask
(`masking.apply_mask`) and ``S`` the coil sensitivities: the identity for single-coil data, the
pointwise product with each coil's map for multi-coil data (``S^H`` multiplies by the conjugate maps
and sums over coils). With ``mask=None`` the operators are the fully-sampled ``F S`` and
``S^H F^H``, which data-consistency layers and k-space networks use.

Shapes (DESIGN.md): images ``(batch, H, W)`` complex64; single-coil k-space ``(batch, H, W)``,
multi-coil k-space and sensitivity maps ``(batch, coils, H, W)`` complex64; masks float
``(batch, W)`` or ``(W,)`` along the last (phase-encoding) axis.

The functions work eagerly, inside ``tf.function`` and are differentiable; the Keras layers wrap
them for functional models (their mask argument is ``sampling_mask``: Keras reserves ``mask`` for
its padding masks).
"""

import keras
import tensorflow as tf

from fastmri_recon.ops.fourier import fft2c, ifft2c
from fastmri_recon.ops.masking import apply_mask


def forward_op(image, mask=None, smaps=None):
    """Apply ``A = M F S``.

    Args:
        image: complex64 ``(batch, H, W)``.
        mask: float ``(batch, W)`` or ``(W,)``, or None for no undersampling (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)`` for multi-coil data, or None (single-coil).

    Returns:
        k-space, complex64 ``(batch, H, W)`` (single-coil) or ``(batch, coils, H, W)`` (multi-coil).
    """
    if smaps is not None:
        image = image[:, None] * smaps
    kspace = fft2c(image)
    return kspace if mask is None else apply_mask(kspace, mask)


def adjoint_op(kspace, mask=None, smaps=None):
    """Apply ``A^H = S^H F^H M``, the exact adjoint of `forward_op` with the same arguments.

    Args:
        kspace: complex64 ``(batch, H, W)`` (single-coil) or ``(batch, coils, H, W)`` (multi-coil).
        mask: float ``(batch, W)`` or ``(W,)``, or None for no undersampling (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)`` for multi-coil k-space, or None (single-coil).

    Returns:
        image, complex64 ``(batch, H, W)``.
    """
    if mask is not None:
        kspace = apply_mask(kspace, mask)
    image = ifft2c(kspace)
    if smaps is not None:
        image = tf.reduce_sum(tf.math.conj(smaps) * image, axis=1)
    return image


class _EncodingLayer(keras.layers.Layer):
    """A weightless layer applying an encoding function; keeps complex64 whatever the policy."""

    function = None

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # no autocasting of the float mask under mixed precision
        super().__init__(**kwargs)
        self.built = True

    def call(self, x, sampling_mask=None, smaps=None):
        return self.function(x, sampling_mask, smaps)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ForwardOperator(_EncodingLayer):
    """Keras layer applying ``A = M F S`` (`forward_op`).

    Call args:
        x: image, complex64 ``(batch, H, W)``.
        sampling_mask: float ``(batch, W)`` or ``(W,)``, or None (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)``, or None (single-coil).

    Returns:
        k-space, complex64 ``(batch, H, W)`` or ``(batch, coils, H, W)``.
    """

    function = staticmethod(forward_op)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class AdjointOperator(_EncodingLayer):
    """Keras layer applying ``A^H = S^H F^H M`` (`adjoint_op`).

    Call args:
        x: k-space, complex64 ``(batch, H, W)`` or ``(batch, coils, H, W)``.
        sampling_mask: float ``(batch, W)`` or ``(W,)``, or None (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)``, or None (single-coil).

    Returns:
        image, complex64 ``(batch, H, W)``.
    """

    function = staticmethod(adjoint_op)
