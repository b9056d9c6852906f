"""The U-net (Ronneberger et al. 2015) as a layer on real channels, with padding for the poolings.

Each level is a `ConvBlock`; going down, 2x2 max pooling; going up, nearest 2x upsampling, a 2x2
"up-convolution" to the level's filters (with the activation), concatenation with the skip
connection and the level's `ConvBlock`; a final linear 1x1 convolution gives the output channels.
Inputs whose size is not divisible by ``2 ** (levels - 1)`` are zero-padded at the bottom / right
and the output is cropped back.
"""

import keras
import tensorflow as tf

from fastmri_recon.models.layers.conv import ConvBlock, get_activation


@keras.saving.register_keras_serializable(package="fastmri_recon")
class UNet(keras.layers.Layer):
    """U-net on real feature maps.

    Args:
        filters: filters of each level, from the finest; its length is the number of levels.
        n_convs: convolutions per level (on each side).
        out_channels: output channels.
        kernel_size: kernel size of the level convolutions.
        activation: activation name (see `conv.get_activation`).

    Call args:
        x: float ``(batch, H, W, C_in)``, any ``H`` and ``W``.

    Returns:
        ``(batch, H, W, out_channels)`` in the layer's compute dtype.
    """

    def __init__(
        self, filters=(16, 32, 64, 128), n_convs=2, out_channels=1, kernel_size=3, activation="relu", **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = n_convs
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.encoder = [ConvBlock(n_convs, f, kernel_size, activation) for f in self.filters]
        self.upconvs = [
            keras.layers.Conv2D(f, 2, padding="same", activation=get_activation(activation)) for f in self.filters[:-1]
        ]
        self.decoder = [ConvBlock(n_convs, f, kernel_size, activation) for f in self.filters[:-1]]
        self.output_conv = keras.layers.Conv2D(out_channels, 1, padding="same")

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        channels = input_shape[-1]
        for block in self.encoder:
            block.build((None, None, None, channels))
            channels = block.n_filters
        for upconv, block in zip(reversed(self.upconvs), reversed(self.decoder)):
            upconv.build((None, None, None, channels))
            block.build((None, None, None, 2 * upconv.filters))
            channels = block.n_filters
        self.output_conv.build((None, None, None, channels))

    def call(self, x):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        multiple = 2 ** (len(self.filters) - 1)
        x = tf.pad(x, [[0, 0], [0, -height % multiple], [0, -width % multiple], [0, 0]])
        skips = []
        for block in self.encoder[:-1]:
            x = block(x)
            skips.append(x)
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = self.encoder[-1](x)
        for upconv, block, skip in zip(reversed(self.upconvs), reversed(self.decoder), reversed(skips)):
            x = upconv(tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2))
            x = block(tf.concat([skip, x], axis=-1))
        return self.output_conv(x)[:, :height, :width]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
        }
