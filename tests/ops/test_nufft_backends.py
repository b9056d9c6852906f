"""The NUFFT backends (`ops.nufft_backends`): every installed backend through the same `NUFFTPlan` interface."""

import sys

import numpy as np
import pytest
import tensorflow as tf
from ops.test_nufft import complex_noise, inner, random_traj, rel_err

from fastmri_recon.errors import ConfigError
from fastmri_recon.ops import nufft_backends
from fastmri_recon.ops.nufft import NUFFTPlan, np_ndft, np_ndft_adjoint, nufft, nufft_adjoint

BACKENDS = nufft_backends.available_backends()


def test_registry_lists_the_default_first_and_it_is_always_available():
    assert nufft_backends.registered_backends()[0] == nufft_backends.DEFAULT_BACKEND == "tensorflow"
    assert "finufft" in nufft_backends.registered_backends()
    assert BACKENDS[0] == "tensorflow"


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(14, 11), (7, 6, 8)])
def test_forward_and_adjoint_match_exact_ndft(backend, shape):
    ndim = len(shape)
    traj = random_traj((2, ndim, 200), seed=1)
    x = complex_noise((2, 3, *shape), seed=2)
    v = complex_noise((2, 3, 200), seed=3)
    y = nufft(x, traj, backend=backend).numpy()
    xa = nufft_adjoint(v, traj, shape, backend=backend).numpy()
    assert y.shape == (2, 3, 200) and y.dtype == np.complex64 and xa.shape == (2, 3, *shape)
    assert rel_err(y, np.stack([np_ndft(x[b], traj[b]) for b in range(2)])) <= 1e-4
    assert rel_err(xa, np.stack([np_ndft_adjoint(v[b], traj[b], shape) for b in range(2)])) <= 1e-4
    # a shared trajectory, no coil axis, one example
    shared = NUFFTPlan(traj[0], shape, backend=backend)
    assert shared.backend == backend
    assert rel_err(shared.forward(x[0, 0]).numpy(), np_ndft(x[0, 0], traj[0])) <= 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_trajectory_outside_the_base_interval_wraps_around(backend):
    traj = random_traj((2, 50), seed=4)
    x = complex_noise((1, 9, 8), seed=4)
    shifted = traj + np.float32(2 * np.pi) * np.array([[1], [-1]], np.float32)
    np.testing.assert_allclose(nufft(x, shifted, backend=backend).numpy(), nufft(x, traj, backend=backend).numpy(),
                               atol=2e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(12, 10), (6, 5, 7)])
