"""The off-resonance-aware (B0) encoding: exact adjoint, accuracy against the exact sum, and NC-PDNet with a field map."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.field_maps import simulate_field_map, spiral_readout_times
from fastmri_recon.data.trajectories import spiral_trajectory
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.registry import build
from fastmri_recon.ops.encoding import NonCartesianEncoding
from fastmri_recon.ops.nufft import np_ndft
from fastmri_recon.ops.off_resonance import (
    OffResonanceEncoding,
    band_error,
    interpolation_error,
    np_off_resonance_sum,
    segments_for_accuracy,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from model_checks import overfit  # noqa: E402  (the house helper of the model tests)

BATCH, COILS, SAMPLES = 2, 3, 160
SHAPE = (12, 10)
READOUT = 10e-3  # seconds
TOL = 1e-3  # stated accuracy of the fit (segments_for_accuracy)


def complex_noise(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def problem(multicoil, half_range_hz=100.0, seed=0):
    """(image, samples-shaped noise, trajectory, density, smaps or None, field maps, read-out times (batch, M))."""
    rng = np.random.default_rng(seed)
    traj = rng.uniform(-np.pi, np.pi, (BATCH, 2, SAMPLES)).astype(np.float32)
    density = rng.uniform(0.5, 2.0, (BATCH, SAMPLES)).astype(np.float32)
    times = np.sort(rng.uniform(0.0, READOUT, (BATCH, SAMPLES)), axis=1).astype(np.float32)
    field = rng.uniform(-half_range_hz, half_range_hz, (BATCH, *SHAPE)).astype(np.float32)
    image = complex_noise((BATCH, *SHAPE), seed + 1)
    samples = complex_noise((BATCH, COILS, SAMPLES) if multicoil else (BATCH, SAMPLES), seed + 2)
    smaps = complex_noise((BATCH, COILS, *SHAPE), seed + 3) if multicoil else None
    return image, samples, traj, density, smaps, field, times


def inner(a, b):
    return np.vdot(np.asarray(a, np.complex128), np.asarray(b, np.complex128))


def exact_forward(image, traj, field, times, smaps=None):
    """The exact sum, example by example (coil images with maps)."""
    coil_images = image[:, None] * smaps if smaps is not None else image
    return np.stack([np_off_resonance_sum(coil_images[b], traj[b], field[b], times[b]) for b in range(len(image))])


def relative(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


# --------------------------------------------------------------------------------------------------
# The operator
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multicoil", [False, True])
@pytest.mark.parametrize("weighting", ["uniform", "histogram"])
def test_adjoint_dot_product(multicoil, weighting):
    image, samples, traj, density, smaps, field, times = problem(multicoil)
    encoding = OffResonanceEncoding(traj, field, times, density=density, smaps=smaps, n_segments=7, weighting=weighting)
    forward = encoding.forward(image).numpy()
    lhs = inner(forward, samples)
    assert abs(lhs - inner(image, encoding.adjoint(samples, compensate=False))) <= 1e-5 * abs(lhs)
    weights = density[:, None] if multicoil else density
    lhs = inner(forward, weights * samples)  # A^H D: the adjoint for the inner product <u, D v>
    assert abs(lhs - inner(image, encoding.adjoint(samples))) <= 1e-5 * abs(lhs)


def test_coil_adjoint_is_the_adjoint_of_each_coils_encoding():
    image, samples, traj, density, smaps, field, times = problem(True)
    multi = OffResonanceEncoding(traj, field, times, density=density, smaps=smaps, n_segments=7)
    single = OffResonanceEncoding(traj, field, times, density=density, n_segments=7)
    coil_images = multi.coil_adjoint(samples).numpy()
    expected = np.stack([single.adjoint(samples[:, c]).numpy() for c in range(COILS)], axis=1)
    np.testing.assert_allclose(coil_images, expected, atol=1e-4 * np.abs(expected).max())
    combined = np.sum(np.conj(smaps) * coil_images, axis=1)
    np.testing.assert_allclose(multi.adjoint(samples).numpy(), combined, atol=1e-4 * np.abs(combined).max())


@pytest.mark.slow
@pytest.mark.parametrize("half_range_hz", [25.0, 100.0, 300.0])
def test_matches_the_exact_sum_to_the_stated_tolerance(half_range_hz):
    """With the segments `segments_for_accuracy` gives for 1e-3, the fit is within 1e-3 at every pixel and the encoding too."""
    image, _, traj, _, smaps, field, times = problem(True, half_range_hz, seed=5)
    time_bandwidth = float(np.max([np.ptp(f) * np.ptp(t) for f, t in zip(field, times)]))
    n_segments = segments_for_accuracy(time_bandwidth, TOL)
    print(f"+-{half_range_hz} Hz over {READOUT * 1e3} ms: W T = {time_bandwidth:.2f}, {n_segments} segments")
    expected = exact_forward(image, traj, field, times, smaps)
    for weighting in ("uniform", "histogram"):
        encoding = OffResonanceEncoding(traj, field, times, smaps=smaps, n_segments=n_segments, eps=1e-6,
                                        weighting=weighting)
        error = relative(encoding.forward(image).numpy(), expected)
        print(f"  {weighting}: relative error {error:.2e}")
        assert error <= TOL
        if weighting == "uniform":  # the per-pixel bound
            for b in range(BATCH):
                fit = interpolation_error(field[b], times[b], encoding.coefficients.numpy()[b],
                                          encoding.segment_times.numpy()[b])
                assert fit <= TOL
    plain = NonCartesianEncoding(traj, SHAPE, smaps=smaps, eps=1e-6).forward(image).numpy()
    assert relative(plain, expected) > 10 * TOL  # the off-resonance is not negligible


def test_fewer_segments_are_less_accurate():
    image, _, traj, _, _, field, times = problem(False, 150.0, seed=2)
    expected = exact_forward(image, traj, field, times)
    errors = [relative(OffResonanceEncoding(traj, field, times, n_segments=n, eps=1e-6).forward(image).numpy(), expected)
              for n in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_zero_field_map_is_the_plain_encoding():
    image, samples, traj, density, smaps, field, times = problem(True)
    b0 = OffResonanceEncoding(traj, np.zeros_like(field), times, density=density, smaps=smaps, n_segments=6)
    plain = NonCartesianEncoding(traj, SHAPE, density, smaps)
    for ours, theirs in [
        (b0.forward(image), plain.forward(image)),
        (b0.adjoint(samples), plain.adjoint(samples)),
        (b0.coil_adjoint(samples, compensate=False), plain.coil_adjoint(samples, compensate=False)),
        (b0.compensate(samples), plain.compensate(samples)),
    ]:
        theirs = theirs.numpy()
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-5 * np.abs(theirs).max())


def test_constant_field_map_is_a_phase_on_the_samples():
    image, _, traj, _, _, field, times = problem(False)
    offset = 37.5
    b0 = OffResonanceEncoding(traj, np.full_like(field, offset), times, n_segments=4).forward(image).numpy()
    expected = NonCartesianEncoding(traj, SHAPE).forward(image).numpy() * np.exp(-2j * np.pi * offset * times)
    np.testing.assert_allclose(b0, expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.slow
def test_shared_trajectory_and_times_match_batched_ones():
    image, samples, traj, density, smaps, field, times = problem(True)
    shared = OffResonanceEncoding(traj[0], field, times[0], density=density[0], smaps=smaps, n_segments=5)
    batched = OffResonanceEncoding(np.stack([traj[0]] * BATCH), field, np.stack([times[0]] * BATCH),
                                   density=np.stack([density[0]] * BATCH), smaps=smaps, n_segments=5)
    np.testing.assert_allclose(shared.forward(image).numpy(), batched.forward(image).numpy(), atol=1e-4)
    np.testing.assert_allclose(shared.adjoint(samples).numpy(), batched.adjoint(samples).numpy(), atol=1e-4)


def test_gradients_are_the_adjoint():
    image, samples, traj, density, smaps, field, times = problem(True)
    encoding = OffResonanceEncoding(traj, field, times, density=density, smaps=smaps, n_segments=6)
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.abs(encoding.forward(x) - samples) ** 2)
    gradient = tape.gradient(loss, x).numpy()
    expected = 2 * encoding.adjoint(encoding.forward(image) - samples, compensate=False).numpy()
    np.testing.assert_allclose(gradient, expected, atol=1e-4 * np.abs(expected).max())
    y = tf.constant(samples)
    with tf.GradientTape() as tape:
        tape.watch(y)
        loss = tf.reduce_sum(tf.abs(encoding.adjoint(y, compensate=False)) ** 2)
    expected = 2 * encoding.forward(encoding.adjoint(samples, compensate=False)).numpy()
    np.testing.assert_allclose(tape.gradient(loss, y).numpy(), expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_inside_tf_function_with_unknown_batch_and_samples():
    image, samples, traj, density, smaps, field, times = problem(True)
    signature = [
        tf.TensorSpec([None, *SHAPE], tf.complex64),
        tf.TensorSpec([None, 2, None]),
        tf.TensorSpec([None, None]),
        tf.TensorSpec([None, None, *SHAPE], tf.complex64),
        tf.TensorSpec([None, *SHAPE]),
        tf.TensorSpec([None, None]),
    ]

    @tf.function(input_signature=signature)
    def normal(x, trajectory, weights, maps, field_map, readout_times):
        encoding = OffResonanceEncoding(trajectory, field_map, readout_times, density=weights, smaps=maps, n_segments=5)
        return encoding.adjoint(encoding.forward(x))

    eager = OffResonanceEncoding(traj, field, times, density=density, smaps=smaps, n_segments=5)
    expected = eager.adjoint(eager.forward(image)).numpy()
    result = normal(image, traj, density, smaps, field, times).numpy()
    np.testing.assert_allclose(result, expected, atol=1e-5 * np.abs(expected).max())


def test_bad_inputs_are_reported():
    image, samples, traj, density, smaps, field, times = problem(False)
    with pytest.raises(DataError, match="field_map must be"):
        OffResonanceEncoding(traj, field[:, :, :5], times, image_shape=SHAPE)
    with pytest.raises(DataError, match="readout_times must be"):
        OffResonanceEncoding(traj, field, times[:, :10])
    with pytest.raises(ConfigError, match="n_segments"):
        OffResonanceEncoding(traj, field, times, n_segments=0)
    with pytest.raises(ConfigError, match="weighting"):
        OffResonanceEncoding(traj, field, times, weighting="cubic")
    with pytest.raises(ConfigError, match="tol"):
        segments_for_accuracy(1.0, tol=2.0)
    with pytest.raises(DataError, match="exact off-resonance sum"):
        np_off_resonance_sum(image[0], traj[0], field[0], times[0, :5])


# --------------------------------------------------------------------------------------------------
# The fit and the exact reference
# --------------------------------------------------------------------------------------------------


def test_segments_for_accuracy_is_the_fewest_within_tolerance():
    n_segments = segments_for_accuracy(3.0, TOL)
    assert band_error(3.0, n_segments) <= TOL < band_error(3.0, n_segments - 1)
    assert segments_for_accuracy(0.0, TOL) == 1  # no field range: one segment is exact


def test_exact_reference_is_the_dense_sum():
    """np_off_resonance_sum against the sum written out as one dense matrix (and np_ndft without a field)."""
    rng = np.random.default_rng(9)
    shape, n = (6, 5), 40
    traj = rng.uniform(-np.pi, np.pi, (2, n))
    field = rng.uniform(-80, 80, shape)
    times = np.round(rng.uniform(0, 5e-3, n), 4)  # repeated times: shared modulated images
    image = complex_noise(shape, 1).astype(np.complex128)
    rows, cols = np.meshgrid(np.arange(shape[0]) - shape[0] // 2, np.arange(shape[1]) - shape[1] // 2, indexing="ij")
    phase = traj[0][:, None] * rows.ravel() + traj[1][:, None] * cols.ravel() + 2 * np.pi * times[:, None] * field.ravel()
    dense = np.exp(-1j * phase) @ image.ravel() / np.sqrt(np.prod(shape))
    np.testing.assert_allclose(np_off_resonance_sum(image, traj, field, times), dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np_off_resonance_sum(image, traj, 0 * field, times), np_ndft(image, traj), atol=1e-12)


# --------------------------------------------------------------------------------------------------
# NC-PDNet with a field map
# --------------------------------------------------------------------------------------------------

NC_SHAPE = (16, 16)
TINY = dict(n_iter=2, n_primal=2, n_filters=4, image_shape=NC_SHAPE, crop_size=(12, 12), b0_segments=4)


def spiral_example(batch=1, seed=0):
    """(inputs with a field map, the same without it, target): off-resonant spiral samples of smooth images."""
    traj = spiral_trajectory(16, n_shots=2)
    times = spiral_readout_times(traj, 2, dwell_time=20e-6)
    density = pipe_menon_density(traj, NC_SHAPE).numpy()
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(16) - 8, np.arange(16) - 8, indexing="ij")
    disc = (np.hypot(yy, xx) < 6).astype(np.float64)
    images = np.stack([disc * (1 + 0.3 * rng.standard_normal()) * np.exp(1j * rng.uniform(-1, 1)) for _ in range(batch)])
    field = np.stack([simulate_field_map(disc, seed=(seed, b), smooth_hz=30.0, bump_hz=80.0) for b in range(batch)])
    kspace = exact_forward(images, np.stack([traj] * batch), field, np.stack([times] * batch)).astype(np.complex64)
    plain = (kspace, np.stack([traj] * batch), np.stack([density] * batch))
    target = np.abs(images[:, 2:14, 2:14]).astype(np.float32)
    return plain + (field, np.stack([times] * batch)), plain, target


@pytest.mark.slow
def test_ncpdnet_with_a_field_map_runs_and_differs_from_without():
    b0_inputs, plain_inputs, _ = spiral_example()
    keras.utils.set_random_seed(0)
    model = build("ncpdnet", **TINY)
    with_b0, without = model(b0_inputs).numpy(), model(plain_inputs).numpy()
    assert with_b0.shape == without.shape == (1, 12, 12) and np.isfinite(with_b0).all()
    assert np.abs(with_b0 - without).max() > 1e-3 * np.abs(without).max()
    adjoint_b0 = build("nc-adjoint", image_shape=NC_SHAPE, crop_size=(12, 12), b0_segments=4)
    assert adjoint_b0(b0_inputs).shape == (1, 12, 12)


@pytest.mark.slow
def test_ncpdnet_with_a_field_map_round_trips(tmp_path):
    b0_inputs, _, _ = spiral_example()
    model = build("ncpdnet", **TINY)
    expected = model(b0_inputs).numpy()
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.get_config() == model.get_config() and reloaded.get_config()["b0_segments"] == 4
    np.testing.assert_array_equal(reloaded(b0_inputs).numpy(), expected)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = build("ncpdnet", **TINY)
    fresh(b0_inputs)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh(b0_inputs).numpy(), expected)
    assert "b0_segments" not in build("ncpdnet", image_shape=NC_SHAPE).get_config()  # existing configs unchanged


@pytest.mark.slow
def test_ncpdnet_with_a_field_map_overfits_one_example():
    keras.utils.set_random_seed(0)
    b0_inputs, _, target = spiral_example()
    initial, final = overfit(build("ncpdnet", **TINY), b0_inputs, target, steps=30)
    print(f"relative error {initial:.4f} -> {final:.4f}")
    assert final < 0.3 * initial


def test_model_refuses_bad_b0_settings():
    with pytest.raises(ConfigError, match="b0_segments"):
        build("ncpdnet", image_shape=NC_SHAPE, b0_segments=0)
    b0_inputs, _, _ = spiral_example()
    with pytest.raises(DataError, match="field_map must be"):
        build("ncpdnet", **TINY)(b0_inputs[:3] + (b0_inputs[3][:, :8], b0_inputs[4]))
