"""Tests of RAdam: a NumPy reference of the paper's algorithm, schedule, weight decay, save/load,
model.fit and MirroredStrategy (2 logical CPUs, in a subprocess)."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.training.optimizers import RAdam


def radam_reference(
    w0,
    grads,
    lr=1e-3,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    weight_decay=0.0,
    amsgrad=False,
    sma_threshold=5.0,
    total_steps=0,
    warmup_proportion=0.1,
    min_lr=0.0,
):
    """RAdam in float64 from Liu et al. 2020, Algorithm 2 (with tensorflow-addons' epsilon,
    threshold, AMSGrad, decoupled weight decay and warmup options).

    Returns the weights after each step and whether each step used the rectified adaptive step.
    """
    w = np.array(w0, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    v_max = np.zeros_like(w)
    rho_inf = 2 / (1 - beta_2) - 1
    trajectory, rectified = [], []
    for t, g in enumerate(grads, start=1):
        if total_steps > 0:
            warmup = total_steps * warmup_proportion
            if t <= warmup:
                lr_t = lr * t / warmup
            else:
                decay = max(total_steps - warmup, 1)
                lr_t = lr + (min_lr - lr) * min(t - warmup, decay) / decay
        else:
            lr_t = lr
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat = m / (1 - beta_1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            second = v_max
        else:
            second = v
        rho_t = rho_inf - 2 * t * beta_2**t / (1 - beta_2**t)
        if rho_t >= sma_threshold:
            r_t = np.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            step = r_t * m_hat / (np.sqrt(second / (1 - beta_2**t)) + epsilon)
        else:
            step = m_hat
        w = w - lr_t * (step + weight_decay * w)
        trajectory.append(w.copy())
        rectified.append(rho_t >= sma_threshold)
    return trajectory, rectified


def run_radam(optimizer, w0, grads):
    """Apply ``optimizer`` eagerly to one variable with ``grads``; the weights after each step."""
    variable = keras.Variable(np.asarray(w0, np.float32))
    trajectory = []
    for g in grads:
        optimizer.apply([tf.constant(g, tf.float32)], [variable])
        trajectory.append(np.array(variable.numpy(), np.float64))
    return trajectory


@pytest.fixture
def problem():
    """Initial weights (3, 4) and 12 random gradients (beta_2 = 0.999 switches branch at step 6)."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) * (1 + 0.5 * t) for t in range(12)]
    return w0, grads


def test_matches_reference_both_branches(problem):
    w0, grads = problem
    expected, rectified = radam_reference(w0, grads, lr=0.01)
    # early steps use the momentum, later ones the rectified adaptive step
    assert rectified[:5] == [False] * 5 and all(rectified[5:])
    got = run_radam(RAdam(learning_rate=0.01), w0, grads)
    for step, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5, err_msg=f"step {step + 1}")


