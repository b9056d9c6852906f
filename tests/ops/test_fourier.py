import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.ops.fourier import fft2c, fft3c, ifft2c, ifft3c, np_fftc, np_ifftc


def complex_noise(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def inner(a, b):
    return np.vdot(np.asarray(a, np.complex128), np.asarray(b, np.complex128))


@pytest.mark.parametrize("shape", [(8, 6), (2, 7, 5), (2, 3, 8, 9)])
def test_fft2c_matches_numpy_definition(shape):
    x = complex_noise(shape)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1))), axes=(-2, -1))
    expected /= np.sqrt(shape[-1] * shape[-2])
    np.testing.assert_allclose(fft2c(x).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(np_fftc(x), expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 6, 5), (2, 4, 6, 8)])
def test_fft3c_matches_numpy(shape):
    x = complex_noise(shape)
    axes = (-3, -2, -1)
    np.testing.assert_allclose(fft3c(x).numpy(), np_fftc(x, axes), atol=1e-5)
    np.testing.assert_allclose(ifft3c(x).numpy(), np_ifftc(x, axes), atol=1e-5)


@pytest.mark.parametrize("forward, inverse", [(fft2c, ifft2c), (fft3c, ifft3c)])
def test_orthonormal_and_inverse(forward, inverse):
    x = complex_noise((2, 6, 7, 5))
    y = complex_noise((2, 6, 7, 5), seed=1)
    fx = forward(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(fx), np.linalg.norm(x), rtol=1e-5)
    np.testing.assert_allclose(inverse(fx).numpy(), x, atol=1e-5)
    # adjoint: <F x, y> = <x, F^H y>
    np.testing.assert_allclose(inner(fx, y), inner(x, inverse(y).numpy()), rtol=1e-5)


def test_dc_at_center():
    image = np.ones((1, 8, 6), np.complex64)
    kspace = fft2c(image).numpy()[0]
    assert np.argmax(np.abs(kspace)) == np.ravel_multi_index((4, 3), (8, 6))
    np.testing.assert_allclose(kspace[4, 3], np.sqrt(48), rtol=1e-6)


def test_gradient_is_adjoint_residual():
    x = tf.constant(complex_noise((1, 6, 4)))
    y = tf.constant(complex_noise((1, 6, 4), seed=2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.abs(fft2c(x) - y) ** 2)
    grad = tape.gradient(loss, x)
    expected = 2 * ifft2c(fft2c(x) - y)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), atol=1e-4)


def test_inside_tf_function_with_unknown_shape():
    fn = tf.function(fft2c, input_signature=[tf.TensorSpec([None, None, None], tf.complex64)])
    x = complex_noise((2, 8, 6))
    np.testing.assert_allclose(fn(x).numpy(), np_fftc(x), atol=1e-5)


def test_rejects_real_input():
    with pytest.raises(TypeError, match="complex64"):
        fft2c(np.ones((4, 4), np.float32))
