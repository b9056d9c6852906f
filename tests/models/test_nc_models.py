"""The non-Cartesian networks and baselines on tiny shapes: interface, gradients, saving, training, registry.

The same checks as `test_models.py` (whose cases are Cartesian), for inputs
``(kspace, trajectory, density[, smaps])``: 2D single-coil, 2D multi-coil and 3D single-coil.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import overfit, relative_error

from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.trajectories import kooshball_trajectory, radial_trajectory
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.nc_base import crop_volume
from fastmri_recon.models.registry import ENTRIES, build, get_entry
from fastmri_recon.ops.encoding import nc_forward_op

BATCH, COILS = 2, 3
SHAPE_2D, SHAPE_3D = (16, 16), (8, 8, 8)
CROP_2D, CROP_3D = (12, 10), (6, 6)
TINY_NCPDNET = dict(n_iter=2, n_primal=2, n_filters=4)
# test case -> (registry name, tiny configuration)
CASES = {
    "ncpdnet": ("ncpdnet", dict(TINY_NCPDNET, image_shape=SHAPE_2D)),
    "ncpdnet-3d": ("ncpdnet-3d", dict(TINY_NCPDNET, image_shape=SHAPE_3D)),
    "ncpdnet-benchmark": ("ncpdnet-benchmark", dict(TINY_NCPDNET, image_shape=SHAPE_2D)),
    "nc-unet": ("nc-unet", dict(filters=(4, 8), n_convs=1, image_shape=SHAPE_2D)),
}
ACQUISITIONS = [
    ("ncpdnet", False),
    ("ncpdnet", True),
    ("ncpdnet-3d", False),
    ("ncpdnet-benchmark", True),
    ("nc-unet", False),
    ("nc-unet", True),
]


def is_3d(case):
    return len(CASES[case][1]["image_shape"]) == 3


def tiny_model(case, **overrides):
    name, config = CASES[case]
    return build(name, **{"crop_size": CROP_3D if is_3d(case) else CROP_2D, **config, **overrides})


def smooth_images(shape, batch, seed):
    """complex64 ``(batch, *shape)`` images with low-frequency content (a random centre of k-space)."""
    rng = np.random.default_rng(seed)
    spectrum = np.zeros((batch, *shape), np.complex64)
    centre = (slice(None),) + tuple(slice(n // 2 - 2, n // 2 + 3) for n in shape)
    spectrum[centre] = rng.standard_normal(spectrum[centre].shape) + 1j * rng.standard_normal(spectrum[centre].shape)
    axes = tuple(range(1, len(shape) + 1))
    image = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(spectrum, axes=axes), axes=axes), axes=axes)
    return (image * np.sqrt(np.prod(shape))).astype(np.complex64)


def nc_example(three_d, multicoil, batch=BATCH, seed=0):
    """(inputs, target): the NUFFT of smooth images on an undersampled trajectory, and their magnitude."""
    shape = SHAPE_3D if three_d else SHAPE_2D
    traj = kooshball_trajectory(n_spokes=40, n_samples=16) if three_d else radial_trajectory(16, n_spokes=6)
    density = pipe_menon_density(traj, shape).numpy()
    image = smooth_images(shape, batch, seed)
    crop = CROP_3D if three_d else CROP_2D
    target = crop_volume(np.abs(image), crop)
    trajs, densities = np.stack([traj] * batch), np.stack([density] * batch)
    if not multicoil:
        return (nc_forward_op(image, trajs).numpy(), trajs, densities), target
    smaps = smooth_images(shape, batch * COILS, seed + 1).reshape(batch, COILS, *shape) + 1.0
    smaps = (smaps / np.sqrt(np.sum(np.abs(smaps) ** 2, axis=1, keepdims=True))).astype(np.complex64)
    return (nc_forward_op(image, trajs, smaps).numpy(), trajs, densities, smaps), target


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_forward_shape_and_dtype(case, multicoil):
    inputs, _ = nc_example(is_3d(case), multicoil)
    out = tiny_model(case)(inputs)
    expected = (BATCH, 8, *CROP_3D) if is_3d(case) else (BATCH, *CROP_2D)
    assert out.shape == expected and out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all()
    full = tiny_model(case, crop_size=None)(inputs)
    assert full.shape == (BATCH, *(SHAPE_3D if is_3d(case) else SHAPE_2D))


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_phase_normalization_makes_the_output_phase_invariant(case, multicoil):
    inputs, _ = nc_example(is_3d(case), multicoil)
    rotated = (inputs[0] * np.exp(-2.1j).astype(np.complex64),) + tuple(inputs[1:])
    model = tiny_model(case, phase_normalization=True)
    np.testing.assert_allclose(model(rotated).numpy(), model(inputs).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_gradients_reach_every_weight(case, multicoil):
    model = tiny_model(case)
    inputs, target = nc_example(is_3d(case), multicoil)
    with tf.GradientTape() as tape:
        loss = relative_error(model, inputs, target)
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == len(model.weights) > 0
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, weight.path
        assert np.isfinite(grad.numpy()).all() and np.any(grad.numpy() != 0), weight.path


@pytest.mark.parametrize("case", [*CASES, "nc-adjoint"])
def test_keras_and_weights_round_trip(case, tmp_path):
    if case == "nc-adjoint":
        model, inputs = build("nc-adjoint", image_shape=SHAPE_2D, crop_size=CROP_2D), nc_example(False, True)[0]
    else:
        model, inputs = tiny_model(case), nc_example(is_3d(case), not is_3d(case))[0]
    expected = model(inputs).numpy()
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded(inputs).numpy(), expected)
    if case == "nc-adjoint":
        return
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = tiny_model(case)
    fresh(inputs)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh(inputs).numpy(), expected)


@pytest.mark.parametrize("case", CASES)
def test_overfits_one_example(case):
    keras.utils.set_random_seed(0)
    model = tiny_model(case)
    inputs, target = nc_example(is_3d(case), False, batch=1)
    initial, final = overfit(model, inputs, target)
    print(f"{case}: relative error {initial:.4f} -> {final:.4f}")
    assert final < 0.3 * initial


@pytest.mark.parametrize("multicoil", [False, True])
def test_density_compensated_adjoint_of_a_fully_sampled_radial_acquisition(multicoil):
    """At the Nyquist rate (pi / 2 * N spokes), |A^H D y| approximates the image within the covered disc."""
    shape = (32, 32)
    traj = radial_trajectory(32, acceleration=1)
    density = pipe_menon_density(traj, shape).numpy()
    image = smooth_images(shape, 1, seed=3)
    if multicoil:
        smaps = smooth_images(shape, COILS, seed=4)[None] + 1.0
        smaps = (smaps / np.sqrt(np.sum(np.abs(smaps) ** 2, axis=1, keepdims=True))).astype(np.complex64)
        inputs = (nc_forward_op(image, traj[None], smaps).numpy(), traj[None], density[None], smaps)
    else:
        inputs = (nc_forward_op(image, traj[None]).numpy(), traj[None], density[None])
    recon = build("nc-adjoint", image_shape=shape)(inputs).numpy()
    error = np.linalg.norm(recon - np.abs(image)) / np.linalg.norm(image)
    print(f"multicoil={multicoil}: relative error {error:.4f}")
    assert error < 0.03
    undersampled = (inputs[0][..., ::4], traj[None, :, ::4], pipe_menon_density(traj[:, ::4], shape).numpy()[None])
    if multicoil:  # without maps: the root-sum-of-squares of the coil images
        rss = build("nc-adjoint", image_shape=shape)(inputs[:3]).numpy()
        assert np.linalg.norm(rss - np.abs(image)) / np.linalg.norm(image) < 0.03
    else:  # a quarter of the samples on every spoke: aliasing
        aliased = build("nc-adjoint", image_shape=shape)(undersampled).numpy()
        assert np.linalg.norm(aliased - np.abs(image)) / np.linalg.norm(image) > 2 * error


def test_cartesian_inputs_and_missing_maps_are_refused():
    model = tiny_model("ncpdnet")
    with pytest.raises(DataError, match=r"\(kspace, trajectory, density\[, smaps\]\)"):
        model((np.zeros((1, 16, 16), np.complex64), np.ones((1, 16), np.float32)))
    (kspace, traj, density, _), _ = nc_example(False, True)
    with pytest.raises(DataError, match="sensitivity maps"):
        model((kspace, traj, density))
    with pytest.raises(DataError, match="trajectory must be"):
        tiny_model("ncpdnet-3d")((kspace[:, 0], traj, density))
    with pytest.raises(ConfigError, match="2D"):
        build("nc-unet", image_shape=SHAPE_3D)


@pytest.mark.parametrize("case", ["ncpdnet", "nc-unet"])
def test_unknown_batch_and_samples_in_tf_function(case):
    inputs, _ = nc_example(False, True)
    model = tiny_model(case)
    signature = (
        tf.TensorSpec([None, None, None], tf.complex64),
        tf.TensorSpec([None, 2, None]),
        tf.TensorSpec([None, None]),
        tf.TensorSpec([None, None, *SHAPE_2D], tf.complex64),
    )
    function = tf.function(lambda *args: model(args), input_signature=signature)
    np.testing.assert_allclose(function(*inputs).numpy(), model(inputs).numpy(), atol=1e-5)


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model("ncpdnet")
        out = model(nc_example(False, True)[0])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()
    assert model.primal_cnns[0].output_conv.compute_dtype == "float16"  # the trajectory stayed float32


def test_registry_entries_declare_their_acquisition():
    noncartesian = {name for name, entry in ENTRIES.items() if entry.acquisition == "noncartesian"}
    assert noncartesian == {"nc-adjoint", "ncpdnet", "ncpdnet-3d", "ncpdnet-benchmark", "nc-unet"}
    for entry in ENTRIES.values():
        assert entry.acquisition == entry.load_class().acquisition, entry.name
    assert get_entry("nc-adjoint").kind == "baseline" and get_entry("ncpdnet-3d").kind == "model"
    default = build("ncpdnet")
    assert (default.n_iter, default.n_primal, default.n_filters, default.ndim) == (10, 5, 32, 2)
    assert build("ncpdnet-3d").image_shape == (176, 256, 256)