def test_adjoint_dot_product(backend, shape):
    plan = NUFFTPlan(random_traj((len(shape), 300), seed=5), shape, backend=backend)
    x = complex_noise((2, 3, *shape), seed=6)
    y = complex_noise((2, 3, 300), seed=7)
    lhs = inner(plan.forward(x).numpy(), y)
    rhs = inner(x, plan.adjoint(y).numpy())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_image_gradients_are_the_adjoint_and_the_forward(backend):
    traj = random_traj((2, 2, 120), seed=8)
    plan = NUFFTPlan(traj, (10, 9), backend=backend)
    x = tf.constant(complex_noise((2, 10, 9), seed=9))
    y = tf.constant(complex_noise((2, 120), seed=10))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        loss_fwd = tf.math.real(tf.reduce_sum(tf.math.conj(y) * plan.forward(x)))
        loss_adj = tf.math.real(tf.reduce_sum(tf.math.conj(x) * plan.adjoint(y)))
    np.testing.assert_allclose(tape.gradient(loss_fwd, x).numpy(), plan.adjoint(y).numpy(), atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_adj, y).numpy(), plan.forward(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trajectory_gradient_matches_finite_differences(backend):
    shape, m = (9, 8), 30
    traj = random_traj((2, m), seed=11)
    x = complex_noise(shape, seed=12)
    v = complex_noise((m,), seed=13)
    t = tf.constant(traj[None])
    with tf.GradientTape() as tape:
        tape.watch(t)
        loss = tf.math.real(tf.reduce_sum(tf.math.conj(v) * nufft(x[None], t, grad_traj=True, backend=backend)))
    grad = tape.gradient(loss, t).numpy()[0]
    h, base = 1e-6, traj.astype(np.float64)
    fd = np.zeros((2, m))
    for a in range(2):
        step = np.zeros_like(base)
        step[a] = h  # every sample at once: sample j's term depends on w_j only
        fd[a] = np.real(np.conj(v) * (np_ndft(x, base + step) - np_ndft(x, base - step))) / (2 * h)
    assert rel_err(grad, fd) <= 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_plan_built_inside_tf_function_from_a_trajectory_input(backend):
    shape = (10, 8)

    @tf.function(input_signature=[tf.TensorSpec([None, 2, 10, 8], tf.complex64),
                                  tf.TensorSpec([None, 2, None], tf.float32)])
    def normal(image, traj):
        plan = NUFFTPlan(traj, shape, backend=backend)
        return plan.adjoint(plan.forward(image))

    for batch, m in ((1, 40), (2, 90)):
        traj = random_traj((batch, 2, m), seed=m)
        x = complex_noise((batch, 2, *shape), seed=m)
        expected = np.stack([np_ndft_adjoint(np_ndft(x[b], traj[b]), traj[b], shape) for b in range(batch)])
        assert rel_err(normal(x, traj).numpy(), expected) <= 1e-4
    assert normal.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_mirrored_strategy(backend):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    traj = random_traj((1, 2, 60), seed=14)
    x = complex_noise((1, 2, 8, 8), seed=14)
    step = tf.function(lambda image: nufft(image, traj, backend=backend))
    out = strategy.gather(strategy.run(step, args=(tf.constant(x),)), axis=0).numpy()
    assert rel_err(out, np_ndft(x[0], traj[0])[None]) <= 1e-4


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "tensorflow"])
def test_non_tensorflow_backends_refuse_xla_and_the_interpolation_matrix(backend):
    traj = random_traj((2, 30), seed=15)
    plan = NUFFTPlan(traj, (8, 8), backend=backend)
    compiled = tf.function(lambda image: plan.forward(image), jit_compile=True)
    # a ConfigError raised while tracing, which autograph re-raises as its StagingError with the same message
    with pytest.raises(Exception, match=f"backend '{backend}' cannot run inside an XLA-compiled function"):
        compiled(complex_noise((1, 8, 8)))
    for what in ("grid_shape", "width", "beta", "kernel_integral"):
        with pytest.raises(ConfigError, match=what):
            getattr(plan, what)
    with pytest.raises(ConfigError, match="spread"):
        plan.spread(np.ones((1, 30), np.float32))


def test_environment_variable_selects_the_backend(monkeypatch):
    traj = random_traj((2, 20), seed=16)
    monkeypatch.setenv(nufft_backends.ENV_VAR, "tensorflow")
    assert NUFFTPlan(traj, (8, 8)).backend == "tensorflow"
    monkeypatch.setenv(nufft_backends.ENV_VAR, "nope")
    with pytest.raises(ConfigError, match=nufft_backends.ENV_VAR):
        NUFFTPlan(traj, (8, 8))
    assert NUFFTPlan(traj, (8, 8), backend="tensorflow").backend == "tensorflow"  # the argument wins
    with pytest.raises(ConfigError, match="backend must be one of"):
        NUFFTPlan(traj, (8, 8), backend="cuda")


def test_absent_backend_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "finufft", None)  # `import finufft` now raises ImportError
    assert not nufft_backends.is_available("finufft")
    assert "finufft" not in nufft_backends.available_backends()
    with pytest.raises(ConfigError, match="pip install finufft"):
        NUFFTPlan(random_traj((2, 20)), (8, 8), backend="finufft")


@pytest.mark.skipif("finufft" not in BACKENDS, reason="finufft is not installed")
def test_finufft_backend_refuses_a_kernel_width():
    with pytest.raises(ConfigError, match="width"):
        NUFFTPlan(random_traj((2, 20)), (8, 8), width=4, backend="finufft")
