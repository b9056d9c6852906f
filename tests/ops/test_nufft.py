import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.fourier import fft2c
from fastmri_recon.ops.nufft import (
    DEFAULT_EPS,
    NUFFTPlan,
    es_kernel,
    kernel_width,
    np_ndft,
    np_ndft_adjoint,
    nufft,
    nufft_adjoint,
)


def complex_noise(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def random_traj(shape, seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, shape).astype(np.float32)


def rel_err(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


def inner(a, b):
    return np.vdot(np.asarray(a, np.complex128), np.asarray(b, np.complex128))


@pytest.mark.parametrize("shape", [(16, 16), (15, 12), (8, 8, 8), (7, 6, 9)])
def test_forward_and_adjoint_match_exact_ndft(shape):
    ndim = len(shape)
    traj = random_traj((2, ndim, 300))
    x = complex_noise((2, 3, *shape))
    y = nufft(x, traj).numpy()
    assert y.shape == (2, 3, 300) and y.dtype == np.complex64
    ref = np.stack([np_ndft(x[b], traj[b]) for b in range(2)])
    assert rel_err(y, ref) <= 1e-4
    v = complex_noise((2, 3, 300), seed=1)
    xa = nufft_adjoint(v, traj, shape).numpy()
    assert xa.shape == (2, 3, *shape)
    ref_a = np.stack([np_ndft_adjoint(v[b], traj[b], shape) for b in range(2)])
    assert rel_err(xa, ref_a) <= 1e-4


@pytest.mark.slow
def test_accuracy_knob_trades_width_for_error():
    traj = random_traj((2, 400), seed=3)
    x = complex_noise((1, 24, 24), seed=3)
    ref = np_ndft(x, traj)
    errors = {eps: rel_err(nufft(x, traj, eps=eps).numpy(), ref) for eps in (1e-2, 1e-3, DEFAULT_EPS)}
    assert errors[1e-2] <= 3e-2 and errors[1e-3] <= 3e-3 and errors[DEFAULT_EPS] <= 5e-5
    assert errors[1e-2] > errors[1e-3] > errors[DEFAULT_EPS]
    assert kernel_width(1e-2) < kernel_width(1e-3) < kernel_width(DEFAULT_EPS) == 6
    assert NUFFTPlan(traj, (24, 24), width=3).width == 3
    # a larger oversampling needs a narrower kernel for the same accuracy
    assert kernel_width(1e-5, oversampling=1.25) > kernel_width(1e-5) > kernel_width(1e-5, oversampling=3.0)
    err_125 = rel_err(nufft(x, traj, oversampling=1.25).numpy(), ref)
    assert err_125 <= 1e-4


@pytest.mark.parametrize("shape", [(12, 10), (6, 8, 5)])
def test_adjoint_dot_product(shape):
    traj = random_traj((len(shape), 500), seed=4)
    plan = NUFFTPlan(traj, shape)
    x = complex_noise((2, 3, *shape), seed=5)
    y = complex_noise((2, 3, 500), seed=6)
    lhs = inner(plan.forward(x).numpy(), y)
    rhs = inner(x, plan.adjoint(y).numpy())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_cartesian_trajectory_equals_centered_fft():
    n0, n1 = 8, 6
    k0, k1 = np.meshgrid(2 * np.pi * (np.arange(n0) - n0 // 2) / n0, 2 * np.pi * (np.arange(n1) - n1 // 2) / n1,
                         indexing="ij")
    traj = np.stack([k0.ravel(), k1.ravel()]).astype(np.float32)
    x = complex_noise((2, n0, n1), seed=7)
    y = nufft(x, traj).numpy().reshape(2, n0, n1)
    assert rel_err(y, fft2c(x).numpy()) <= 1e-4


@pytest.mark.slow
def test_shared_trajectory_and_axes():
    traj = random_traj((2, 200), seed=8)
    x = complex_noise((2, 3, 10, 12), seed=9)
    shared = NUFFTPlan(traj, (10, 12))
    per_example = NUFFTPlan(np.stack([traj, traj]), (10, 12))
    y_shared = shared.forward(x).numpy()
    np.testing.assert_allclose(y_shared, per_example.forward(x).numpy(), atol=1e-5)
    # no coil axis; any leading axes with a shared trajectory
    np.testing.assert_allclose(per_example.forward(x[:, 0]).numpy(), y_shared[:, 0], atol=1e-5)
    np.testing.assert_allclose(shared.forward(x[0, 0]).numpy(), y_shared[0, 0], atol=1e-5)
    assert shared.adjoint(y_shared[:1]).shape == (1, 3, 10, 12)
    assert per_example.adjoint(y_shared[:, 1]).shape == (2, 10, 12)


@pytest.mark.slow
def test_inside_tf_function_with_dynamic_sizes():
    shape = (10, 8)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2, 10, 8], tf.complex64),
            tf.TensorSpec([None, 2, None], tf.float32),
        ]
    )
    def roundtrip(image, traj):
        plan = NUFFTPlan(traj, shape)
        return plan.adjoint(plan.forward(image)), nufft(image, traj)

    for batch, m in ((1, 50), (3, 120)):
        traj = random_traj((batch, 2, m), seed=m)
        x = complex_noise((batch, 2, *shape), seed=m)
        normal, y = roundtrip(x, traj)
        np.testing.assert_allclose(y.numpy(), nufft(x, traj).numpy(), atol=1e-5)
        expected = nufft_adjoint(nufft(x, traj), traj, shape).numpy()
        np.testing.assert_allclose(normal.numpy(), expected, atol=1e-5)
    assert roundtrip.experimental_get_tracing_count() == 1


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(8, 8), (6, 5, 7)])
def test_inside_xla_compiled_function(shape):
    # the interpolation kernels are XLA-compiled functions of their own; inside an XLA-compiled
    # caller they are inlined, and complex data cannot be bitcast
    traj = random_traj((2, len(shape), 100), seed=10)
    x = complex_noise((2, 3, *shape), seed=10)
    compiled = tf.function(lambda image: nufft_adjoint(nufft(image, traj), traj, shape), jit_compile=True)
    expected = nufft_adjoint(nufft(x, traj), traj, shape)
    np.testing.assert_allclose(compiled(x).numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.slow
def test_gradient_with_respect_to_image_is_the_adjoint():
    traj = random_traj((2, 2, 150), seed=11)
    x = tf.constant(complex_noise((2, 12, 10), seed=12))
    v = complex_noise((2, 150), seed=13)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.math.real(tf.reduce_sum(tf.math.conj(v) * nufft(x, traj)))
    grad = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(grad, nufft_adjoint(v, traj, (12, 10)).numpy(), atol=1e-5)
    # and the gradient of the adjoint is the forward; gradients compose (normal operator)
    y = tf.constant(v)
    u = complex_noise((2, 12, 10), seed=14)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        loss_adj = tf.math.real(tf.reduce_sum(tf.math.conj(u) * nufft_adjoint(y, traj, (12, 10))))
        plan = NUFFTPlan(traj, (12, 10))
        loss_normal = tf.reduce_sum(tf.abs(plan.adjoint(plan.forward(x))) ** 2)
    np.testing.assert_allclose(tape.gradient(loss_adj, y).numpy(), nufft(u, traj).numpy(), atol=1e-5)
    normal = plan.adjoint(plan.forward(x))
    expected = 2 * plan.adjoint(plan.forward(normal)).numpy()
    np.testing.assert_allclose(tape.gradient(loss_normal, x).numpy(), expected, rtol=1e-4, atol=1e-4)


def _ndft_loss(x, traj, v):
    return np.real(np.vdot(v, np_ndft(x, traj)))


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(10, 12), (6, 5, 7)])
def test_gradient_with_respect_to_trajectory_matches_finite_differences(shape):
    ndim = len(shape)
    m = 40
    traj = random_traj((ndim, m), seed=15)
    x = complex_noise(shape, seed=16)
    v = complex_noise((m,), seed=17)
    u = complex_noise(shape, seed=18)
    t = tf.constant(traj[None])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(t)
        loss = tf.math.real(tf.reduce_sum(tf.math.conj(v) * nufft(x[None], t, grad_traj=True)))
        loss_adj = tf.math.real(tf.reduce_sum(tf.math.conj(u) * nufft_adjoint(v[None], t, shape, grad_traj=True)))
        loss_nograd = tf.math.real(tf.reduce_sum(nufft(x[None], t)))
    grad = tape.gradient(loss, t).numpy()[0]
    grad_adj = tape.gradient(loss_adj, t).numpy()[0]
    assert tape.gradient(loss_nograd, t) is None
    h = 1e-6
    fd = np.zeros((ndim, m))
    fd_adj = np.zeros((ndim, m))
    base = traj.astype(np.float64)
    for a in range(ndim):
        step = np.zeros_like(base)
        step[a] = h  # all samples at once: sample j's loss term depends only on w_j
        fd[a] = np.real(np.conj(v) * (np_ndft(x, base + step) - np_ndft(x, base - step))) / (2 * h)
        # adjoint: d/dw_j Re<u, A^H v> = Re(v_j conj(A u)_j)' -- per-sample terms as well
        fd_adj[a] = np.real(v * np.conj(np_ndft(u, base + step) - np_ndft(u, base - step))) / (2 * h)
    assert rel_err(grad, fd) <= 1e-3
    assert rel_err(grad_adj, fd_adj) <= 1e-3
    np.testing.assert_allclose(_ndft_loss(x, traj, v), loss.numpy(), rtol=1e-4)


