"""The reconstruction networks on tiny shapes: interface, gradients, saving, training, registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import overfit, relative_error

from fastmri_recon.errors import DataError
from fastmri_recon.models.registry import ENTRIES, build, get_entry
from fastmri_recon.models.varnet import E2EVarNet
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.encoding import adjoint_op
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

BATCH, COILS, HEIGHT, WIDTH = 2, 3, 32, 16
CROP = (16, 8)
TINY_MWCNN = dict(filters=(4, 8), n_convs=1, first_filters=4, n_first_convs=1)
TINY_XPDNET = dict(n_iter=2, n_primal=2, image_net_params=TINY_MWCNN)
# test case -> (registry name, tiny configuration)
CASES = {
    "unet": ("unet", dict(filters=(4, 8, 8), n_convs=1)),
    "unet-benchmark": ("unet-benchmark", dict(filters=(4, 8, 8), n_convs=1)),
    "cascade-net": ("cascade-net", dict(n_cascades=2, n_convs=2, n_filters=4)),
    "kiki-net": ("kiki-net", dict(n_iter=2, n_convs=2, n_filters=4)),
    "kiki-net-benchmark": ("kiki-net-benchmark", dict(n_iter=2, n_convs=2, n_filters=4)),
    "pdnet": ("pdnet", dict(n_iter=2, n_primal=2, n_dual=2, n_filters=4)),
    "pdnet-benchmark": ("pdnet-benchmark", dict(n_iter=2, n_primal=2, n_dual=2, n_filters=4)),
    "xpdnet-mwcnn": ("xpdnet", TINY_XPDNET),
    "xpdnet-didn": ("xpdnet-didn", {**TINY_XPDNET, "image_net_params": dict(filters=4, n_dubs=1, n_scales=2)}),
    "xpdnet-unet": ("xpdnet-unet", {**TINY_XPDNET, "image_net_params": dict(filters=(4, 8), n_convs=1)}),
    "xpdnet-kspace-refine": (
        "xpdnet",
        {**TINY_XPDNET, "primal_only": False, "refine_smaps": True, "kspace_net_params": dict(n_convs=1, n_filters=4)},
    ),
    "xpdnet-challenge": (
        "xpdnet-challenge",
        {
            **TINY_XPDNET,
            "smaps_refiner_params": dict(
                filters=(2, 4), n_convs=1, activation="lrelu", penultimate_channels=2, penultimate_activation="lrelu"
            ),
        },
    ),
    "e2e-varnet": ("e2e-varnet", dict(n_cascades=2, chans=4, pools=2, sens_chans=2, sens_pools=1)),
    "deq-xpdnet": ("deq-xpdnet", dict(n_primal=2, image_net_params=TINY_MWCNN, max_iter=4, backward_max_iter=4)),
}
USES_DC = ["cascade-net", "kiki-net"]


def tiny_model(case, **overrides):
    name, config = CASES[case]
    return build(name, **{"crop_size": CROP, **config, **overrides})


def multicoil_only(case):
    return get_entry(CASES[case][0]).load_class().multicoil_only


def idle_weights(model, multicoil):
    """Paths of the weights that get no (or a zero) gradient by construction."""
    idle = set()
    if not multicoil and getattr(model, "refine_smaps", False):  # no maps to refine
        idle |= {weight.path for weight in model.smaps_refiner.weights}
    if isinstance(model, E2EVarNet):  # k = y at the first cascade: its M (k - y) term is 0
        idle.add(model.dcs[0].weight.path)
    return idle


ACQUISITIONS = [(case, mc) for case in CASES for mc in (False, True) if mc or not multicoil_only(case)]


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


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_forward_shape_and_dtype(case, multicoil):
    inputs, _ = example(multicoil)
    out = tiny_model(case)(inputs)
    assert out.shape == (BATCH, *CROP) and out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all()
    assert tiny_model(case, crop_size=None)(inputs).shape == (BATCH, HEIGHT, WIDTH)


@pytest.mark.parametrize("case", [case for case in CASES if multicoil_only(case)])
def test_multicoil_only_refuses_singlecoil(case):
    inputs, _ = example(False)
    with pytest.raises(DataError, match="multi-coil only"):
        tiny_model(case)(inputs)


@pytest.mark.parametrize("case", CASES)
def test_multicoil_without_smaps(case):
    (kspace, mask, _), _ = example(True)
    model = tiny_model(case)
    if model.needs_smaps:
        with pytest.raises(DataError, match="sensitivity maps"):
            model((kspace, mask))
    else:
        assert model((kspace, mask)).shape == (BATCH, *CROP)


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_gradients_reach_every_weight(case, multicoil):
    config = {"data_consistency": "learned"} if case in USES_DC else {}
    model = tiny_model(case, **config)
    inputs, target = example(multicoil)
    with tf.GradientTape() as tape:
        loss = relative_error(model, inputs, target)
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == len(model.weights) > 0
    idle = idle_weights(model, multicoil)
    for weight, grad in zip(model.trainable_weights, grads):
        if weight.path in idle:
            assert grad is None or not np.any(grad.numpy()), weight.path
            continue
        assert grad is not None, weight.path
        assert np.isfinite(grad.numpy()).all() and np.any(grad.numpy() != 0), weight.path


@pytest.mark.parametrize("case", CASES)
def test_keras_and_weights_round_trip(case, tmp_path):
    inputs, _ = example(True)
    model = tiny_model(case)
    expected = model(inputs).numpy()
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded(inputs).numpy(), expected)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = tiny_model(case)
    fresh(inputs)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh(inputs).numpy(), expected)


@pytest.mark.parametrize("case", CASES)
def test_overfits_one_example(case):
    keras.utils.set_random_seed(0)
    model = tiny_model(case)
    multicoil = multicoil_only(case) or model.get_config().get("refine_smaps", False)  # maps networks train too
    inputs, target = example(multicoil, batch=1)
    initial, final = overfit(model, inputs, target)
    print(f"{case}: relative error {initial:.4f} -> {final:.4f}")
    assert final < 0.3 * initial


@pytest.mark.parametrize("name", USES_DC)
@pytest.mark.parametrize("multicoil", [False, True])
def test_fully_sampled_replacement_returns_the_data(name, multicoil):
    inputs, _ = example(multicoil)
    mask = np.ones_like(inputs[1])
    inputs = (inputs[0], mask, *inputs[2:])
    expected = np.abs(adjoint_op(inputs[0], smaps=inputs[2] if multicoil else None).numpy())
    np.testing.assert_allclose(tiny_model(name, crop_size=None)(inputs).numpy(), expected, atol=1e-5)


def test_registry_builds_every_model():
    names = {entry.name for entry in ENTRIES.values() if entry.kind == "model" and entry.acquisition == "cartesian"}
    assert names == {name for name, _ in CASES.values()}
    for case, (name, config) in CASES.items():
        inputs, _ = example(multicoil_only(case))
        model = build(name, crop_size=CROP, **config)
        assert model.crop_size == CROP and model(inputs).shape == (BATCH, *CROP)
    assert build("xpdnet-didn").image_net == "didn" and build("xpdnet-didn", image_net="unet").image_net == "unet"


@pytest.mark.parametrize("case", CASES)
def test_mixed_precision(case):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model(case)
        inputs, _ = example(True)
        out = model(inputs)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("case", CASES)
def test_unknown_shapes_in_tf_function(case):
    inputs, _ = example(True)
    model = tiny_model(case)
    signature = (
        tf.TensorSpec([None, None, None, None], tf.complex64),
        tf.TensorSpec([None, None]),
        tf.TensorSpec([None, None, None, None], tf.complex64),
    )
    function = tf.function(lambda *args: model(args), input_signature=signature)
    np.testing.assert_allclose(function(*inputs).numpy(), model(inputs).numpy(), atol=1e-5)


@pytest.mark.parametrize("multicoil", [False, True])
def test_xpdnet_starts_from_the_adjoint(multicoil):
    """With no iteration, XPDNet returns its initial image |A^H y|; each iteration has its networks."""
    inputs, _ = example(multicoil)
    smaps = inputs[2] if multicoil else None
    expected = np.abs(adjoint_op(inputs[0], inputs[1], smaps).numpy())
    out = tiny_model("xpdnet-mwcnn", n_iter=0, crop_size=None)(inputs).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    model = tiny_model("xpdnet-kspace-refine", n_iter=3)
    assert len(model.image_nets) == len(model.kspace_nets) == 3


@pytest.mark.parametrize("case, multicoil", ACQUISITIONS)
def test_phase_normalization_makes_the_output_phase_invariant(case, multicoil):
    """A global phase on the data changes a complex network's output unless phase_normalization is on."""
    inputs, _ = example(multicoil)
    rotated = (inputs[0] * np.exp(1.3j).astype(np.complex64),) + tuple(inputs[1:])
    model = tiny_model(case, phase_normalization=True)
    assert model.get_config()["phase_normalization"] is True
    np.testing.assert_allclose(model(rotated).numpy(), model(inputs).numpy(), atol=1e-4, rtol=1e-4)
    if case == "pdnet":  # a complex network with biases and ReLUs is not invariant without it
        plain = tiny_model(case)
        assert np.abs(plain(rotated).numpy() - plain(inputs).numpy()).max() > 1e-3


def test_pdnet_starts_from_the_adjoint_and_the_data():
    """With no iteration, PD-net returns the zero-filled image |A^H y| (its primal buffer's start)."""
    (kspace, mask), _ = example(False)
    expected = np.abs(adjoint_op(kspace, mask).numpy())
    out = tiny_model("pdnet", n_iter=0, crop_size=None)((kspace, mask)).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_varnet_estimates_normalized_maps():
    (kspace, mask, _), _ = example(True)
    model = tiny_model("e2e-varnet")
    smaps = model.estimate_smaps(tf.constant(kspace), tf.constant(mask))
    assert smaps.shape == kspace.shape and smaps.dtype == tf.complex64
    np.testing.assert_allclose(np.sum(np.abs(smaps.numpy()) ** 2, axis=1), 1.0, rtol=1e-4)
