"""NumPy Cartesian encoding operator for the classical baselines (one slice at a time).

``A x = M F S x`` and ``A^H y = S^H F^H M y`` with the centered orthonormal FFT; ``S`` is the
identity for single-coil data. With sensitivities whose root-sum-of-squares is at most one,
``||A|| <= 1``, which the FISTA step size relies on.
"""

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
