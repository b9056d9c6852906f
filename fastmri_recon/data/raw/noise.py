"""Noise pre-whitening of multi-coil k-space from noise pre-scans.

The noise covariance of the receive channels, ``Psi = X X^H / N`` for noise samples ``X`` of shape
``(coils, N)``, has the Cholesky factor ``Psi = L L^H``; the whitening matrix is
``W = sqrt(mean(diag(Psi))) L^-1``: whitened noise is uncorrelated with the same variance in every
channel, that variance being the coils' mean noise variance (so data keep their intensity scale, and a
noise scan taken at another receiver bandwidth than the imaging data whitens the same way).
"""

import numpy as np

from fastmri_recon.errors import DataError


def whitening_matrix(noise, path="<noise>"):
    """The noise pre-whitening matrix of the channels.

    Args:
        noise: complex ``(coils, samples)`` noise samples (the noise pre-scans' read-outs, concatenated).
        path: the file the noise came from, for messages.

    Returns:
        complex128 ``(coils, coils)`` lower-triangular matrix ``W``; whitened data are ``W @ data``
        over the coil axis (`fastmri_recon.data.coil_compression.mix_coils`).

    Raises:
        DataError: when the noise covariance is not positive definite (too few samples, a dead channel).
    """
    noise = np.asarray(noise, np.complex128)
    covariance = noise @ noise.conj().T / noise.shape[1]
    try:
        cholesky = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise DataError(
            f"{path}: the noise pre-scans' covariance ({noise.shape[0]} channels, {noise.shape[1]} samples) is not "
            "positive definite: too few noise samples or a channel without noise"
        ) from None
    scale = np.sqrt(np.mean(np.real(np.diag(covariance))))
    return scale * np.linalg.inv(cholesky)
