"""The DEQ layer: fixed point, gradients of every backward mode against dense references, OPA,
fallback reporting, memory (no taped solver iterations), Keras models and serialisation."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.implicit.deq import DEQ
from fastmri_recon.implicit.solvers import fixed_point

BATCH, DIM = 3, 5


@keras.saving.register_keras_serializable(package="tests")
class TanhCell(keras.layers.Layer):
    """f(z, x) = tanh(z W + x), W initialised with spectral norm ``scale`` (a contraction)."""

    def __init__(self, units=DIM, scale=0.8, linear=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale, self.linear = units, scale, linear

    def build(self, input_shape=None):
        init = keras.initializers.Orthogonal(self.scale, seed=0)
        self.w = self.add_weight(shape=(self.units, self.units), initializer=init, name="w")

    def call(self, z, x):
        pre = tf.matmul(z, self.w) + x
        return pre if self.linear else tf.tanh(pre)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale, "linear": self.linear}


def setup(backward="implicit", linear=False, seed=0, **options):
    rng = np.random.default_rng(seed)
    cell = TanhCell(linear=linear, dtype="float64")
    options = {"max_iter": 100, "tol": 1e-12, "backward_tol": 1e-12, "backward_max_iter": 100, **options}
    layer = DEQ(cell, backward=backward, dtype="float64", **options)
    x = tf.constant(rng.standard_normal((BATCH, DIM)))
    c = tf.constant(rng.standard_normal((BATCH, DIM)))
    return cell, layer, x, c


def gradients(layer, cell, x, c, **call):
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = layer(x, **call)
        loss = tf.reduce_sum(z * c)
    grad_w, grad_x = tape.gradient(loss, [cell.w, x])
    return z, grad_w.numpy(), grad_x.numpy()


def exact_gradients(cell, z, x, c):
    """dL/dW, dL/dx of L = <z*, c> by the implicit function theorem with dense Jacobians."""
    w, z, x, c = cell.w.numpy(), z.numpy(), x.numpy(), c.numpy()
    grad_w, grad_x = np.zeros_like(w), np.zeros_like(x)
    for b in range(len(z)):
        pre = z[b] @ w + x[b]
        slope = np.ones_like(pre) if cell.linear else 1 - np.tanh(pre) ** 2
        jacobian = slope[:, None] * w.T  # df/dz
        adjoint = np.linalg.solve((np.eye(len(pre)) - jacobian).T, c[b])
        grad_x[b] = slope * adjoint
        grad_w += np.outer(z[b], slope * adjoint)
    return grad_w, grad_x


def relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.slow
def test_forward_is_the_fixed_point():
    cell, layer, x, _ = setup()
    z = layer(x).numpy()
    reference = np.zeros_like(z)
    for _ in range(500):
        reference = cell(tf.constant(reference), x).numpy()
    np.testing.assert_allclose(z, reference, atol=1e-10)
    stats = layer.solver_stats()
    assert stats["forward_converged"] == 1.0 and 0 < stats["forward_steps"] < 30


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["broyden", "fixed-point"])
def test_implicit_matches_the_dense_ift_gradient(solver):
    cell, layer, x, c = setup("implicit", backward_solver=solver, backward_max_iter=300)
    z, grad_w, grad_x = gradients(layer, cell, x, c)
    exact_w, exact_x = exact_gradients(cell, z, x, c)
    assert relative(grad_w, exact_w) < 1e-4 and relative(grad_x, exact_x) < 1e-4


@pytest.mark.slow
def test_implicit_matches_finite_differences():
    cell, layer, x, c = setup("implicit")
    _, _, grad_x = gradients(layer, cell, x, c)
    direction = np.random.default_rng(5).standard_normal(x.shape)
    eps = 1e-6
    plus = tf.reduce_sum(layer(x + eps * direction) * c)
    minus = tf.reduce_sum(layer(x - eps * direction) * c)
    finite = float(plus - minus) / (2 * eps)
    assert abs(finite - np.sum(grad_x * direction)) < 1e-6 * max(1.0, abs(finite))


@pytest.mark.slow
def test_shine_refine_and_opa_approach_the_exact_gradient():
    """On a linear f, OPA makes SHINE exact; refine improves on plain SHINE (nonlinear f)."""
    cell, layer, x, c = setup("shine", linear=True, opa_every=1)
    z, grad_w, grad_x = gradients(layer, cell, x, c, outer_gradient_fn=lambda z: c)
    exact_w, exact_x = exact_gradients(cell, z, x, c)
    assert relative(grad_w, exact_w) < 1e-4 and relative(grad_x, exact_x) < 1e-4
    errors = {}
    for mode in ("shine", "shine-refine", "jacobian-free"):
        cell, layer, x, c = setup(mode, refine_iter=5)
        z, grad_w, _ = gradients(layer, cell, x, c)
        errors[mode] = relative(grad_w, exact_gradients(cell, z, x, c)[0])
    assert errors["shine-refine"] < 1e-3 < errors["shine"] < errors["jacobian-free"]


@pytest.mark.slow
def test_jacobian_free_uses_the_incoming_gradient():
    cell, layer, x, c = setup("jacobian-free")
    z, _, grad_x = gradients(layer, cell, x, c)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = cell(z, x)
    np.testing.assert_allclose(grad_x, tape.gradient(out, x, output_gradients=c).numpy(), rtol=1e-12)


@pytest.mark.slow
def test_fallback_is_per_example_and_reported():
    grads = {}
    for mode, threshold in (("shine-fallback", 0.0), ("jacobian-free", 2.0), ("shine-fallback", 1e9), ("shine", 2.0)):
        cell, layer, x, c = setup(mode, fallback_threshold=threshold)
        grads[mode, threshold] = gradients(layer, cell, x, c)[2]
        if mode == "shine-fallback":
            assert layer.fallback_rate == (1.0 if threshold == 0.0 else 0.0)
    np.testing.assert_allclose(grads["shine-fallback", 0.0], grads["jacobian-free", 2.0])
    np.testing.assert_allclose(grads["shine-fallback", 1e9], grads["shine", 2.0])
    cell, layer, x, c = setup("shine-fallback", fallback_threshold=1.0)
    gradients(layer, cell, x, c)
    rate = layer.solver_stats()["fallback_rate"]  # per example: a multiple of 1 / BATCH, here neither 0 nor 1
    assert 0 < rate < 1 and min(abs(rate - k / BATCH) for k in range(BATCH + 1)) < 1e-6


@pytest.mark.slow
def test_no_solver_iteration_is_taped():
    """The gradient graph of a DEQ holds no while-loop accumulators, unlike differentiating the solver."""
    cell, layer, x, c = setup("implicit", solver="fixed-point", backward_solver="fixed-point")

    def op_counts(function):
        graph = function.get_concrete_function().graph.as_graph_def()
        nodes = list(graph.node) + [node for f in graph.library.function for node in f.node_def]
        return collections.Counter(node.op for node in nodes)

    @tf.function
    def deq_gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) * c)
        return tape.gradient(loss, cell.w)

    @tf.function
    def unrolled_gradient():
        with tf.GradientTape() as tape:
            z = fixed_point(lambda z: z - cell(z, x), tf.zeros_like(x), max_iter=100, tol=1e-12).z
            loss = tf.reduce_sum(z * c)
        return tape.gradient(loss, cell.w)

    assert op_counts(deq_gradient)["TensorListPushBack"] == 0
    assert op_counts(unrolled_gradient)["TensorListPushBack"] > 0
    np.testing.assert_allclose(deq_gradient().numpy(), unrolled_gradient().numpy(), rtol=1e-8)


@pytest.mark.slow
def test_complex_states_get_the_implicit_gradient():
    """f(z) = a W z + x on complex z: dL/da of L = sum |z*|^2 against finite differences."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    w = tf.constant(0.6 * w / np.linalg.norm(w, 2))
    x = tf.constant(rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4)))
    scale = tf.Variable(1.0, dtype=tf.float64)

    def f(z, x):
        return tf.complex(scale, tf.zeros((), tf.float64)) * tf.linalg.matvec(w, z) + x

    layer = DEQ(f, backward="implicit", max_iter=200, tol=1e-13, backward_tol=1e-13, dtype="float64")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.abs(layer(x, z0=tf.zeros_like(x))) ** 2)
    grad = float(tape.gradient(loss, scale))
    values = []
    for delta in (1e-6, -1e-6):
        scale.assign(1.0 + delta)
        values.append(float(tf.reduce_sum(tf.abs(layer(x, z0=tf.zeros_like(x))) ** 2)))
    assert abs(grad - (values[0] - values[1]) / 2e-6) < 1e-5 * abs(grad)