def _np_interpolate(grid, traj, width, beta):
    """Direct evaluation of the interpolation matrix C: sum over the W^d neighbours k of a sample of
    prod_a phi(t_a - k_a) (-1)^k_a grid[k mod G], with t = w G / (2 pi)."""
    shape = np.array(grid.shape)
    t = traj.astype(np.float64) * shape[:, None] / (2 * np.pi)  # (d, M)
    k = np.floor(t - width / 2)[..., None] + 1 + np.arange(width)  # (d, M, W)
    factors = es_kernel(t[..., None] - k, width, beta) * (1 - 2 * (k % 2))
    out = np.zeros(traj.shape[1])
    for offsets in np.ndindex(*(width,) * len(shape)):
        index = tuple((k[a, :, o] % shape[a]).astype(int) for a, o in enumerate(offsets))
        out += np.prod([factors[a, :, o] for a, o in enumerate(offsets)], axis=0) * grid[index]
    return out


@pytest.mark.parametrize("shape", [(8, 10), (6, 5, 7)])
def test_interpolation_matches_direct_evaluation_and_spread_is_its_transpose(shape):
    # random trajectories: the plan sorts the samples by grid cell, the results are in the caller's order
    traj = random_traj((2, len(shape), 80), seed=19)
    plan = NUFFTPlan(traj, shape, width=4)
    rng = np.random.default_rng(20)
    g = rng.standard_normal((2, *plan.grid_shape)).astype(np.float32)
    w = rng.standard_normal((2, 80)).astype(np.float32)
    interpolated = plan.interpolate(g).numpy()
    for b in range(2):
        np.testing.assert_allclose(interpolated[b], _np_interpolate(g[b], traj[b], 4, plan.beta), rtol=1e-4,
                                   atol=1e-4)
    lhs = np.sum(interpolated * w)
    rhs = np.sum(g * plan.spread(w).numpy())
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


