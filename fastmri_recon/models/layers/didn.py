"""DIDN (Yu et al. 2019, "Deep iterative down-up CNN for image denoising"), as an XPDNet denoiser.

The network works at half resolution: a 3x3 convolution and a stride-2 convolution, then ``n_dubs``
down-up blocks (`DownUpBlock`) in sequence; the output of every block goes through one shared
reconstruction block (residual convolutions), the results are concatenated and fused (a 1x1 then a
3x3 convolution), brought back to full resolution by pixel shuffle (``depth_to_space``) and mapped
to the output channels by a linear 3x3 convolution. Activations are PReLU (one slope per channel).

A down-up block at ``n_scales`` scales of ``filters * 2**s`` channels: at each scale on the way
down, residual convolutions (2 at the finest scale, 1 below) then a stride-2 convolution to the
next scale; at the coarsest scale, one residual convolution; on the way up, sub-pixel up-sampling
(a 1x1 convolution to 4 times the channels, then pixel shuffle), concatenation with the scale's
skip, a 1x1 fusion convolution and residual convolutions; a last convolution and a residual
connection around the block.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.conv import ConvBlock


def _convs_at(scale):
    """Residual convolutions per side at ``scale`` (2 at the finest, 1 below)."""
    return 2 if scale == 0 else 1


@keras.saving.register_keras_serializable(package="fastmri_recon")
class DownUpBlock(keras.layers.Layer):
    """DIDN's down-up block (DUB), residual: output channels = input channels = ``filters``.

    Args:
        filters: channels at the finest scale (doubled at each coarser one).
        n_scales: number of scales (``n_scales - 1`` down-samplings).

    Call args:
        x: float ``(batch, H, W, filters)``, ``H`` and ``W`` multiples of ``2 ** (n_scales - 1)``.

    Returns:
        ``(batch, H, W, filters)`` in the layer's compute dtype.
    """

    def __init__(self, filters=64, n_scales=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.n_scales = n_scales
        widths = [filters * 2**s for s in range(n_scales)]
        self.down_convs = [ConvBlock(_convs_at(s), w, activation="prelu") for s, w in enumerate(widths)]
        self.downsamplers = [keras.layers.Conv2D(w, 3, strides=2, padding="same") for w in widths[1:]]
        self.upsamplers = [keras.layers.Conv2D(4 * w, 1) for w in widths[:-1]]
        self.fusions = [keras.layers.Conv2D(w, 1) for w in widths[:-1]]
        self.up_convs = [ConvBlock(_convs_at(s), w, activation="prelu") for s, w in enumerate(widths[:-1])]
        self.last_conv = ConvBlock(1, filters, activation="prelu")

    def build(self, input_shape):
        """Create the weights (``input_shape = (batch, H, W, filters)``)."""
        widths = [self.filters * 2**s for s in range(self.n_scales)]
        for scale, width in enumerate(widths):
            self.down_convs[scale].build((None, None, None, width))
            if scale > 0:
                self.downsamplers[scale - 1].build((None, None, None, widths[scale - 1]))
                self.upsamplers[scale - 1].build((None, None, None, width))
                self.fusions[scale - 1].build((None, None, None, 2 * widths[scale - 1]))
                self.up_convs[scale - 1].build((None, None, None, widths[scale - 1]))
        self.last_conv.build((None, None, None, self.filters))

    def call(self, x):
        block_input, skips = x, []
        for scale, convs in enumerate(self.down_convs):
            if scale > 0:
                skips.append(x)
                x = self.downsamplers[scale - 1](x)
            x = x + convs(x)
        for scale in reversed(range(self.n_scales - 1)):
            x = tf.nn.depth_to_space(self.upsamplers[scale](x), 2)
            x = self.fusions[scale](tf.concat([x, skips[scale]], axis=-1))
            x = x + self.up_convs[scale](x)
        return block_input + self.last_conv(x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "n_scales": self.n_scales}


@keras.saving.register_keras_serializable(package="fastmri_recon")
class DIDN(keras.layers.Layer):
    """Deep iterative down-up network on real feature maps.

    Args:
        filters: channels of the half-resolution features (a multiple of 4).
        n_dubs: number of down-up blocks.
        n_recon_convs: convolutions of the shared reconstruction block (the last one linear).
        n_scales: scales of each down-up block.
        out_channels: output channels.

    Call args:
        x: float ``(batch, H, W, C_in)``, ``H`` and ``W`` multiples of `pooling_factor`.

    Returns:
        ``(batch, H, W, out_channels)`` in the layer's compute dtype.

    Raises:
        ConfigError: for filters not a multiple of 4, or no block, scale or reconstruction convolution.
    """

    def __init__(self, filters=64, n_dubs=2, n_recon_convs=2, n_scales=3, out_channels=1, **kwargs):
        super().__init__(**kwargs)
        if filters % 4 or min(n_dubs, n_recon_convs, n_scales) < 1:
            raise ConfigError(
                f"DIDN needs filters a multiple of 4 and at least one block, reconstruction convolution and "
                f"scale, got filters={filters}, n_dubs={n_dubs}, n_recon_convs={n_recon_convs}, n_scales={n_scales}"
            )
        self.filters = filters
        self.n_dubs = n_dubs
        self.n_recon_convs = n_recon_convs
        self.n_scales = n_scales
        self.out_channels = out_channels
        self.head = ConvBlock(1, filters, activation="prelu")
        self.downsampler = keras.layers.Conv2D(filters, 3, strides=2, padding="same")
        self.dubs = [DownUpBlock(filters, n_scales) for _ in range(n_dubs)]
        self.recon_hidden = ConvBlock(n_recon_convs - 1, filters, activation="prelu")
        self.recon_output = keras.layers.Conv2D(filters, 3, padding="same")
        self.fusion = keras.layers.Conv2D(filters, 1)
        self.fusion_conv = ConvBlock(1, filters, activation="prelu")
        self.output_conv = keras.layers.Conv2D(out_channels, 3, padding="same")

    @property
    def pooling_factor(self):
        """The total down-sampling factor ``2 ** n_scales``: input sizes must be multiples of it."""
        return 2**self.n_scales

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        features = (None, None, None, self.filters)
        self.head.build((None, None, None, input_shape[-1]))
        for layer in [self.downsampler, *self.dubs, self.recon_hidden, self.fusion_conv]:
            layer.build(features)
        self.recon_output.build(features)
        self.fusion.build((None, None, None, self.n_dubs * self.filters))
        self.output_conv.build((None, None, None, self.filters // 4))

    def reconstruct(self, x):
        """The shared reconstruction block: residual convolutions, the last one linear."""
        return x + self.recon_output(self.recon_hidden(x))

    def call(self, x):
        x = self.downsampler(self.head(x))
        outputs = []
        for dub in self.dubs:
            x = dub(x)
            outputs.append(self.reconstruct(x))
        x = self.fusion_conv(self.fusion(tf.concat(outputs, axis=-1)))
        return self.output_conv(tf.nn.depth_to_space(x, 2))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_dubs": self.n_dubs,
            "n_recon_convs": self.n_recon_convs,
            "n_scales": self.n_scales,
            "out_channels": self.out_channels,
        }