@pytest.mark.slow
def test_keras_model_tf_function_and_serialisation(tmp_path):
    inputs = keras.Input((DIM,))
    outputs = keras.layers.Dense(2)(DEQ(TanhCell(), backward="shine-fallback", max_iter=20)(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((BATCH, DIM)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(x, np.zeros((BATCH, 2)), verbose=0)
    model.fit(x, np.zeros((BATCH, 2), np.float32), epochs=20, verbose=0)
    assert model.evaluate(x, np.zeros((BATCH, 2)), verbose=0) < before
    expected = model(x).numpy()
    model.save(tmp_path / "deq.keras")
    reloaded = keras.models.load_model(tmp_path / "deq.keras")
    np.testing.assert_array_equal(reloaded(x).numpy(), expected)
    config = model.layers[1].get_config()
    assert config["backward"] == "shine-fallback" and config["function"]["class_name"] == "TanhCell"


def test_bad_configurations_raise():
    with pytest.raises(ConfigError, match="broyden"):
        DEQ(TanhCell(), solver="anderson", backward="shine")
    with pytest.raises(ConfigError, match="backward mode"):
        DEQ(TanhCell(), backward="exact")
    with pytest.raises(ConfigError, match="outer_gradient_fn"):
        DEQ(TanhCell(), backward="shine", opa_every=2)(tf.zeros((1, DIM)))
    with pytest.raises(ConfigError, match="z0"):
        DEQ(TanhCell())((tf.zeros((1, DIM)), tf.zeros((1, DIM))))
