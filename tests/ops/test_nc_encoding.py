"""The non-Cartesian encoding operator A = F_nu S and its (density-compensated) adjoint."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import DataError
from fastmri_recon.ops.encoding import (
    NonCartesianAdjointOperator,
    NonCartesianEncoding,
    NonCartesianForwardOperator,
    nc_adjoint_op,
    nc_forward_op,
)
from fastmri_recon.ops.nufft import np_ndft, np_ndft_adjoint

BATCH, COILS, SAMPLES = 2, 3, 150
SHAPES = {"2d": (12, 10), "3d": (6, 5, 4)}


def complex_noise(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def problem(dims, multicoil):
    """(image, samples-shaped noise, trajectory (batch, ndim, M), density (batch, M), smaps or None)."""
    shape = SHAPES[dims]
    rng = np.random.default_rng(4)
    traj = rng.uniform(-np.pi, np.pi, (BATCH, len(shape), SAMPLES)).astype(np.float32)
    density = rng.uniform(0.5, 2.0, (BATCH, SAMPLES)).astype(np.float32)
    image = complex_noise((BATCH, *shape), 0)
    samples = complex_noise((BATCH, COILS, SAMPLES) if multicoil else (BATCH, SAMPLES), 1)
    smaps = complex_noise((BATCH, COILS, *shape), 3) if multicoil else None
    return image, samples, traj, density, smaps


def inner(a, b):
    return np.vdot(np.asarray(a, np.complex128), np.asarray(b, np.complex128))


CASES = [(dims, mc) for dims in SHAPES for mc in (False, True)]


@pytest.mark.parametrize("dims, multicoil", CASES)
def test_adjoint_dot_product(dims, multicoil):
    image, samples, traj, density, smaps = problem(dims, multicoil)
    encoding = NonCartesianEncoding(traj, image.shape[1:], density, smaps)
    forward = encoding.forward(image).numpy()
    # exact adjoint, and A^H D the adjoint of A for the weighted inner product <u, D v>
    assert abs(inner(forward, samples) - inner(image, encoding.adjoint(samples, compensate=False))) <= 1e-5 * abs(
        inner(forward, samples)
    )
    weights = density[:, None] if multicoil else density
    lhs = inner(forward, weights * samples)
    assert abs(lhs - inner(image, encoding.adjoint(samples).numpy())) <= 1e-5 * abs(lhs)


@pytest.mark.parametrize("dims, multicoil", CASES)
def test_matches_the_ndft(dims, multicoil):
    image, samples, traj, density, smaps = problem(dims, multicoil)
    shape = image.shape[1:]
    coil_images = image[:, None] * smaps if multicoil else image
    expected = np.stack([np_ndft(coil_images[b], traj[b]) for b in range(BATCH)])
    weights = density[:, None] if multicoil else density
    back = np.stack([np_ndft_adjoint((weights * samples)[b], traj[b], shape) for b in range(BATCH)])
    if multicoil:
        back = np.sum(np.conj(smaps) * back, axis=1)
    forward = nc_forward_op(image, traj, smaps).numpy()
    adjoint = nc_adjoint_op(samples, traj, shape, density, smaps).numpy()
    assert forward.shape == expected.shape and forward.dtype == np.complex64
    assert adjoint.shape == (BATCH, *shape) and adjoint.dtype == np.complex64
    assert np.linalg.norm(forward - expected) <= 1e-4 * np.linalg.norm(expected)
    assert np.linalg.norm(adjoint - back) <= 1e-4 * np.linalg.norm(back)


@pytest.mark.parametrize("compensate", [True, False])
def test_normal_operator_matches_the_ndft(compensate):
    image, _, traj, density, smaps = problem("2d", True)
    shape = image.shape[1:]
    encoding = NonCartesianEncoding(traj, shape, density, smaps)
    weights = density[:, None] if compensate else 1.0
    samples = np.stack([[np_ndft(coil, traj[b]) for coil in image[b, None] * smaps[b]] for b in range(BATCH)])
    back = np.stack([[np_ndft_adjoint(s, traj[b], shape) for s in (weights * samples)[b]] for b in range(BATCH)])
    expected = np.sum(np.conj(smaps) * back, axis=1)
    normal = encoding.normal(image, compensate=compensate).numpy()
    assert normal.shape == image.shape and normal.dtype == np.complex64
    assert np.linalg.norm(normal - expected) <= 1e-4 * np.linalg.norm(expected)


@pytest.mark.slow
def test_shared_trajectory_and_multicoil_agree_with_per_coil_single_coil():
    image, samples, traj, density, smaps = problem("2d", True)
    shared = nc_forward_op(image[:1], traj[0], smaps[:1]).numpy()
    per_coil = np.stack([nc_forward_op(image[:1] * smaps[:1, c], traj[:1]).numpy()[0] for c in range(COILS)])
    np.testing.assert_allclose(shared[0], per_coil, atol=1e-4)
    combined = nc_adjoint_op(samples[:1], traj[:1], density=density[:1], smaps=smaps[:1]).numpy()
    coil_images = [nc_adjoint_op(samples[:1, c], traj[:1], (12, 10), density[:1]).numpy() for c in range(COILS)]
    np.testing.assert_allclose(combined, sum(np.conj(smaps[:1, c]) * coil_images[c] for c in range(COILS)), atol=1e-4)


def test_bad_shapes_are_reported():
    image, samples, traj, density, smaps = problem("2d", True)
    with pytest.raises(DataError, match="image_shape"):
        nc_adjoint_op(samples[:, 0], traj)
    with pytest.raises(DataError, match="do not match the image shape"):
        nc_adjoint_op(samples, traj, (12, 12), smaps=smaps)
    with pytest.raises(DataError, match="2D trajectory"):
        nc_adjoint_op(samples[:, 0], traj, (4, 4, 4))


@pytest.mark.slow
def test_inside_tf_function_with_unknown_batch_and_samples():
    image, samples, traj, density, smaps = problem("2d", True)
    signature = [
        tf.TensorSpec([None, 12, 10], tf.complex64),
        tf.TensorSpec([None, 2, None]),
        tf.TensorSpec([None, None]),
        tf.TensorSpec([None, None, 12, 10], tf.complex64),
    ]

    @tf.function(input_signature=signature)
    def normal(x, trajectory, weights, maps):
        encoding = NonCartesianEncoding(trajectory, density=weights, smaps=maps)
        return encoding.adjoint(encoding.forward(x))

    expected = nc_adjoint_op(nc_forward_op(image, traj, smaps), traj, density=density, smaps=smaps)
    np.testing.assert_allclose(normal(image, traj, density, smaps).numpy(), expected.numpy(), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("multicoil", [False, True])
def test_layers_match_functions_and_serialise(multicoil, tmp_path):
    image, samples, traj, density, smaps = problem("2d", multicoil)
    forward, adjoint = NonCartesianForwardOperator(), NonCartesianAdjointOperator(image_shape=(12, 10), eps=1e-4)
    assert adjoint.get_config()["image_shape"] == (12, 10) and adjoint.get_config()["eps"] == 1e-4
    np.testing.assert_array_equal(forward(image, traj, smaps=smaps).numpy(), nc_forward_op(image, traj, smaps).numpy())
    # a functional model of the density-compensated normal operator A^H D A, saved and reloaded
    x = keras.Input(image.shape[1:], dtype="complex64")
    t = keras.Input(traj.shape[1:])
    d = keras.Input(density.shape[1:])
    s = keras.Input(smaps.shape[1:], dtype="complex64") if multicoil else None
    inputs = [x, t, d] + ([s] if multicoil else [])
    normal = keras.Model(inputs, adjoint(forward(x, t, smaps=s), t, density=d, smaps=s))
    data = [image, traj, density] + ([smaps] if multicoil else [])
    normal.save(tmp_path / "normal.keras")
    reloaded = keras.models.load_model(tmp_path / "normal.keras")
    expected = nc_adjoint_op(nc_forward_op(image, traj, smaps), traj, (12, 10), density, smaps, eps=1e-4).numpy()
    np.testing.assert_allclose(reloaded(data).numpy(), expected, rtol=1e-5, atol=1e-4)
