"""The unrolled skeleton (`models.unrolled`) with a known iteration: Landweber's gradient descent.

With the residual dual step and the primal step ``x - t A^H d``, `unroll` is ``n`` steps of gradient
descent on ``||A x - y||^2 / 2``; the reference runs them with independent operators (the NumPy
Cartesian operator, the exact NDFT), for both encodings the networks receive.
"""

import numpy as np
import pytest

from fastmri_recon.baselines.operators import CartesianOperator
from fastmri_recon.models.unrolled import copies, cross_domain_step, residual_dual, unroll
from fastmri_recon.ops.encoding import CartesianEncoding, NonCartesianEncoding
from fastmri_recon.ops.nufft import np_ndft, np_ndft_adjoint

STEP, ITERATIONS = 0.5, 4


def complex_noise(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def descent(primal, back):
    """``x <- x - t A^H (A x[0] - y)`` on every channel of the buffer."""
    return primal - STEP * back[..., None]


def landweber(x, y, forward, adjoint):
    for _ in range(ITERATIONS):
        x = x - STEP * adjoint(forward(x) - y)
    return x


@pytest.mark.parametrize("multicoil", [False, True])
def test_cartesian_unroll_is_landweber(multicoil):
    batch, coils, height, width = 2, 3, 12, 10
    mask = (np.random.default_rng(1).random((batch, width)) > 0.5).astype(np.float32)
    smaps = (complex_noise((batch, coils, height, width), 2) / np.sqrt(2 * coils)).astype(np.complex64) if multicoil else None
    measured = complex_noise((batch, coils, height, width) if multicoil else (batch, height, width), 3)
    encoding = CartesianEncoding(mask, smaps)
    measured = encoding.forward(encoding.adjoint(measured)).numpy()  # data on the sampled columns
    start = encoding.adjoint(measured)
    primal, dual = unroll(copies(start, 2), None, measured, encoding, [(descent, residual_dual)] * ITERATIONS)
    assert dual.shape == measured.shape + (1,)
    for b in range(batch):
        operator = CartesianOperator(mask[b], None if smaps is None else smaps[b])
        expected = landweber(start.numpy()[b], measured[b], operator.forward, operator.adjoint)
        for channel in range(2):
            np.testing.assert_allclose(primal.numpy()[b, ..., channel], expected, atol=1e-5)


def test_noncartesian_step_is_a_density_compensated_landweber_step_on_the_ndft():
    shape, samples = (8, 6), 60
    rng = np.random.default_rng(4)
    traj = rng.uniform(-np.pi, np.pi, (1, 2, samples)).astype(np.float32)
    density = rng.uniform(0.5, 1.5, (1, samples)).astype(np.float32)
    image, measured = complex_noise((1, *shape), 5), complex_noise((1, samples), 6)
    encoding = NonCartesianEncoding(traj, shape, density)
    primal, _ = cross_domain_step(copies(image, 1), None, measured, encoding, descent, residual_dual)
    back = np_ndft_adjoint(density[0] * (np_ndft(image[0], traj[0]) - measured[0]), traj[0], shape)
    expected = image[0] - STEP * back
    assert np.linalg.norm(primal.numpy()[0, ..., 0] - expected) <= 1e-4 * np.linalg.norm(expected)
