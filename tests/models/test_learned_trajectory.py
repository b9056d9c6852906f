import numpy as np
import pytest
import keras
import tensorflow as tf

from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.learned_trajectory import (
    LearnedTrajectory,
    LearnedTrajectoryModel,
    trajectory_figure,
    trajectory_report,
)
from fastmri_recon.models.ncpdnet import NCPDNet
from fastmri_recon.ops.nufft import nufft

SHAPE = (16, 16)
TINY = {"n_iter": 2, "n_primal": 2, "n_filters": 4}


def tiny_model(kind="radial", eps=1e-4, **trajectory):
    keras.utils.set_random_seed(0)
    layer = LearnedTrajectory(kind, SHAPE, 4, n_shots=trajectory.pop("n_shots", 6 if kind == "radial" else 4), **trajectory)
    model = LearnedTrajectoryModel(NCPDNet(image_shape=SHAPE, nufft_eps=eps, **TINY), layer, sampling_eps=eps)
    model(model.dummy_inputs())
    return model


def smooth_images(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(16) - 8, np.arange(16) - 8, indexing="ij")
    images = []
    for _ in range(batch):
        centre = rng.uniform(-3, 3, 2)
        blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * rng.uniform(2, 4) ** 2))
        images.append(blob * np.exp(1j * rng.uniform(-0.5, 0.5) * cols / 8))
    return np.asarray(images, np.complex64)


def check_directional_derivatives(loss, trajectory, gradient, step, tolerances):
    """Central differences of ``loss`` along the gradient and a random direction against ``gradient``.

    Only samples away from the k-space box (``|k| < 3`` rad) move, where a step stays feasible; ``tolerances``
    are the relative ones of the two directions.
    """
    inside = np.abs(trajectory) < 3.0
    directions = {"gradient": gradient * inside / np.abs(gradient * inside).max(),
                  "random": np.random.default_rng(1).standard_normal(gradient.shape).astype(np.float32) * inside}
    for (name, v), tolerance in zip(directions.items(), tolerances):
        finite = (float(loss(trajectory + step * v)) - float(loss(trajectory - step * v))) / (2 * step)
        analytic = float(np.sum(gradient * v))
        assert abs(finite - analytic) <= tolerance * abs(analytic), (name, finite, analytic)


@pytest.mark.slow
def test_trajectory_gradient_of_the_whole_model_matches_finite_differences():
    """d loss / d trajectory through the simulated NUFFT and NC-PDNet's unrolled NUFFTs, at fixed density.

    float32 (the NUFFT's precision): central differences with a step of 3e-3 rad, within 1% along the gradient
    and 5% along a random direction (truncation and round-off of the float32 model).
    """
    model = tiny_model()
    images = smooth_images()
    target = tf.constant(np.abs(images) * 0.8)
    trajectory, density = model.trajectory_and_density()

    def loss(t):
        return tf.reduce_mean((model.reconstruct(images, t, density) - target) ** 2)

    point = tf.Variable(trajectory)
    with tf.GradientTape() as tape:
        value = loss(point)
    gradient = tape.gradient(value, point).numpy()
    # the model's own call gives the same gradient to its variable (straight-through projection, density held)
    with tf.GradientTape() as tape:
        value_call = tf.reduce_mean((model(images) - target) ** 2)
    np.testing.assert_allclose(float(value_call), float(value), rtol=1e-6)
    np.testing.assert_array_equal(tape.gradient(value_call, model.trajectory_layer.points).numpy(), gradient)
    check_directional_derivatives(loss, trajectory.numpy(), gradient, step=3e-3, tolerances=(0.01, 0.05))


@pytest.mark.slow
def test_trajectory_gradient_through_the_density_matches_finite_differences():
    """With ``density_gradient`` the gradient also goes through the Pipe-Menon density of the trajectory.

    The trajectory is moved off the oversampled grid's points first (the radial start has samples on them, where
    the kernel's edge makes the density's derivative undefined and central differences straddle its jump).
    """
    model = tiny_model()
    model.density_gradient = True
    images = smooth_images()
    target = tf.constant(np.abs(images) * 0.8)
    start = model.trajectory_and_density()[0].numpy()
    trajectory = start + np.random.default_rng(2).uniform(-0.01, 0.01, start.shape).astype(np.float32)

    def loss(t, with_density=True):
        t = tf.convert_to_tensor(t)
        density = model.density_of(t) if with_density else tf.stop_gradient(model.density_of(t))
        return tf.reduce_mean((model.reconstruct(images, t, density) - target) ** 2)

    point = tf.Variable(trajectory)
    with tf.GradientTape(persistent=True) as tape:
        value, fixed = loss(point), loss(point, with_density=False)
    gradient, at_fixed_density = tape.gradient(value, point).numpy(), tape.gradient(fixed, point).numpy()
    assert np.isfinite(gradient).all()
    # the density's path is not negligible: the two gradients differ
    assert np.linalg.norm(gradient - at_fixed_density) > 0.05 * np.linalg.norm(gradient)
    check_directional_derivatives(loss, trajectory, gradient, step=1e-3, tolerances=(0.02, 0.1))


