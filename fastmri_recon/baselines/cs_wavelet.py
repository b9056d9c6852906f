"""Compressed sensing with a wavelet l1 prior, solved by FISTA (PyWavelets).

Solves ``min_x 1/2 ||A x - y||^2 + lambda * max|A^H y| * ||Psi x||_1`` with ``Psi`` an orthogonal
wavelet transform (periodised, so orthonormal) applied to the real and imaginary parts, the l1 norm
of the complex detail coefficients (approximation coefficients are not penalised), and FISTA
(Beck & Teboulle 2009) with step 1 (``||A|| <= 1``). ``cycle_spinning`` shifts the image by a
random amount at each iteration, which averages the transform over translations (an undecimated
wavelet prior, approximately). Multiplying ``lambda`` by ``max|A^H y|`` makes it independent of
the data's scale; choose it on the validation split (`fastmri_recon.workflows.tuning.choose_parameter`).
Each iteration applies ``A^H A`` by 1D FFTs along the columns only (`CartesianOperator.normal`), with
``A^H y`` computed once.
"""

import keras
import numpy as np
import pywt

from fastmri_recon.baselines.base import SliceBaseline
from fastmri_recon.baselines.operators import CartesianOperator, normalise_smaps


class WaveletPrior:
    """Soft-thresholding of orthogonal wavelet detail coefficients of a complex image.

    Args:
        wavelet: PyWavelets name of an orthogonal wavelet (e.g. ``"db4"``, ``"haar"``).
        levels: decomposition levels (fewer on images too small for them).
    """

    def __init__(self, wavelet="db4", levels=4):
        if not pywt.Wavelet(wavelet).orthogonal:
            raise ValueError(f"wavelet must be orthogonal, got {wavelet!r}")
        self.wavelet, self.levels = wavelet, levels

    def _analysis(self, image):
        level = min(self.levels, pywt.dwtn_max_level(image.shape, self.wavelet))
        coeffs = pywt.wavedec2(image, self.wavelet, mode="periodization", level=level)
        array, slices = pywt.coeffs_to_array(coeffs)
        return array, slices, coeffs[0].shape

    def prox(self, image, threshold):
        """``Psi^T soft(Psi x, threshold)`` on the detail coefficients; complex ``(H, W)`` in and out."""
        real, slices, approx_shape = self._analysis(image.real)
        imag, _, _ = self._analysis(image.imag)
        coeffs = real + 1j * imag
        magnitude = np.abs(coeffs)
        shrunk = coeffs * np.maximum(1 - threshold / np.maximum(magnitude, 1e-30), 0)
        shrunk[: approx_shape[0], : approx_shape[1]] = coeffs[: approx_shape[0], : approx_shape[1]]

        def synthesis(array):
            coeffs = pywt.array_to_coeffs(array, slices, output_format="wavedec2")
            return pywt.waverec2(coeffs, self.wavelet, mode="periodization")[: image.shape[0], : image.shape[1]]

        return synthesis(shrunk.real) + 1j * synthesis(shrunk.imag)


def fista(operator, kspace, prox, threshold, iterations, rng=None):
    """FISTA for ``1/2 ||A x - y||^2 + threshold * R(x)`` with step 1.

    Args:
        operator: a `CartesianOperator` with ``||A|| <= 1`` (its ``normal`` and ``adjoint`` are used).
        kspace: measured k-space ``(H, W)`` or ``(coils, H, W)``.
        prox: ``prox(image, threshold)``, the proximal operator of ``threshold * R``.
        threshold: the regularisation weight.
        iterations: number of iterations.
        rng: a ``numpy.random.Generator`` for cycle spinning (random circular shifts), or None.

    Returns:
        complex ``(H, W)`` image.
    """
    x = z = data = operator.adjoint(kspace)
    t = 1.0
    for _ in range(iterations):
        v = z - operator.normal(z) + data  # z - A^H (A z - y)
        if rng is None:
            x_new = prox(v, threshold)
        else:
            shift = tuple(rng.integers(0, 8, size=2))
            x_new = np.roll(prox(np.roll(v, shift, axis=(0, 1)), threshold), [-s for s in shift], axis=(0, 1))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x


@keras.saving.register_keras_serializable(package="fastmri_recon")
class CSWavelet(SliceBaseline):
    """Wavelet-l1 compressed sensing by FISTA, single-coil or multi-coil (with sensitivities).

    Args:
        lam: regularisation weight, relative to ``max|A^H y|``.
        iterations: FISTA iterations.
        wavelet: orthogonal PyWavelets wavelet.
        levels: decomposition levels.
        cycle_spinning: random shifts at each iteration (translation-invariant prior).
        crop_size: in-plane output size ``(h, w)`` or None.
    """

    needs_smaps = True

    def __init__(self, lam=0.01, iterations=30, wavelet="db4", levels=4, cycle_spinning=True, crop_size=None, **kwargs):
        super().__init__(crop_size=crop_size, **kwargs)
        self.lam, self.iterations, self.cycle_spinning = float(lam), int(iterations), bool(cycle_spinning)
        self.prior = WaveletPrior(wavelet, int(levels))

    def reconstruct_slice(self, kspace, mask, smaps):
        operator = CartesianOperator(mask, None if smaps is None else normalise_smaps(smaps))
        threshold = self.lam * np.abs(operator.adjoint(kspace)).max()
        rng = np.random.default_rng(0) if self.cycle_spinning else None
        return operator.coil_combined_magnitude(fista(operator, kspace, self.prior.prox, threshold, self.iterations, rng))

    def get_config(self):
        return {
            **super().get_config(),
            "lam": self.lam,
            "iterations": self.iterations,
            "wavelet": self.prior.wavelet,
            "levels": self.prior.levels,
            "cycle_spinning": self.cycle_spinning,
        }