@pytest.mark.slow
def test_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    traj = random_traj((1, 2, 60), seed=21)
    x = complex_noise((1, 2, 8, 8), seed=21)
    step = tf.function(lambda image: nufft(image, traj))
    out = strategy.run(step, args=(tf.constant(x),))
    expected = nufft(x, traj).numpy()  # eagerly: constant folding in the graph may round the kernel's exp differently
    np.testing.assert_allclose(strategy.gather(out, axis=0).numpy(), expected, atol=1e-6 * np.abs(expected).max())


def test_agrees_with_finufft():
    finufft = pytest.importorskip("finufft")
    n0, n1 = 16, 12
    traj = random_traj((2, 300), seed=22)
    x = complex_noise((n0, n1), seed=23)
    ours = nufft(x, traj).numpy()
    ref = finufft.nufft2d2(traj[0].astype(np.float64), traj[1].astype(np.float64), x.astype(np.complex128),
                           isign=-1, eps=1e-9) / np.sqrt(n0 * n1)
    assert rel_err(ours, ref) <= 1e-4
    ref_adj = finufft.nufft2d1(traj[0].astype(np.float64), traj[1].astype(np.float64), ref.astype(np.complex128),
                               (n0, n1), isign=1, eps=1e-9) / np.sqrt(n0 * n1)
    assert rel_err(nufft_adjoint(ref.astype(np.complex64), traj, (n0, n1)).numpy(), ref_adj) <= 1e-4


def test_bad_input_raises():
    traj = random_traj((2, 10))
    with pytest.raises(TypeError, match="complex64"):
        nufft(np.zeros((1, 8, 8), np.float32), traj)
    with pytest.raises(DataError, match="image"):
        NUFFTPlan(traj, (8, 8)).forward(np.zeros((1, 8, 9), np.complex64))
    with pytest.raises(DataError, match="trajectory"):
        nufft(np.zeros((1, 8, 8), np.complex64), random_traj((4, 10)))
    with pytest.raises(DataError, match="image_shape"):
        NUFFTPlan(traj, (8, 8, 8))
    with pytest.raises(DataError, match="static"):
        NUFFTPlan(traj, tf.TensorShape([8, None]))
    with pytest.raises(ConfigError, match="eps"):
        NUFFTPlan(traj, (8, 8), eps=2.0)
    with pytest.raises(ConfigError, match="oversampling"):
        NUFFTPlan(traj, (8, 8), oversampling=1.0)
    with pytest.raises(ConfigError, match="width"):
        NUFFTPlan(traj, (8, 8), width=40)
