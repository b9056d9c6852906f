"""Convolution blocks: the per-domain CNNs of the unrolled networks and the U-net's levels.

`ConvBlock` is ``n_convs`` 'same'-padded convolutions of ``n_filters`` channels, each followed by the
activation. `ComplexConvStack` puts a `ConvBlock` and a linear output convolution between a split of
complex feature maps into real channels (`complex.to_channels`) and their recombination: the image
CNN of Cascade-net, the K- and I-nets of KIKI-net and the primal / dual CNNs of PD-net are all
instances.
"""

import keras
import tensorflow as tf

from fastmri_recon.models.layers.complex import from_channels, to_channels


def get_activation(name):
    """The activation function called ``name``.

    Args:
        name: ``"lrelu"`` (leaky ReLU of slope 0.1, as in the benchmark's KIKI-net) or any Keras
            activation name (``"relu"``, ``"linear"``, ...).

    Returns:
        callable on tensors.
    """
    if name == "lrelu":
        return lambda x: tf.nn.leaky_relu(x, alpha=0.1)
    return keras.activations.get(name)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ConvBlock(keras.layers.Layer):
    """``n_convs`` 'same'-padded convolutions of ``n_filters`` channels, each with the activation.

    Args:
        n_convs: number of convolutions.
        n_filters: output channels of each convolution.
        kernel_size: kernel size.
        activation: activation name (see `get_activation`).

    Call args:
        x: float ``(batch, H, W, C_in)``.

    Returns:
        ``(batch, H, W, n_filters)`` in the layer's compute dtype (float32, or float16 under
        ``mixed_float16``); ``x`` itself when ``n_convs`` is 0.
    """

    def __init__(self, n_convs, n_filters, kernel_size=3, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.activation = activation
        self.convs = [
            keras.layers.Conv2D(n_filters, kernel_size, padding="same", activation=get_activation(activation))
            for _ in range(n_convs)
        ]

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        channels = input_shape[-1]
        for conv in self.convs:
            conv.build((None, None, None, channels))
            channels = self.n_filters

    def call(self, x):
        for conv in self.convs:
            x = conv(x)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ComplexConvStack(keras.layers.Layer):
    """A CNN on complex feature maps: a `ConvBlock` then a linear output convolution.

    Args:
        n_convs: number of hidden ``n_filters``-channel convolutions (each followed by the activation);
            the stack has ``n_convs + 1`` convolutions in all.
        n_filters: channels of the hidden convolutions.
        out_channels: complex output channels ``C_out``.
        kernel_size: kernel size of the hidden convolutions.
        last_kernel_size: kernel size of the output convolution.
        activation: activation name (see `get_activation`).

    Call args:
        x: complex64 ``(batch, H, W, C_in)``, or ``(batch, coils, H, W, C_in)`` for multi-coil
            k-space: the coils are then folded into the batch (one CNN, shared by all coils).

    Returns:
        complex64 ``(batch, H, W, C_out)`` or ``(batch, coils, H, W, C_out)``.
    """

    def __init__(
        self, n_convs, n_filters, out_channels, kernel_size=3, last_kernel_size=3, activation="relu", **kwargs
    ):
        super().__init__(**kwargs)
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.last_kernel_size = last_kernel_size
        self.activation = activation
        self.hidden = ConvBlock(n_convs, n_filters, kernel_size, activation)
        self.output_conv = keras.layers.Conv2D(2 * out_channels, last_kernel_size, padding="same")

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        channels = 2 * input_shape[-1]
        self.hidden.build((None, None, None, channels))
        self.output_conv.build((None, None, None, self.n_filters if self.n_convs else channels))

    def call(self, x):
        shape = tf.shape(x)
        folded = tf.reshape(x, [-1, shape[-3], shape[-2], x.shape[-1]]) if x.shape.rank > 4 else x
        y = from_channels(self.output_conv(self.hidden(to_channels(folded))))
        return tf.reshape(y, tf.concat([shape[:-1], [self.out_channels]], 0)) if x.shape.rank > 4 else y

    def get_config(self):
        return {
            **super().get_config(),
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "last_kernel_size": self.last_kernel_size,
            "activation": self.activation,
        }
