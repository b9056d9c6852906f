"""SENSE: least squares with coil sensitivities, by conjugate gradient on the normal equations.

Solves ``(A^H A + mu I) x = A^H y`` (Pruessmann et al. 2001, iterative CG-SENSE) with
``A = M F S``; ``mu`` (relative to nothing: ``||A|| <= 1``) is a small Tikhonov weight that tames
noise amplification, and early stopping after ``iterations`` steps regularises as well.
"""

import keras
import numpy as np

from fastmri_recon.baselines.base import SliceBaseline
from fastmri_recon.baselines.operators import CartesianOperator, normalise_smaps, warn_if_collinear


def conjugate_gradient(apply, rhs, iterations, tolerance=1e-6):
    """Conjugate gradient for a Hermitian positive definite operator.

    Args:
        apply: ``x -> M x`` on complex arrays of ``rhs``'s shape.
        rhs: the right-hand side.
        iterations: maximum number of iterations.
        tolerance: stop when ``||r|| <= tolerance * ||rhs||``.

    Returns:
        the approximate solution, same shape as ``rhs``.
    """
    x = np.zeros_like(rhs)
    r = rhs.copy()
    p = r.copy()
    rr = np.vdot(r, r).real
    stop = tolerance**2 * rr
    for _ in range(iterations):
        if rr <= stop:
            break
        mp = apply(p)
        alpha = rr / np.vdot(p, mp).real
        x = x + alpha * p
        r = r - alpha * mp
        rr_new = np.vdot(r, r).real
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


@keras.saving.register_keras_serializable(package="fastmri_recon")
class Sense(SliceBaseline):
    """CG-SENSE for multi-coil data; single-coil k-space is refused (``multicoil_only``: there SENSE is
    only a Tikhonov-regularised zero-filling).

    Args:
        mu: Tikhonov weight.
        iterations: CG iterations.
        crop_size: in-plane output size ``(h, w)`` or None.
    """

    needs_smaps = True
    multicoil_only = True

    def __init__(self, mu=1e-3, iterations=15, crop_size=None, **kwargs):
        super().__init__(crop_size=crop_size, **kwargs)
        self.mu, self.iterations = float(mu), int(iterations)

    def reconstruct_slice(self, kspace, mask, smaps):
        warn_if_collinear(smaps, "sense")
        operator = CartesianOperator(mask, normalise_smaps(smaps))
        image = conjugate_gradient(lambda x: operator.normal(x) + self.mu * x, operator.adjoint(kspace), self.iterations)
        return operator.coil_combined_magnitude(image)

    def get_config(self):
        return {**super().get_config(), "mu": self.mu, "iterations": self.iterations}
