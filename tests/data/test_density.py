import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.data.density import pipe_menon_density, radial_ramp_density
from fastmri_recon.data.trajectories import kooshball_trajectory, radial_trajectory, spiral_trajectory
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.nufft import NUFFTPlan, nufft, nufft_adjoint


def smooth_image(shape, sigma):
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    r2 = sum(g.astype(np.float64) ** 2 for g in grids)
    phase = np.exp(0.2j * grids[-1])
    return (np.exp(-r2 / (2 * sigma**2)) * phase).astype(np.complex64)


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.slow
@pytest.mark.parametrize("golden, min_corr", [(False, 0.99), (True, 0.9)])
def test_iterative_weights_follow_the_radial_ramp(golden, min_corr):
    traj = radial_trajectory(32, n_spokes=64, golden=golden)
    weights = pipe_menon_density(traj, (32, 32)).numpy()
    ramp = radial_ramp_density(traj, (32, 32))
    assert weights.shape == ramp.shape == (traj.shape[1],)
    radius = np.sqrt(np.sum(traj.astype(np.float64) ** 2, axis=0))
    away = (radius > 0.1 * np.pi) & (radius < 0.9 * np.pi)
    assert np.corrcoef(weights[away], ramp[away])[0, 1] >= min_corr
    np.testing.assert_allclose(np.median(weights[away] / ramp[away]), 1.0, atol=0.05)
    # the weights sum to prod(N) times the covered fraction of k-space (pi / 4 for a disc)
    np.testing.assert_allclose(weights.sum(), 32 * 32 * np.pi / 4, rtol=0.05)
    np.testing.assert_allclose(ramp.sum(), 32 * 32 * np.pi / 4 * (radius.max() / np.pi) ** 2, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "traj, shape, radial",
    [
        (radial_trajectory(32, n_spokes=64), (32, 32), True),
        (spiral_trajectory(32, n_shots=8), (32, 32), False),
        (kooshball_trajectory(12, n_samples=24), (12, 12, 12), True),
    ],
    ids=["radial", "spiral", "kooshball"],
)
def test_density_compensated_adjoint_recovers_a_smooth_image(traj, shape, radial):
    image = smooth_image(shape, sigma=3.0 if len(shape) == 2 else 2.0)[None]
    weights = pipe_menon_density(traj, shape)
    samples = nufft(image, traj)
    recon = nufft_adjoint(samples * tf.cast(weights, tf.complex64), traj, shape).numpy()
    assert rel_err(recon, image) <= 0.02
    if radial:  # the analytic ramp works too
        ramp = radial_ramp_density(traj, shape)
        recon_ramp = nufft_adjoint(samples * ramp.astype(np.complex64), traj, shape).numpy()
        assert rel_err(recon_ramp, image) <= 0.06


@pytest.mark.slow
def test_batched_weights_in_tf_function_and_reused_plan():
    trajs = np.stack([radial_trajectory(16, n_spokes=20), radial_trajectory(16, n_spokes=20, offset=20)])
    expected = np.stack([pipe_menon_density(t, (16, 16), n_iter=5).numpy() for t in trajs])
    compute = tf.function(lambda t: pipe_menon_density(t, (16, 16), n_iter=5))
    np.testing.assert_allclose(compute(tf.constant(trajs)).numpy(), expected, rtol=1e-4)
    plan = NUFFTPlan(trajs, (16, 16), eps=1e-3)
    np.testing.assert_allclose(pipe_menon_density(trajs, (16, 16), n_iter=5, plan=plan).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(radial_ramp_density(trajs, (16, 16))[1], radial_ramp_density(trajs[1], (16, 16)))


def test_bad_input():
    traj = radial_trajectory(16, n_spokes=8)
    with pytest.raises(ConfigError, match="n_iter"):
        pipe_menon_density(traj, (16, 16), n_iter=0)
    with pytest.raises(DataError, match="plan"):
        pipe_menon_density(traj, (8, 8), plan=NUFFTPlan(traj, (16, 16)))
    with pytest.raises(DataError, match="trajectory"):
        radial_ramp_density(traj, (16, 16, 16))
    with pytest.raises(DataError, match="centre"):
        radial_ramp_density(np.zeros((2, 5), np.float32), (16, 16))


def test_density_gradient_matches_finite_differences_and_is_finite_on_the_grid():
    """The Pipe-Menon weights differentiated with respect to the trajectory (the learned trajectory's option)."""
    on_grid = radial_trajectory(16, n_spokes=6).astype(np.float32)  # samples on the oversampled grid's points
    jittered = on_grid + np.random.default_rng(0).uniform(-0.02, 0.02, on_grid.shape).astype(np.float32)
    weights = tf.cast(tf.range(on_grid.shape[1]) % 5, tf.float32)

    def objective(t):
        return tf.reduce_sum(pipe_menon_density(t, (16, 16)) * weights)

    for trajectory in (on_grid, jittered):
        point = tf.Variable(trajectory)
        with tf.GradientTape() as tape:
            value = objective(point)
        gradient = tape.gradient(value, point).numpy()
        assert np.isfinite(gradient).all()  # the kernel's edge gives no inf / NaN
    h, coordinates = 1e-3, [(0, 3), (1, 10), (0, 40), (1, 77), (0, 90)]
    finite = []
    for axis, sample in coordinates:
        step = np.zeros_like(jittered)
        step[axis, sample] = h
        finite.append((float(objective(jittered + step)) - float(objective(jittered - step))) / (2 * h))
    analytic = [gradient[axis, sample] for axis, sample in coordinates]
    np.testing.assert_allclose(analytic, finite, rtol=0.02, atol=0.02 * np.abs(finite).max())
