"""NumPy Cartesian encoding operator for the classical baselines (one slice at a time).

``A x = M F S x`` and ``A^H y = S^H F^H M y`` with the centered orthonormal FFT; ``S`` is the
identity for single-coil data. With sensitivities whose root-sum-of-squares is at most one,
``||A|| <= 1``, which the FISTA step size relies on.

The normal operator ``A^H A`` needs no transform along the read-out: the mask acts on the columns
only, so ``F^H M F = F_W^H M F_W`` (``F_W`` the 1D FFT along the last axis, the read-out FFT
cancels), and on a circular grid the centering shifts cancel too, leaving
``F_W^H ifftshift(M) F_W`` with the uncentered FFT; rows where every sensitivity is zero (the
background of ACS maps) are skipped, since ``A^H A`` is zero there. FFTs are SciPy's, on all the
cores this process may use.

`warn_if_collinear` warns once per method and process when two coils see nearly the same thing
(SENSE's maps, GRAPPA's calibration data): the parallel-imaging methods then amplify the noise.
"""

import os
import sys

import numpy as np
import scipy.fft

FFT_WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
"""Threads of the baselines' SciPy FFTs: the cores this process may run on."""


def fftc(x, axes=(-2, -1)):
    """Centered orthonormal FFT over ``axes`` (as `fastmri_recon.ops.fourier.np_fftc`), multi-threaded.

    Args:
        x: complex array of any shape (complex64 stays complex64).
        axes: axes to transform.

    Returns:
        complex array of ``x``'s shape.
    """
    shifted = np.fft.ifftshift(x, axes=axes)
    return np.fft.fftshift(scipy.fft.fftn(shifted, axes=axes, norm="ortho", workers=FFT_WORKERS), axes=axes)


def ifftc(x, axes=(-2, -1)):
    """Centered orthonormal inverse FFT over ``axes`` (inverse of `fftc`), multi-threaded.

    Args:
        x: complex array of any shape.
        axes: axes to transform.

    Returns:
        complex array of ``x``'s shape.
    """
    shifted = np.fft.ifftshift(x, axes=axes)
    return np.fft.fftshift(scipy.fft.ifftn(shifted, axes=axes, norm="ortho", workers=FFT_WORKERS), axes=axes)


class CartesianOperator:
    """The encoding operator of one slice.

    Args:
        mask: float ``(W,)`` sampling mask along the last axis.
        smaps: complex ``(coils, H, W)`` sensitivities, or None for single-coil data.
    """

    def __init__(self, mask, smaps=None):
        self.mask = np.asarray(mask, np.float32)
        self.smaps = None if smaps is None else np.asarray(smaps)
        self._uncentred_mask = np.fft.ifftshift(self.mask)
        if self.smaps is not None:
            self._rows = np.flatnonzero(np.any(self.smaps != 0, axis=(0, 2)))
            self._row_smaps = self.smaps[:, self._rows]

    def forward(self, image):
        """Image complex ``(H, W)`` -> k-space ``(H, W)`` or ``(coils, H, W)``."""
        if self.smaps is not None:
            image = self.smaps * image[None]
        return fftc(image) * self.mask + 0.0

    def adjoint(self, kspace):
        """k-space ``(H, W)`` or ``(coils, H, W)`` -> image complex ``(H, W)``."""
        image = ifftc(kspace * self.mask + 0.0)
        if self.smaps is not None:
            image = np.einsum("chw,chw->hw", np.conj(self.smaps), image)
        return image

    def coil_combined_magnitude(self, image):
        """Magnitude of an image as the coils see it: ``sqrt(sum_c |S_c x|^2)`` (``|x|`` for single-coil).

        This is what a root-sum-of-squares target shows, coil shading included.
        """
        if self.smaps is None:
            return np.abs(image)
        return np.abs(image) * np.sqrt(np.sum(np.abs(self.smaps) ** 2, axis=0))

    def _masked_columns(self, x):
        """``F_W^H ifftshift(M) F_W x`` along the last axis (uncentered 1D FFTs)."""
        spectrum = scipy.fft.fft(x, axis=-1, workers=FFT_WORKERS)
        spectrum *= self._uncentred_mask
        return scipy.fft.ifft(spectrum, axis=-1, workers=FFT_WORKERS)

    def normal(self, image):
        """``A^H A x`` for an image complex ``(H, W)``, by 1D FFTs along the columns (see the module)."""
        if self.smaps is None:
            return self._masked_columns(image)
        coils = self._masked_columns(self._row_smaps * image[self._rows][None])
        out = np.zeros(image.shape, np.result_type(image, self.smaps, np.complex64))
        out[self._rows] = np.einsum("chw,chw->hw", np.conj(self._row_smaps), coils)
        return out


def normalise_smaps(smaps):
    """Scale sensitivities so that their root-sum-of-squares is at most one at every pixel.

    Args:
        smaps: complex ``(coils, H, W)``.

    Returns:
        complex ``(coils, H, W)``.
    """
    rss = np.sqrt(np.sum(np.abs(smaps) ** 2, axis=0))
    return smaps / np.maximum(rss, 1.0)


COLLINEAR_CORRELATION = 0.99
"""Coil pairs whose normalised correlation exceeds this are reported as nearly collinear."""

_warned = set()


def most_correlated_coils(data):
    """The pair of coils whose data are the most correlated, and that correlation.

    Args:
        data: complex ``(coils, ...)`` per-coil data (maps, calibration k-space or images).

    Returns:
        ``((i, j), correlation)``: ``|<d_i, d_j>| / (||d_i|| ||d_j||)`` in [0, 1] (0 for one coil).
    """
    flat = np.asarray(data).reshape(len(data), -1)
    norms = np.linalg.norm(flat, axis=1)
    if len(flat) < 2 or not np.all(norms > 0):
        return (0, 0), 0.0
    gram = np.abs(flat.conj() @ flat.T) / np.outer(norms, norms)
    np.fill_diagonal(gram, 0.0)
    i, j = np.unravel_index(np.argmax(gram), gram.shape)
    return (int(min(i, j)), int(max(i, j))), float(gram[i, j])


def warn_if_collinear(data, method):
    """Print one warning line on stderr (once per ``method`` and process) if two coils are nearly collinear.

    Args:
        data: complex ``(coils, ...)`` per-coil data.
        method: the baseline's name, for the message.
    """
    if method in _warned:
        return
    (i, j), correlation = most_correlated_coils(data)
    if correlation > COLLINEAR_CORRELATION:
        _warned.add(method)
        print(
            f"warning: {method}: coils {i} and {j} are nearly collinear (correlation {correlation:.4f}): "
            "parallel imaging cannot separate them and amplifies the noise",
            file=sys.stderr,
            flush=True,
        )
