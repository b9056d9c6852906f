"""NumPy Cartesian encoding operator for the classical baselines (one slice at a time).

``A x = M F S x`` and ``A^H y = S^H F^H M y`` with the centered orthonormal FFT; ``S`` is the
identity for single-coil data. With sensitivities whose root-sum-of-squares is at most one,
``||A|| <= 1``, which the FISTA step size relies on.

`warn_if_collinear` warns once per method and process when two coils see nearly the same thing
(SENSE's maps, GRAPPA's calibration data): the parallel-imaging methods then amplify the noise.
"""

import sys

import numpy as np

from fastmri_recon.ops.fourier import np_fftc, np_ifftc


class CartesianOperator:
    """The encoding operator of one slice.

    Args:
        mask: float ``(W,)`` sampling mask along the last axis.
        smaps: complex ``(coils, H, W)`` sensitivities, or None for single-coil data.
    """

    def __init__(self, mask, smaps=None):
        self.mask = np.asarray(mask, np.float32)
        self.smaps = None if smaps is None else np.asarray(smaps)

    def forward(self, image):
        """Image complex ``(H, W)`` -> k-space ``(H, W)`` or ``(coils, H, W)``."""
        if self.smaps is not None:
            image = self.smaps * image[None]
        return np_fftc(image) * self.mask + 0.0

    def adjoint(self, kspace):
        """k-space ``(H, W)`` or ``(coils, H, W)`` -> image complex ``(H, W)``."""
        image = np_ifftc(kspace * self.mask + 0.0)
        if self.smaps is not None:
            image = np.sum(np.conj(self.smaps) * image, axis=0)
        return image

    def coil_combined_magnitude(self, image):
        """Magnitude of an image as the coils see it: ``sqrt(sum_c |S_c x|^2)`` (``|x|`` for single-coil).

        This is what a root-sum-of-squares target shows, coil shading included.
        """
        if self.smaps is None:
            return np.abs(image)
        return np.abs(image) * np.sqrt(np.sum(np.abs(self.smaps) ** 2, axis=0))

    def normal(self, image):
        """``A^H A x`` for an image ``(H, W)``."""
        return self.adjoint(self.forward(image))


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
