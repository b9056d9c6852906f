"""Complex feature maps <-> real channels, at the boundary of the real-valued convolutions.

Complex data stays complex64 everywhere else (docs/architecture.md). A complex feature map ``(batch, H, W, C)``
becomes ``2C`` float32 channels: the ``C`` real parts, then the ``C`` imaginary parts. An image
``(batch, H, W)`` is the one-channel map ``image[..., None]``, i.e. 2 real channels.

Both directions cast to float32 explicitly, so that a network running under the ``mixed_float16``
policy (whose convolutions return float16) recombines into complex64 without error.
"""

import keras
import tensorflow as tf


def to_channels(x):
    """Split a complex feature map into real channels.

    Args:
        x: complex64 ``(..., C)``.

    Returns:
        float32 ``(..., 2C)``: real parts, then imaginary parts.
    """
    return tf.concat([tf.math.real(x), tf.math.imag(x)], axis=-1)


def from_channels(x):
    """Recombine real channels into a complex feature map (inverse of `to_channels`).

    Args:
        x: float (any precision) ``(..., 2C)``: real parts, then imaginary parts.

    Returns:
        complex64 ``(..., C)``.
    """
    real, imag = tf.split(tf.cast(x, tf.float32), 2, axis=-1)
    return tf.complex(real, imag)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ComplexToChannels(keras.layers.Layer):
    """Keras layer for `to_channels`: complex64 ``(..., C)`` -> float32 ``(..., 2C)``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.built = True

    def call(self, x):
        return to_channels(x)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ChannelsToComplex(keras.layers.Layer):
    """Keras layer for `from_channels`: float ``(..., 2C)`` -> complex64 ``(..., C)``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.built = True

    def call(self, x):
        return from_channels(x)
