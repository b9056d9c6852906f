import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.ops.encoding import AdjointOperator, ForwardOperator, adjoint_op, forward_op
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

SHAPE = (2, 3, 12, 10)  # batch, coils, H, W


def complex_noise(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def problem(multicoil, shared_mask=False):
    """(image, kspace-shaped noise, mask, smaps or None)."""
    batch, coils, height, width = SHAPE
    image = complex_noise((batch, height, width), 0)
    kspace = complex_noise(SHAPE if multicoil else (batch, height, width), 1)
    mask = (np.random.default_rng(2).random(width if shared_mask else (batch, width)) > 0.5).astype(np.float32)
    smaps = complex_noise(SHAPE, 3) if multicoil else None
    return image, kspace, mask, smaps


def inner(a, b):
    return np.vdot(np.asarray(a, np.complex128), np.asarray(b, np.complex128))


@pytest.mark.parametrize("multicoil", [False, True])
@pytest.mark.parametrize("masked", [True, False])
def test_adjoint_dot_product(multicoil, masked):
    image, kspace, mask, smaps = problem(multicoil)
    mask = mask if masked else None
    lhs = inner(forward_op(image, mask, smaps).numpy(), kspace)
    rhs = inner(image, adjoint_op(kspace, mask, smaps).numpy())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.parametrize("multicoil", [False, True])
@pytest.mark.parametrize("shared_mask", [False, True])
def test_matches_numpy(multicoil, shared_mask):
    image, kspace, mask, smaps = problem(multicoil, shared_mask)
    expanded = mask if shared_mask else mask.reshape((len(mask),) + (1,) * (kspace.ndim - 2) + mask.shape[-1:])
    if multicoil:
        expected_forward = np_fftc(image[:, None] * smaps) * expanded
        expected_adjoint = np.sum(np.conj(smaps) * np_ifftc(kspace * expanded), axis=1)
    else:
        expected_forward = np_fftc(image) * expanded
        expected_adjoint = np_ifftc(kspace * expanded)
    np.testing.assert_allclose(forward_op(image, mask, smaps).numpy(), expected_forward, atol=1e-5)
    np.testing.assert_allclose(adjoint_op(kspace, mask, smaps).numpy(), expected_adjoint, atol=1e-5)


def test_masked_entries_are_positive_zeros():
    image, _, mask, _ = problem(False)
    kspace = forward_op(-image, mask).numpy()
    unsampled = kspace[..., mask[0] == 0][0]
    assert not np.signbit(unsampled.real).any() and not np.signbit(unsampled.imag).any()


def test_inside_tf_function_with_unknown_shapes():
    image, kspace, mask, smaps = problem(True)
    spec = tf.TensorSpec([None, None, None, None], tf.complex64)
    normal = tf.function(
        lambda x, m, s: adjoint_op(forward_op(x, m, s), m, s),
        input_signature=[tf.TensorSpec([None, None, None], tf.complex64), tf.TensorSpec([None, None]), spec],
    )
    expected = adjoint_op(forward_op(image, mask, smaps), mask, smaps)
    np.testing.assert_allclose(normal(image, mask, smaps).numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("multicoil", [False, True])
def test_layers_match_functions_and_serialise(multicoil, tmp_path):
    image, kspace, mask, smaps = problem(multicoil)
    forward, adjoint = ForwardOperator(), AdjointOperator()
    np.testing.assert_allclose(
        forward(image, sampling_mask=mask, smaps=smaps).numpy(), forward_op(image, mask, smaps).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        adjoint(kspace, sampling_mask=mask, smaps=smaps).numpy(), adjoint_op(kspace, mask, smaps).numpy(), atol=1e-5
    )
    # a functional model of the normal operator A^H A, saved and reloaded
    x = keras.Input(image.shape[1:], dtype="complex64")
    m = keras.Input(mask.shape[1:])
    s = keras.Input(SHAPE[1:], dtype="complex64") if multicoil else None
    inputs = [x, m] + ([s] if multicoil else [])
    normal = keras.Model(inputs, adjoint(forward(x, sampling_mask=m, smaps=s), sampling_mask=m, smaps=s))
    data = [image, mask] + ([smaps] if multicoil else [])
    normal.save(tmp_path / "normal.keras")
    reloaded = keras.models.load_model(tmp_path / "normal.keras")
    expected = adjoint_op(forward_op(image, mask, smaps), mask, smaps).numpy()
    np.testing.assert_allclose(reloaded(data).numpy(), expected, atol=1e-5)


def test_layers_keep_complex_under_mixed_precision():
    image, _, mask, _ = problem(False)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        forward = ForwardOperator()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = forward(image, sampling_mask=mask)
    assert out.dtype == tf.complex64
    np.testing.assert_array_equal(out.numpy(), forward_op(image, mask).numpy())


@pytest.mark.parametrize("multicoil", [False, True])
def test_cartesian_encoding_is_the_functions_and_its_normal_the_numpy_operators(multicoil):
    from fastmri_recon.baselines.operators import CartesianOperator
    from fastmri_recon.ops.encoding import CartesianEncoding

    image, kspace, mask, smaps = problem(multicoil)
    encoding = CartesianEncoding(mask, smaps)
    assert encoding.multicoil == multicoil
    np.testing.assert_array_equal(encoding.forward(image).numpy(), forward_op(image, mask, smaps).numpy())
    np.testing.assert_array_equal(encoding.adjoint(kspace).numpy(), adjoint_op(kspace, mask, smaps).numpy())
    np.testing.assert_array_equal(encoding.unmasked.forward(image).numpy(), forward_op(image, None, smaps).numpy())
    # A^H A against the baselines' NumPy operator (1D FFTs along the columns: another implementation)
    expected = [CartesianOperator(mask[b], None if smaps is None else smaps[b]).normal(image[b]) for b in range(len(image))]
    np.testing.assert_allclose(encoding.normal(image).numpy(), np.stack(expected), atol=1e-5)
    # self-adjoint and positive semi-definite
    other = complex_noise(image.shape, 7)
    lhs, rhs = inner(encoding.normal(image).numpy(), other), inner(image, encoding.normal(other).numpy())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)
    quadratic = inner(image, encoding.normal(image).numpy())
    assert quadratic.real > 0 and abs(quadratic.imag) <= 1e-5 * quadratic.real


@pytest.mark.parametrize("multicoil", [False, True])
def test_scaled_encoding_scales_both_operators(multicoil):
    from fastmri_recon.ops.encoding import CartesianEncoding, ScaledEncoding

    image, kspace, mask, smaps = problem(multicoil)
    encoding = CartesianEncoding(mask, smaps)
    scaled = ScaledEncoding(encoding, 0.5)
    assert scaled.multicoil == multicoil
    np.testing.assert_allclose(scaled.forward(image).numpy(), 0.5 * encoding.forward(image).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scaled.adjoint(kspace).numpy(), 0.5 * encoding.adjoint(kspace).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scaled.normal(image).numpy(), 0.25 * encoding.normal(image).numpy(), rtol=1e-5, atol=1e-6)
