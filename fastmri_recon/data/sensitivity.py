"""Coil sensitivity maps estimated from the auto-calibration signal (ACS) of multi-coil k-space.

The ACS is the contiguous band of sampled columns around the k-space centre (column ``W // 2``),
which every fastMRI mask keeps. Two estimates, and a third for non-Cartesian data:

- `acs_sensitivity_maps` (TensorFlow, usable in tf.data and inside models): the k-space is low-passed
  to the ACS columns, inverse-transformed, and each coil image divided by the root-sum-of-squares
  (RSS) over coils; pixels whose RSS is below ``threshold`` times its maximum (background) are zero.
- `espirit_maps` (NumPy, slow): ESPIRiT (Uecker et al., MRM 2014). A calibration matrix is built from
  all kernel-sized blocks of the ACS region; its dominant right singular vectors span the k-space
  patches of the data. The projection onto them is a k-space convolution whose image-space form is,
  at each pixel, a Hermitian ``coils x coils`` matrix; the maps are its eigenvectors of eigenvalue
  close to one (pixels whose top eigenvalue is below ``eigen_threshold`` are zero).
- `nc_lowres_sensitivity_maps` (TensorFlow): as the ACS maps, from the non-Cartesian samples inside
  a centre disc (ball), transformed by the density-compensated adjoint NUFFT; 2D or 3D.

Sensitivities are defined up to a common phase per pixel: both estimates carry the phase of the
object (ACS) or of the first coil (ESPIRiT). Over coils, the maps of a pixel inside the object have
unit norm.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.data.masks import acs_bounds
from fastmri_recon.ops.encoding import NonCartesianEncoding
from fastmri_recon.ops.fourier import ifft2c


def acs_columns(mask):
    """The auto-calibration columns of a mask: the contiguous sampled band around column ``W // 2``.

    Args:
        mask: float32 tensor ``(..., W)`` with values 0 / 1.

    Returns:
        float32 tensor ``(..., W)``: 1 on the columns of the band, 0 elsewhere (all 0 when
        column ``W // 2`` is not sampled).
    """
    mask = tf.convert_to_tensor(mask, tf.float32)
    width = tf.shape(mask)[-1]
    centre = width // 2
    sampled = mask > 0.5
    right = tf.cast(sampled[..., centre:], tf.int32)
    left = tf.cast(tf.reverse(sampled[..., :centre], axis=[-1]), tf.int32)
    num_right = tf.reduce_sum(tf.math.cumprod(right, axis=-1), axis=-1, keepdims=True)
    num_left = tf.reduce_sum(tf.math.cumprod(left, axis=-1), axis=-1, keepdims=True)
    num_left = tf.where(num_right > 0, num_left, 0)
    cols = tf.range(width)
    return tf.cast((cols >= centre - num_left) & (cols < centre + num_right), tf.float32)


def acs_sensitivity_maps(kspace, mask, threshold=0.05):
    """Sensitivity maps from the ACS columns: low-pass, IFFT, divide by the RSS, zero the background.

    Args:
        kspace: complex64 ``(..., coils, H, W)`` k-space (undersampled or not).
        mask: float32 ``(..., W)``, the sampling mask whose ACS band is used, with the leading axes
            of ``kspace`` (or none: ``(W,)`` for all).
        threshold: pixels whose low-resolution RSS is below ``threshold`` times its maximum over
            the image are set to zero.

    Returns:
        complex64 ``(..., coils, H, W)``; at each kept pixel the maps have unit norm over coils.
    """
    kspace = tf.convert_to_tensor(kspace, tf.complex64)
    low_pass = acs_columns(mask)[..., None, None, :]
    images = ifft2c(kspace * tf.complex(low_pass, tf.zeros_like(low_pass)))
    return _normalize_coil_images(images, threshold, ndim=2)


def _normalize_coil_images(images, threshold, ndim):
    """Low-resolution coil images ``(..., coils, *N)`` -> maps: divided by their RSS, background zeroed."""
    rss = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(images)), axis=-ndim - 1, keepdims=True))
    peak = tf.reduce_max(rss, axis=list(range(-ndim, 0)), keepdims=True)
    keep = tf.cast(rss > threshold * peak, tf.float32)
    scale = tf.math.divide_no_nan(keep, rss)
    return images * tf.complex(scale, tf.zeros_like(scale))


def nc_lowres_sensitivity_maps(samples, trajectory, image_shape, density=None, cutoff=0.08, threshold=0.05,
                               plan=None):
    """Sensitivity maps from the centre of non-Cartesian k-space (no calibration scan needed).

    The samples within the disc (ball) of radius ``cutoff * pi`` around the k-space centre, tapered
    by ``cos^2(pi |k| / (2 cutoff pi))`` and density-compensated, are transformed to low-resolution
    coil images by the adjoint NUFFT; each is divided by their root-sum-of-squares over coils, and
    pixels whose RSS is below ``threshold`` times its maximum (background) are zero.

    Args:
        samples: complex64 ``(..., coils, M)`` (the leading axes: as many as the trajectory's batch
            axes, or any with a shared trajectory).
        trajectory: float32 ``(ndim, M)`` (shared) or ``(batch, ndim, M)``, radians.
        image_shape: spatial shape ``N`` of the maps.
        density: float32 density-compensation weights ``(M,)`` or ``(batch, M)``, or None.
        cutoff: radius of the centre disc as a fraction of ``pi``, in ``(0, 1]``.
        threshold: background threshold relative to the maximum RSS.
        plan: an `ops.nufft.NUFFTPlan` of the trajectory and image shape to reuse, or None.

    Returns:
        complex64 ``(..., coils, *N)``; at each kept pixel the maps have unit norm over coils.
    """
    trajectory = tf.convert_to_tensor(trajectory, tf.float32)
    radius = tf.sqrt(tf.reduce_sum(tf.square(trajectory), axis=-2)) / (cutoff * np.pi)
    taper = tf.where(radius < 1.0, tf.square(tf.cos(0.5 * np.pi * radius)), 0.0)
    weights = taper if density is None else taper * tf.convert_to_tensor(density, tf.float32)
    encoding = NonCartesianEncoding(trajectory, image_shape, weights, plan=plan)
    images = encoding.coil_adjoint(tf.convert_to_tensor(samples, tf.complex64))
    return _normalize_coil_images(images, threshold, ndim=len(image_shape))


def _calibration_matrix(calibration, kernel):
    """Rows: every ``kernel``-sized block of ``calibration`` (coils, h, w), flattened coil-major."""
    coils = calibration.shape[0]
    blocks = np.lib.stride_tricks.sliding_window_view(calibration, kernel, axis=(1, 2))
    return blocks.transpose(1, 2, 0, 3, 4).reshape(-1, coils * kernel[0] * kernel[1])


def _correlation_kernels(basis, coils, kernel):
    """k-space kernels of the projection onto the span of ``basis``, averaged over patch positions.

    ``basis`` holds orthonormal k-space patch vectors as columns (``P = basis basis^H``). Averaged over
    the positions of a sample in the patch, the projection is a k-space correlation
    ``x_c(k) = sum_{c', d} g[d, c, c'] x_c'(k + d)`` with ``g[d, c, c'] = (1 / K) sum_a P[(c, a), (c', a + d)]``,
    ``K`` the number of kernel positions.

    Returns:
        complex128 ``(2 k1 - 1, 2 k2 - 1, coils, coils)``, offset ``d`` at index ``d + k - 1``.
    """
    k1, k2 = kernel
    projection = (basis @ basis.conj().T).reshape(coils, k1, k2, coils, k1, k2)
    kernels = np.zeros((2 * k1 - 1, 2 * k2 - 1, coils, coils), dtype=np.complex128)
    for d1 in range(1 - k1, k1):
        rows = np.arange(max(0, -d1), min(k1, k1 - d1))[:, None]
        for d2 in range(1 - k2, k2):
            cols = np.arange(max(0, -d2), min(k2, k2 - d2))[None, :]
            block = projection[:, rows, cols, :, rows + d1, cols + d2]  # (n1, n2, coils, coils)
            kernels[d1 + k1 - 1, d2 + k2 - 1] = block.sum(axis=(0, 1)) / (k1 * k2)
    return kernels


def _phases(size, kernel_size):
    """``exp(-2i pi d (r - size // 2) / size)``, ``(size, 2 k - 1)``: the centred DFT of offsets ``d``."""
    positions = np.arange(size) - size // 2
    return np.exp(-2j * np.pi * np.outer(positions, np.arange(1 - kernel_size, kernel_size)) / size)


def espirit_maps(kspace, mask, kernel_size=6, calibration_rows=24, singular_threshold=0.02, eigen_threshold=0.9):
    """ESPIRiT sensitivity maps (one set) from the ACS region of one slice.

    Args:
        kspace: complex ``(coils, H, W)`` k-space of one slice.
        mask: ``(W,)`` sampling mask; its contiguous sampled band around column ``W // 2`` gives the
            calibration columns.
        kernel_size: side of the k-space kernel (clipped to the calibration region's size).
        calibration_rows: number of central k-space rows of the calibration region (at most H).
        singular_threshold: singular vectors of the calibration matrix whose singular value is above
            ``singular_threshold`` times the largest span the data's patches.
        eigen_threshold: pixels whose largest eigenvalue is below it (background) get zero maps.

    Returns:
        complex64 ``(coils, H, W)``; at each kept pixel the maps have unit norm over coils and the
        first coil a real, non-negative value.

    Raises:
        ValueError: if the centre column of ``mask`` is not sampled.
    """
    kspace = np.asarray(kspace, dtype=np.complex128)
    coils, height, width = kspace.shape
    start, stop = acs_bounds(mask)
    if start == stop:
        raise ValueError("mask: the centre column is not sampled, there is no auto-calibration region")
    rows = min(calibration_rows, height)
    top = height // 2 - rows // 2
    calibration = kspace[:, top : top + rows, start:stop]
    kernel = (min(kernel_size, calibration.shape[1]), min(kernel_size, calibration.shape[2]))
    _, singular, vh = np.linalg.svd(_calibration_matrix(calibration, kernel), full_matrices=False)
    basis = vh[singular > singular_threshold * singular[0]].T  # patches p = sum_n b_n b_n^H p
    # In image space the correlation multiplies by G(r) = sum_d g[d] exp(-2i pi d.r / N), a Hermitian
    # coils x coils matrix per pixel, evaluated (separably, by blocks of rows) without an FFT of
    # coils^2 full-size images.
    partial = np.einsum("wj,ijab->iwab", _phases(width, kernel[1]), _correlation_kernels(basis, coils, kernel))
    row_phases = _phases(height, kernel[0])
    maps = np.zeros((height, width, coils), dtype=np.complex64)
    block = max(1, 2**22 // (width * coils * coils))
    for first in range(0, height, block):
        operator = np.einsum("hi,iwab->hwab", row_phases[first : first + block], partial)
        eigenvalues, eigenvectors = np.linalg.eigh(operator)  # ascending
        vectors = eigenvectors[..., -1]
        vectors = vectors * np.exp(-1j * np.angle(vectors[..., :1])) * (eigenvalues[..., -1:] > eigen_threshold)
        maps[first : first + block] = vectors
    return np.ascontiguousarray(maps.transpose(2, 0, 1))