def test_density_gradient_is_an_option_of_the_run_and_round_trips(tmp_path):
    from fastmri_recon.models.learned_trajectory import with_learned_trajectory

    model = with_learned_trajectory(NCPDNet(image_shape=SHAPE, **TINY), "learned-radial", 4, {"n_shots": 6, "density_gradient": True})
    assert model.density_gradient and model.get_config()["density_gradient"] is True
    assert not with_learned_trajectory(NCPDNet(image_shape=SHAPE, **TINY), "learned-radial", 4, {"n_shots": 6}).density_gradient
    with pytest.raises(ConfigError, match="density_gradient='yes': expected true or false"):
        with_learned_trajectory(NCPDNet(image_shape=SHAPE, **TINY), "learned-radial", 4, {"density_gradient": "yes"})


@pytest.mark.slow
def test_density_is_recomputed_when_the_trajectory_moves():
    model = tiny_model()
    layer = model.trajectory_layer
    before, density_before = (t.numpy() for t in model.trajectory_and_density())
    np.testing.assert_allclose(density_before, pipe_menon_density(before, SHAPE).numpy(), rtol=1e-6)
    moved = before * np.float32(0.8)  # feasible: a slower copy of the same spokes
    layer.points.assign(moved)
    after, density_after = (t.numpy() for t in model.trajectory_and_density())
    np.testing.assert_array_equal(after, moved)
    np.testing.assert_allclose(density_after, pipe_menon_density(moved, SHAPE).numpy(), rtol=1e-6)
    assert np.abs(density_after - density_before).max() > 0.1 * np.abs(density_before).max()
    # and the samples the reconstructor gets are those of the new trajectory
    images = smooth_images()
    np.testing.assert_allclose(
        model(images).numpy(),
        model.reconstructor((nufft(images, moved, eps=1e-4), np.broadcast_to(moved, (2, *moved.shape)), np.stack([density_after] * 2))).numpy(),
        rtol=1e-4, atol=1e-5 * float(np.abs(model(images)).max()),
    )


@pytest.mark.slow
def test_save_and_load_round_trip(tmp_path):
    model = tiny_model("spiral", parameter_scale=4.0)
    layer = model.trajectory_layer
    layer.points.assign(layer.constraints.project(layer.learned() * np.float32(0.9)).numpy() / 4.0)
    images = smooth_images()
    expected = model(images).numpy()
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.trajectory_layer.learned(), layer.learned())
    np.testing.assert_array_equal(loaded(images).numpy(), expected)
    model.save_weights(tmp_path / "model.weights.h5")
    rebuilt = LearnedTrajectoryModel.from_config(model.get_config())
    rebuilt(rebuilt.dummy_inputs())
    rebuilt.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(rebuilt.trajectory_layer.initial_points(), layer.initial_points())
    np.testing.assert_array_equal(rebuilt(images).numpy(), expected)


@pytest.mark.slow
def test_tiny_overfit_moves_the_trajectory_within_the_limits():
    model = tiny_model("spiral", parameter_scale=8.0)
    layer = model.trajectory_layer
    images = smooth_images(batch=2, seed=3)
    target = tf.constant(np.abs(images))
    optimizer = keras.optimizers.Adam(1e-2)
    variables = model.trainable_variables
    assert any(v is layer.points for v in variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(images, training=True) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    losses = []
    for _ in range(12):
        losses.append(float(step()))
        value = layer.points.numpy() * 8.0
        assert layer.constraints.violations(value).feasible  # the optimiser applied the constraint
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])
    assert np.abs(layer.learned() - layer.initial_points()).max() > 0.01
    np.testing.assert_array_equal(layer.learned(), layer.points.numpy() * 8.0)  # the forward projection is the identity


@pytest.mark.slow
def test_an_infeasible_variable_is_projected_before_use():
    model = tiny_model()
    layer = model.trajectory_layer
    zigzag = np.tile(np.float32([[-3.0, 3.0]]), (2, layer.n_samples // 2))
    layer.points.assign(zigzag)
    assert not layer.constraints.violations(zigzag).feasible
    assert layer.constraints.violations(layer.learned()).feasible
    report_arrays, summary = trajectory_report(layer)
    assert summary["violations"]["learned"]["feasible"] and summary["violations"]["initial"]["feasible"]
    assert report_arrays["learned"].shape == (2, layer.n_samples)


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match="power of two"):
        LearnedTrajectory("radial", SHAPE, 4, parameter_scale=3.0)
    with pytest.raises(ConfigError, match="kind"):
        LearnedTrajectory("kooshball", SHAPE, 4)
    layer = LearnedTrajectory("radial", SHAPE, 4, n_shots=6)
    with pytest.raises(ConfigError, match="phase_normalization"):
        LearnedTrajectoryModel(NCPDNet(image_shape=SHAPE, phase_normalization=True, **TINY), layer)
    with pytest.raises(ConfigError, match="image_shape"):
        LearnedTrajectoryModel(NCPDNet(image_shape=(16, 12), **TINY), layer)
    model = LearnedTrajectoryModel(NCPDNet(image_shape=SHAPE, **TINY), layer)
    with pytest.raises(DataError, match="complex64"):
        model(np.zeros((1, 12, 16), np.complex64))


@pytest.mark.slow
def test_trajectory_figure_is_a_png(tmp_path):
    layer = LearnedTrajectory("spiral", SHAPE, 4, n_shots=4)
    path = trajectory_figure(tmp_path / "t.png", layer.constraints, {"initial": layer.initial_points(), "learned": layer.learned()})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
