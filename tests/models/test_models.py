"""Behaviour specific to the Cartesian networks, on tiny shapes (their common contract: `test_contract.py`)."""

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import cartesian_example, tiny_model

from fastmri_recon.ops.encoding import adjoint_op

USES_DC = ["cascade-net", "kiki-net"]


@pytest.mark.parametrize("name", USES_DC)
@pytest.mark.parametrize("multicoil", [False, True])
def test_fully_sampled_replacement_returns_the_data(name, multicoil):
    inputs, _ = cartesian_example(multicoil)
    mask = np.ones_like(inputs[1])
    inputs = (inputs[0], mask, *inputs[2:])
    expected = np.abs(adjoint_op(inputs[0], smaps=inputs[2] if multicoil else None).numpy())
    np.testing.assert_allclose(tiny_model(name, crop_size=None)(inputs).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("multicoil", [False, True])
def test_xpdnet_starts_from_the_adjoint(multicoil):
    """With no iteration, XPDNet returns its initial image |A^H y|; each iteration has its networks."""
    inputs, _ = cartesian_example(multicoil)
    smaps = inputs[2] if multicoil else None
    expected = np.abs(adjoint_op(inputs[0], inputs[1], smaps).numpy())
    out = tiny_model("xpdnet", n_iter=0, crop_size=None)(inputs).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    model = tiny_model("xpdnet-kspace-refine", n_iter=3)
    assert len(model.image_nets) == len(model.kspace_nets) == 3


@pytest.mark.parametrize("multicoil", [False, True])
def test_pdnet_is_not_phase_invariant_without_phase_normalization(multicoil):
    """A complex network with biases and ReLUs changes with a global phase on the data (see `models.base`)."""
    inputs, _ = cartesian_example(multicoil)
    rotated = (inputs[0] * np.exp(1.3j).astype(np.complex64),) + tuple(inputs[1:])
    plain = tiny_model("pdnet")
    assert np.abs(plain(rotated).numpy() - plain(inputs).numpy()).max() > 1e-3


def test_pdnet_starts_from_the_adjoint_and_the_data():
    """With no iteration, PD-net returns the zero-filled image |A^H y| (its primal buffer's start)."""
    (kspace, mask), _ = cartesian_example(False)
    expected = np.abs(adjoint_op(kspace, mask).numpy())
    out = tiny_model("pdnet", n_iter=0, crop_size=None)((kspace, mask)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_varnet_estimates_normalized_maps():
    (kspace, mask, _), _ = cartesian_example(True)
    model = tiny_model("e2e-varnet")
    smaps = model.estimate_smaps(tf.constant(kspace), tf.constant(mask))
    assert smaps.shape == kspace.shape and smaps.dtype == tf.complex64
    np.testing.assert_allclose(np.sum(np.abs(smaps.numpy()) ** 2, axis=1), 1.0, rtol=1e-4)
