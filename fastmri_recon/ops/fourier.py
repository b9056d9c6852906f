"""Centered, orthonormal Fourier transforms.

Convention (docs/architecture.md): ``F x = fftshift(fft(ifftshift(x))) / sqrt(N)`` over the transformed
axes, so that ``F^H F = I`` and the k-space centre (DC) sits at index ``N // 2``.

The TensorFlow functions transform the last two (``*2c``) or three (``*3c``) axes of a complex64
tensor with any number of leading batch / coil axes, work eagerly, inside ``tf.function`` and
tf.data, and are differentiable. The NumPy twins (``np_*``) serve data generation and the
classical baselines, which run outside TensorFlow.
"""

import numpy as np
import tensorflow as tf


def _centered(x, transform, axes, inverse):
    """Apply ``transform`` (an innermost-axes TF FFT) with centring and orthonormal scaling.

    Args:
        x: complex64 tensor of shape ``(..., *spatial)`` with ``len(spatial) == len(axes)``.
        transform: ``tf.signal.fft2d`` / ``ifft2d`` / ``fft3d`` / ``ifft3d``.
        axes: the (negative) spatial axes.
        inverse: whether ``transform`` is an inverse FFT (scaled by ``1/N`` by TensorFlow).

    Returns:
        complex64 tensor of the same shape.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.complex64:
        raise TypeError(f"centered FFTs expect complex64 input, got {x.dtype.name}")
    n = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), [tf.rank(x) + a for a in axes])), tf.float32)
    scale = tf.sqrt(n) if inverse else tf.math.rsqrt(n)
    y = tf.signal.fftshift(transform(tf.signal.ifftshift(x, axes=axes)), axes=axes)
    return y * tf.cast(tf.complex(scale, 0.0), tf.complex64)


def fft2c(image):
    """Centered orthonormal 2D FFT over the last two axes.

    Args:
        image: complex64 tensor ``(..., H, W)``.

    Returns:
        k-space, complex64 ``(..., H, W)``.
    """
    return _centered(image, tf.signal.fft2d, (-2, -1), inverse=False)


def ifft2c(kspace):
    """Centered orthonormal 2D inverse FFT over the last two axes (adjoint and inverse of `fft2c`).

    Args:
        kspace: complex64 tensor ``(..., H, W)``.

    Returns:
        image, complex64 ``(..., H, W)``.
    """
    return _centered(kspace, tf.signal.ifft2d, (-2, -1), inverse=True)


def fft3c(volume):
    """Centered orthonormal 3D FFT over the last three axes.

    Args:
        volume: complex64 tensor ``(..., D, H, W)``.

    Returns:
        k-space, complex64 ``(..., D, H, W)``.
    """
    return _centered(volume, tf.signal.fft3d, (-3, -2, -1), inverse=False)


def ifft3c(kspace):
    """Centered orthonormal 3D inverse FFT over the last three axes (adjoint of `fft3c`).

    Args:
        kspace: complex64 tensor ``(..., D, H, W)``.

    Returns:
        volume, complex64 ``(..., D, H, W)``.
    """
    return _centered(kspace, tf.signal.ifft3d, (-3, -2, -1), inverse=True)


def np_fftc(x, axes=(-2, -1)):
    """NumPy centered orthonormal FFT over ``axes`` (default: the last two).

    Args:
        x: complex array of any shape.
        axes: axes to transform.

    Returns:
        complex array of the same shape and a complex dtype of at least ``x``'s precision.
    """
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


def np_ifftc(x, axes=(-2, -1)):
    """NumPy centered orthonormal inverse FFT over ``axes`` (inverse of `np_fftc`).

    Args:
        x: complex array of any shape.
        axes: axes to transform.

    Returns:
        complex array of the same shape.
    """
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)