def test_amsgrad_matches_reference(problem):
    """Gradients that collapse after 3 steps make v decrease, so its running max matters."""
    w0, grads = problem
    grads = [g if t < 3 else 1e-2 * g for t, g in enumerate(grads)]
    options = dict(lr=0.01, beta_2=0.9, amsgrad=True)
    expected, rectified = radam_reference(w0, grads, **options)
    assert any(rectified) and not all(rectified)
    plain, _ = radam_reference(w0, grads, lr=0.01, beta_2=0.9)
    assert np.max(np.abs(plain[-1] - expected[-1])) > 1e-3
    got = run_radam(RAdam(learning_rate=0.01, beta_2=0.9, amsgrad=True), w0, grads)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_threshold_and_betas(problem):
    w0, grads = problem
    options = dict(lr=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-3, sma_threshold=8.0)
    expected, rectified = radam_reference(w0, grads, **options)
    assert not all(rectified) and any(rectified)
    got = run_radam(
        RAdam(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-3, sma_threshold=8.0),
        w0,
        grads,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_warmup_then_decay_schedule():
    """A constant unit gradient on the momentum branch moves the weight by exactly lr_t."""
    lr, min_lr, total, steps = 0.1, 0.01, 10, 13
    optimizer = RAdam(
        learning_rate=lr, total_steps=total, warmup_proportion=0.3, min_lr=min_lr, sma_threshold=1e9
    )
    trajectory = run_radam(optimizer, [0.0], [[1.0]] * steps)
    deltas = -np.diff(np.concatenate([[0.0], np.ravel(trajectory)]))
    # warmup over 3 steps: lr/3, 2lr/3, lr; then linear to min_lr at step 10; then min_lr
    expected = [lr * t / 3 for t in (1, 2, 3)]
    expected += [lr + (min_lr - lr) * (t - 3) / 7 for t in range(4, 11)]
    expected += [min_lr] * (steps - total)
    np.testing.assert_allclose(deltas, expected, rtol=1e-5)


def test_schedule_and_weight_decay_match_reference(problem):
    w0, grads = problem
    options = dict(lr=0.05, weight_decay=0.1, total_steps=8, warmup_proportion=0.25, min_lr=0.001)
    expected, _ = radam_reference(w0, grads, **options)
    optimizer = RAdam(
        learning_rate=0.05, weight_decay=0.1, total_steps=8, warmup_proportion=0.25, min_lr=0.001
    )
    np.testing.assert_allclose(run_radam(optimizer, w0, grads), expected, rtol=1e-5, atol=1e-5)


def test_weight_decay_is_decoupled_and_excludable():
    """With a zero gradient, only the decay acts: w <- w (1 - lr wd) for decayed variables."""
    decayed = keras.Variable(np.ones(3, np.float32), name="kernel")
    excluded = keras.Variable(np.ones(3, np.float32), name="bias")
    optimizer = RAdam(learning_rate=0.1, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    for _ in range(3):
        optimizer.apply([tf.zeros(3), tf.zeros(3)], [decayed, excluded])
    np.testing.assert_allclose(decayed.numpy(), (1 - 0.1 * 0.5) ** 3, rtol=1e-6)
    np.testing.assert_array_equal(excluded.numpy(), 1.0)


def test_minimises_a_quadratic():
    target = tf.constant([3.0, -2.0, 0.5])
    scales = tf.constant([1.0, 10.0, 0.1])
    x = keras.Variable(tf.zeros(3))
    optimizer = RAdam(learning_rate=0.1)

    @tf.function
    def train(steps):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(scales * tf.square(x - target))
            optimizer.apply(tape.gradient(loss, [x]), [x])
        return tf.reduce_sum(scales * tf.square(x - target))

    assert float(train(tf.constant(500))) < 1e-4
    np.testing.assert_allclose(x.numpy(), target.numpy(), atol=1e-2)


def test_config_round_trip():
    optimizer = RAdam(
        learning_rate=0.003,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-6,
        weight_decay=1e-4,
        amsgrad=True,
        sma_threshold=4.0,
        total_steps=100,
        warmup_proportion=0.2,
        min_lr=1e-5,
        clipnorm=1.0,
    )
    config = optimizer.get_config()
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, RAdam)
    assert restored.get_config() == config
    assert config["sma_threshold"] == 4.0 and config["total_steps"] == 100 and config["amsgrad"]


@pytest.mark.parametrize(
    "options",
    [
        {"beta_1": 1.0},
        {"beta_2": -0.1},
        {"epsilon": -1.0},
        {"weight_decay": -0.1},
        {"total_steps": 2.5},
        {"warmup_proportion": 1.5},
        {"min_lr": -1.0},
    ],
)
def test_invalid_options(options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        RAdam(**options)


def _tiny_model():
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)]
    return keras.Sequential(layers)


@pytest.mark.slow
def test_fit_save_load_continues_identically(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32))[:, None]
    model = _tiny_model()
    optimizer = RAdam(learning_rate=0.01, weight_decay=1e-3, total_steps=20)
    model.compile(optimizer=optimizer, loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, RAdam)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 8
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    model.train_on_batch(x[:8], y[:8])
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    import keras

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
    except RuntimeError as error:  # devices already initialised
        print(json.dumps({"skip": str(error)}))
        raise SystemExit(0)

    from fastmri_recon.training.optimizers import RAdam

    def make_model():
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)]
        )

    def make_optimizer():
        return RAdam(learning_rate=0.01, weight_decay=1e-3, total_steps=10, amsgrad=True)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32))[:, None]
    keras.utils.set_random_seed(0)
    reference = make_model()
    initial = reference.get_weights()
    reference.compile(optimizer=make_optimizer(), loss="mse")
    reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        fitted = make_model()
        fitted.set_weights(initial)
        fitted.compile(optimizer=make_optimizer(), loss="mse")
    fitted.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    with strategy.scope():
        looped = make_model()
        looped.set_weights(initial)
        optimizer = make_optimizer()
        optimizer.build(looped.trainable_variables)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(2)
    dataset = strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def train_step(xb, yb):
        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                per_example = tf.reduce_mean(tf.square(looped(xb) - yb), axis=-1)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=8)
            grads = tape.gradient(loss, looped.trainable_variables)
            optimizer.apply(grads, looped.trainable_variables)
        strategy.run(replica_step, args=(xb, yb))

    for xb, yb in dataset:
        train_step(xb, yb)

    def max_diff(model):
        return max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(model.get_weights(), reference.get_weights())
        )

    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "fit": max_diff(fitted),
        "loop": max_diff(looped),
        "moved": float(
            max(np.max(np.abs(a - b)) for a, b in zip(initial, reference.get_weights()))
        ),
        "iterations": [int(fitted.optimizer.iterations.numpy()), int(optimizer.iterations.numpy())],
    }))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_two_cpus():
    """fit and a custom strategy.run loop on 2 replicas give the single-device weights."""
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"could not create 2 logical CPUs: {report['skip']}")
    assert report["replicas"] == 2
    assert report["iterations"] == [8, 8]
    assert report["moved"] > 1e-2
    assert report["fit"] < 1e-5
    assert report["loop"] < 1e-5
