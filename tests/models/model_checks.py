"""Checks shared by the Cartesian and non-Cartesian model tests."""

import keras
import tensorflow as tf


def relative_error(model, inputs, target):
    """``||model(inputs) - target||^2 / ||target||^2`` as a scalar tensor."""
    return tf.reduce_sum((model(inputs) - target) ** 2) / tf.reduce_sum(target**2)


def overfit(model, inputs, target, steps=50, learning_rate=3e-3):
    """Train ``model`` on one example with Adam; return the relative error before and after."""
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = relative_error(model, inputs, target)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    initial = float(relative_error(model, inputs, target))
    for _ in range(steps):
        step()
    return initial, float(relative_error(model, inputs, target))
