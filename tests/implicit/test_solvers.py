"""Root solvers: convergence, per-example reporting, Broyden's inverse estimate, graph mode."""

import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.implicit.solvers import (
    anderson,
    apply_inverse,
    apply_inverse_transpose,
    broyden,
    fixed_point,
    get_solver,
)

BATCH, DIM = 3, 6


def contraction(seed=0, norm=0.9, dim=DIM, batch=BATCH):
    """(W, x): f(z) = tanh(z W^T + x) with ||W||_2 = norm < 1, float64."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((dim, dim))
    return norm * w / np.linalg.norm(w, 2), rng.standard_normal((batch, dim))


def tanh_root(w, x):
    return lambda z: z - tf.tanh(z @ tf.constant(w.T) + x)


def iterate(w, x, n=2000):
    z = np.zeros_like(x)
    for _ in range(n):
        z = np.tanh(z @ w.T + x)
    return z


@pytest.mark.parametrize("name", ["broyden", "anderson", "fixed-point"])
def test_solvers_find_the_fixed_point(name):
    w, x = contraction()
    result = get_solver(name)(tanh_root(w, x), tf.zeros((BATCH, DIM), tf.float64), max_iter=100, tol=1e-10)
    np.testing.assert_allclose(result.z.numpy(), iterate(w, x), atol=1e-8)
    assert (
        result.converged.numpy().all() and (result.residual.numpy() <= 1e-10 * np.linalg.norm(result.z, axis=1)).all()
    )
    assert result.n_steps.dtype == tf.int32 and (result.n_steps.numpy() > 0).all()
    assert int(result.n_iter) == result.n_steps.numpy().max()


@pytest.mark.slow
def test_broyden_and_anderson_beat_the_plain_iteration():
    w, x = contraction()
    steps = {
        name: get_solver(name)(tanh_root(w, x), tf.zeros((BATCH, DIM), tf.float64), max_iter=200, tol=1e-10).n_steps
        for name in ("broyden", "anderson", "fixed-point")
    }
    assert (steps["broyden"].numpy() < steps["fixed-point"].numpy()).all()
    assert (steps["anderson"].numpy() < steps["fixed-point"].numpy()).all()


def test_per_example_convergence_and_freezing():
    """An example that starts at its root takes no step and keeps its point; the others go on."""
    w, x = contraction()
    z0 = np.zeros((BATCH, DIM))
    z0[1] = iterate(w, x)[1]
    result = broyden(tanh_root(w, x), tf.constant(z0), max_iter=100, tol=1e-8)
    assert result.n_steps.numpy()[1] == 0 and (result.n_steps.numpy()[[0, 2]] > 0).all()
    np.testing.assert_array_equal(result.z.numpy()[1], z0[1])
    np.testing.assert_array_equal(result.factors[0].numpy()[1], 0.0)


def test_unconverged_examples_are_reported():
    w, x = contraction(norm=0.95)
    result = fixed_point(tanh_root(w, x), tf.zeros((BATCH, DIM), tf.float64), max_iter=3, tol=1e-12)
    assert not result.converged.numpy().any() and (result.n_steps.numpy() == 3).all()
    assert (result.residual.numpy() > 0).all()


def test_non_finite_steps_are_refused():
    """g blows up for example 0 once it moves: its step is refused, it stops unconverged at z0."""

    def g(z):
        blown = tf.where(tf.reduce_any(z[:1] != 0), tf.constant(np.inf, z.dtype), tf.constant(0.0, z.dtype))
        return z - 1.0 + tf.concat([blown * tf.ones_like(z[:1]), tf.zeros_like(z[1:])], 0)

    result = broyden(g, tf.zeros((2, 3), tf.float64), max_iter=10, tol=1e-8)
    assert result.converged.numpy().tolist() == [False, True]
    np.testing.assert_array_equal(result.z.numpy()[0], 0.0)
    np.testing.assert_allclose(result.z.numpy()[1], 1.0)


def test_broyden_secant_and_inverse_factors():
    """H = I + U^T V: the last good-Broyden update satisfies the secant condition H y = s."""
    w, x = contraction(batch=1)
    g = tanh_root(w, x)
    first = broyden(g, tf.zeros((1, DIM), tf.float64), max_iter=4, tol=0.0)
    second = broyden(g, tf.zeros((1, DIM), tf.float64), max_iter=5, tol=0.0)
    s = second.z - first.z
    y = g(second.z) - g(first.z)
    np.testing.assert_allclose(apply_inverse(second.factors, y).numpy(), s.numpy(), rtol=1e-8, atol=1e-12)
    v = tf.constant(np.random.default_rng(1).standard_normal((1, DIM)))
    u_mat, v_mat = (f.numpy()[0] for f in second.factors)
    dense = np.eye(DIM) + u_mat.T @ v_mat
    np.testing.assert_allclose(apply_inverse_transpose(second.factors, v).numpy()[0], dense.T @ v.numpy()[0])


@pytest.mark.parametrize("update, opa_every", [("adjoint", None), ("good", 1), ("adjoint", 2)])
def test_adjoint_broyden_and_opa_estimate_the_inverse_on_affine_problems(update, opa_every):
    """On g(z) = (I - W) z - x, adjoint Broyden / OPA make H^T exact in the outer direction e."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 8))
    w = 0.7 * w / np.linalg.norm(w, 2)
    x, e = rng.standard_normal((2, 1, 8))
    options = dict(update=update)
    if opa_every:
        options.update(opa_every=opa_every, opa_direction=lambda z: tf.constant(e))
    result = broyden(lambda z: z - z @ tf.constant(w.T) - x, tf.zeros((1, 8), tf.float64), 100, 1e-8, **options)
    exact = np.linalg.solve((np.eye(8) - w).T, e[0])
    estimate = apply_inverse_transpose(result.factors, tf.constant(e)).numpy()[0]
    assert np.linalg.norm(estimate - exact) <= 1e-6 * np.linalg.norm(exact)


