"""The reconstruction networks on tiny shapes: interface, gradients, saving, training, registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import DataError
from fastmri_recon.models.registry import ENTRIES, build
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.encoding import adjoint_op
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

BATCH, COILS, HEIGHT, WIDTH = 2, 3, 32, 16
CROP = (16, 8)
TINY = {
    "unet": dict(filters=(4, 8, 8), n_convs=1),
    "cascade-net": dict(n_cascades=2, n_convs=2, n_filters=4),
    "kiki-net": dict(n_iter=2, n_convs=2, n_filters=4),
    "pdnet": dict(n_iter=2, n_primal=2, n_dual=2, n_filters=4),
}
USES_DC = ["cascade-net", "kiki-net"]


def tiny_model(name, **overrides):
    return build(name, **{"crop_size": CROP, **TINY[name], **overrides})


def smooth_images(batch, seed):
    """complex64 (batch, H, W) images with low-frequency content."""
    rng = np.random.default_rng(seed)
    kspace = np.zeros((batch, HEIGHT, WIDTH), np.complex64)
    centre = (slice(None), slice(HEIGHT // 2 - 4, HEIGHT // 2 + 4), slice(WIDTH // 2 - 3, WIDTH // 2 + 3))
    kspace[centre] = rng.standard_normal(kspace[centre].shape) + 1j * rng.standard_normal(kspace[centre].shape)
    return np_ifftc(kspace).astype(np.complex64)


def example(multicoil, batch=BATCH, seed=0):
    """(inputs, target): fully-sampled k-space with a mask keeping 6 of 16 columns, and the image magnitude."""
    rng = np.random.default_rng(seed)
    image = smooth_images(batch, seed)
    mask = np.zeros((batch, WIDTH), np.float32)
    mask[:, WIDTH // 2 - 2 : WIDTH // 2 + 2] = 1
    mask[np.arange(batch), rng.integers(0, WIDTH // 2 - 2, batch)] = 1
    mask[np.arange(batch), rng.integers(WIDTH // 2 + 2, WIDTH, batch)] = 1
    target = center_crop(np.abs(image), CROP)
    if not multicoil:
        return (np_fftc(image).astype(np.complex64), mask), target
    smaps = smooth_images(batch * COILS, seed + 1).reshape(batch, COILS, HEIGHT, WIDTH) + 1.0
    smaps = (smaps / np.sqrt(np.sum(np.abs(smaps) ** 2, axis=1, keepdims=True))).astype(np.complex64)
    return (np_fftc(image[:, None] * smaps).astype(np.complex64), mask, smaps), target


def relative_error(model, inputs, target):
    return tf.reduce_sum((model(inputs) - target) ** 2) / tf.reduce_sum(target**2)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("multicoil", [False, True])
def test_forward_shape_and_dtype(name, multicoil):
    inputs, _ = example(multicoil)
    out = tiny_model(name)(inputs)
    assert out.shape == (BATCH, *CROP) and out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all()
    assert tiny_model(name, crop_size=None)(inputs).shape == (BATCH, HEIGHT, WIDTH)


@pytest.mark.parametrize("name", TINY)
def test_multicoil_without_smaps(name):
    (kspace, mask, _), _ = example(True)
    model = tiny_model(name)
    if model.needs_smaps:
        with pytest.raises(DataError, match="sensitivity maps"):
            model((kspace, mask))
    else:
        assert model((kspace, mask)).shape == (BATCH, *CROP)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("multicoil", [False, True])
def test_gradients_reach_every_weight(name, multicoil):
    config = {"data_consistency": "learned"} if name in USES_DC else {}
    model = tiny_model(name, **config)
    inputs, target = example(multicoil)
    with tf.GradientTape() as tape:
        loss = relative_error(model, inputs, target)
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == len(model.weights) > 0
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, weight.path
        assert np.isfinite(grad.numpy()).all() and np.any(grad.numpy() != 0), weight.path


@pytest.mark.parametrize("name", TINY)
def test_keras_and_weights_round_trip(name, tmp_path):
    inputs, _ = example(True)
    model = tiny_model(name)
    expected = model(inputs).numpy()
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded(inputs).numpy(), expected)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = tiny_model(name)
    fresh(inputs)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh(inputs).numpy(), expected)


@pytest.mark.parametrize("name", TINY)
def test_overfits_one_example(name):
    keras.utils.set_random_seed(0)
    model = tiny_model(name)
    inputs, target = example(False, batch=1)
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = relative_error(model, inputs, target)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    initial = float(relative_error(model, inputs, target))
    for _ in range(50):
        step()
    assert float(relative_error(model, inputs, target)) < 0.3 * initial


@pytest.mark.parametrize("name", USES_DC)
@pytest.mark.parametrize("multicoil", [False, True])
def test_fully_sampled_replacement_returns_the_data(name, multicoil):
    inputs, _ = example(multicoil)
    mask = np.ones_like(inputs[1])
    inputs = (inputs[0], mask, *inputs[2:])
    expected = np.abs(adjoint_op(inputs[0], smaps=inputs[2] if multicoil else None).numpy())
    np.testing.assert_allclose(tiny_model(name, crop_size=None)(inputs).numpy(), expected, atol=1e-5)


def test_registry_builds_every_model():
    names = {entry.name for entry in ENTRIES.values() if entry.kind == "model"}
    assert names >= set(TINY)
    inputs, _ = example(False)
    for name in TINY:
        model = build(name, crop_size=CROP, **TINY[name])
        assert model.crop_size == CROP and model(inputs).shape == (BATCH, *CROP)


@pytest.mark.parametrize("name", TINY)
def test_mixed_precision(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model(name)
        inputs, _ = example(True)
        out = model(inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name", TINY)
def test_unknown_shapes_in_tf_function(name):
    inputs, _ = example(True)
    model = tiny_model(name)
    signature = (
        tf.TensorSpec([None, None, None, None], tf.complex64),
        tf.TensorSpec([None, None]),
        tf.TensorSpec([None, None, None, None], tf.complex64),
    )
    function = tf.function(lambda *args: model(args), input_signature=signature)
    np.testing.assert_allclose(function(*inputs).numpy(), model(inputs).numpy(), atol=1e-5)
