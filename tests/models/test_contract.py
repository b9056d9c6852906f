"""The contract of every registered model, for each acquisition, on tiny shapes.

Cases and data: `tiny_models` (every registry entry with a tiny configuration, Cartesian and
non-Cartesian, and a few variants). The checks: output shape, dtype and crop; input checks (multi-coil
only, maps); gradients reaching every weight; ``.keras`` and ``.weights.h5`` round trips; fitting one
example; the registry; mixed precision; unknown shapes in a ``tf.function``; phase normalisation.
Behaviour specific to a model is tested in its own file (`test_models.py`, `test_nc_models.py`, ...).
"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import overfit, relative_error
from tiny_models import (
    CASES,
    crop,
    entry,
    example,
    input_signature,
    mixed_precision,
    multicoil_only,
    output_shape,
    settings,
    tiny_model,
)

from fastmri_recon.errors import DataError
from fastmri_recon.models.registry import ENTRIES, build, get_entry
from fastmri_recon.models.varnet import E2EVarNet

MODELS = [case for case in CASES if entry(case).kind == "model"]
SETTINGS = [(case, multicoil) for case in CASES for multicoil in settings(case)]
MODEL_SETTINGS = [(case, multicoil) for case, multicoil in SETTINGS if case in MODELS]


def richest(case):
    """The setting with the most inputs: multi-coil (with maps) when the case runs multi-coil."""
    return settings(case)[-1]


def setting_id(value):
    return ("multicoil" if value else "singlecoil") if isinstance(value, bool) else None


def idle_weights(model, multicoil):
    """Paths of the weights that get no (or a zero) gradient by construction."""
    idle = set()
    if not multicoil and getattr(model, "refine_smaps", False):  # no maps to refine
        idle |= {weight.path for weight in model.smaps_refiner.weights}
    if isinstance(model, E2EVarNet):  # k = y at the first cascade: its M (k - y) term is 0
        idle.add(model.dcs[0].weight.path)
    if getattr(model, "final_data_consistency", True) is False:  # KIKI-net's last data consistency, not applied
        idle |= {weight.path for weight in model.dcs[-1].weights}
    return idle


@pytest.mark.slow
@pytest.mark.parametrize("case, multicoil", SETTINGS, ids=setting_id)
def test_forward_shape_and_dtype(case, multicoil):
    inputs, _ = example(case, multicoil)
    out = tiny_model(case)(inputs)
    assert out.shape == output_shape(case) and out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all()
    assert tiny_model(case, crop_size=None)(inputs).shape == output_shape(case, cropped=False)


@pytest.mark.parametrize("case", [case for case in CASES if multicoil_only(case)])
def test_multicoil_only_refuses_singlecoil(case):
    inputs, _ = example(case, False)
    with pytest.raises(DataError, match="multi-coil only"):
        tiny_model(case)(inputs)


@pytest.mark.slow
@pytest.mark.parametrize("case", [case for case in CASES if True in settings(case)])
def test_multicoil_without_smaps(case):
    inputs, _ = example(case, True)
    model = tiny_model(case)
    if model.needs_smaps:
        with pytest.raises(DataError, match="sensitivity maps"):
            model(inputs[:-1])
    else:
        assert model(inputs[:-1]).shape == output_shape(case)


@pytest.mark.slow
@pytest.mark.parametrize("case, multicoil", MODEL_SETTINGS, ids=setting_id)
def test_gradients_reach_every_weight(case, multicoil):
    # a learned data consistency has a weight of its own, which must get a gradient too
    learned_dc = "data_consistency" in inspect.signature(entry(case).load_class()).parameters
    model = tiny_model(case, **({"data_consistency": "learned"} if learned_dc else {}))
    inputs, target = example(case, multicoil)
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


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_keras_and_weights_round_trip(case, tmp_path):
    inputs, _ = example(case, richest(case))
    model = tiny_model(case)
    expected = model(inputs).numpy()
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded(inputs).numpy(), expected)
    if entry(case).kind == "baseline":  # no weights
        return
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = tiny_model(case)
    fresh(inputs)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh(inputs).numpy(), expected)


@pytest.mark.slow
@pytest.mark.parametrize("case", MODELS)
def test_overfits_one_example(case):
    keras.utils.set_random_seed(0)
    model = tiny_model(case)
    multicoil = multicoil_only(case) or model.get_config().get("refine_smaps", False)  # maps networks train too
    inputs, target = example(case, multicoil, batch=1)
    initial, final = overfit(model, inputs, target)
    print(f"{case}: relative error {initial:.4f} -> {final:.4f}")
    assert final < 0.3 * initial


@pytest.mark.slow
def test_registry_builds_every_model():
    names = {name for name, entry in ENTRIES.items() if entry.kind == "model"}
    assert names <= {name for name, _ in CASES.values()}  # every model has a tiny configuration
    for case, (name, config) in CASES.items():
        inputs, _ = example(case, settings(case)[0])
        model = build(name, crop_size=crop(case), **config)
        assert model.crop_size == crop(case) and model(inputs).shape == output_shape(case)
    assert build("xpdnet-didn").image_net == "didn" and build("xpdnet-didn", image_net="unet").image_net == "unet"


def test_registry_entries_declare_their_acquisition():
    noncartesian = {name for name, entry in ENTRIES.items() if entry.acquisition == "noncartesian"}
    assert noncartesian == {"nc-adjoint", "ncpdnet", "ncpdnet-3d", "ncpdnet-benchmark", "nc-unet"}
    for registered in ENTRIES.values():
        assert registered.acquisition == registered.load_class().acquisition, registered.name
    assert get_entry("nc-adjoint").kind == "baseline" and get_entry("ncpdnet-3d").kind == "model"
    default = build("ncpdnet")
    assert (default.n_iter, default.n_primal, default.n_filters, default.ndim) == (10, 5, 32, 2)
    assert build("ncpdnet-3d").image_shape == (176, 256, 256)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_mixed_precision(case):
    inputs, _ = example(case, richest(case))
    with mixed_precision():
        out = tiny_model(case)(inputs)
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_unknown_shapes_in_tf_function(case):
    keras.utils.set_random_seed(0)  # fixed weights: the DEQ's graph and eager solves agree to its solver's tolerance
    multicoil = richest(case)
    inputs, _ = example(case, multicoil)
    model = tiny_model(case)
    function = tf.function(lambda *args: model(args), input_signature=input_signature(case, multicoil))
    np.testing.assert_allclose(function(*inputs).numpy(), model(inputs).numpy(), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("case, multicoil", SETTINGS, ids=setting_id)
def test_phase_normalization_makes_the_output_phase_invariant(case, multicoil):
    """With phase_normalization, a global phase on the data leaves the output unchanged."""
    # fixed weights: the DEQ's output is its solver's fixed point, within the solver's tolerance, and for some
    # random initialisations that tolerance exceeded this test's (a CI run in which another test had drawn first)
    keras.utils.set_random_seed(0)
    inputs, _ = example(case, multicoil)
    model = tiny_model(case, phase_normalization=True)
    assert model.get_config()["phase_normalization"] is True
    expected = model(inputs).numpy()
    for phase in (1.3, -2.1):
        rotated = (inputs[0] * np.exp(1j * phase).astype(np.complex64),) + tuple(inputs[1:])
        np.testing.assert_allclose(model(rotated).numpy(), expected, atol=1e-4, rtol=1e-4)