def test_init_factors_start_from_the_given_estimate():
    """With the exact inverse as H_0 = I + U0^T V0, Broyden solves an affine problem in one step."""
    rng = np.random.default_rng(2)
    m = 0.5 * rng.standard_normal((4, 4)) + np.eye(4)
    x = rng.standard_normal((1, 4))
    inverse_minus_eye = np.linalg.inv(m) - np.eye(4)
    factors = (tf.constant(np.eye(4)[None]), tf.constant(inverse_minus_eye[None]))  # U0^T V0 = M^-1 - I
    result = broyden(lambda z: z @ tf.constant(m.T) - x, tf.zeros((1, 4), tf.float64), 10, 1e-10, init_factors=factors)
    assert int(result.n_steps[0]) == 1 and result.factors[0].shape == (1, 4 + 10, 4)
    np.testing.assert_allclose(result.z.numpy()[0], np.linalg.solve(m, x[0]))


@pytest.mark.slow
def test_solvers_in_graph_mode_with_unknown_shapes():
    w, x = contraction()
    g = tanh_root(w, x)
    signature = [tf.TensorSpec([None, None], tf.float64)]
    for name in ("broyden", "anderson", "fixed-point"):
        solve = tf.function(
            lambda z, name=name: get_solver(name)(g, z, max_iter=100, tol=1e-10).z, input_signature=signature
        )
        np.testing.assert_allclose(solve(tf.zeros((BATCH, DIM), tf.float64)).numpy(), iterate(w, x), atol=1e-8)
    memory = tf.function(lambda z: anderson(g, z, memory=2, max_iter=100, tol=1e-10).z, input_signature=signature)
    np.testing.assert_allclose(memory(tf.zeros((BATCH, DIM), tf.float64)).numpy(), iterate(w, x), atol=1e-8)


def test_bad_configurations_raise():
    with pytest.raises(ConfigError, match="unknown solver"):
        get_solver("newton")

    def g(z):
        return z

    with pytest.raises(ConfigError, match="OPA"):
        broyden(g, tf.zeros((1, 2)), opa_every=2)
    with pytest.raises(ConfigError, match="update"):
        broyden(g, tf.zeros((1, 2)), update="bad")
    with pytest.raises(ConfigError, match="max_iter"):
        fixed_point(g, tf.zeros((1, 2)), tol=-1.0)
