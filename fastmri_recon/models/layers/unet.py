"""The U-net (Ronneberger et al. 2015) as a layer on real channels, with padding for the poolings.

Each level is a `ConvBlock`; going down, 2x2 pooling (max, or average as fastMRI's U-net); going up,
an up-convolution to the level's filters followed by the normalisation and the activation (nearest
2x upsampling then a 2x2 convolution, as the benchmark's U-net, or a 2x2 transposed convolution of
stride 2, as fastMRI's), concatenation with the skip connection and the level's `ConvBlock`; a final
linear 1x1 convolution gives the output channels, optionally after a 1x1 convolution of
``penultimate_channels`` (the benchmark's U-nets end with a 4-channel one: linear in the one of the
papers' weights, with the activation in the later one that refines XPDNet's sensitivity maps). Inputs whose size is not divisible by the pooling
factor ``2 ** (levels - 1)`` are zero-padded at the bottom / right and the output is cropped back.

fastMRI's ``Unet(in_chans, out_chans, chans, num_pool_layers)`` (as used by E2E-VarNet) is
``UNet(filters=[chans * 2**i for i in range(num_pool_layers + 1)], activation="leaky_relu",
use_bias=False, normalization="instance", pooling="average", upsampling="transpose")``, with the same
parameter count.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.conv import ConvBlock, apply_unit, build_unit, make_activation, make_normalization


@keras.saving.register_keras_serializable(package="fastmri_recon")
class UNet(keras.layers.Layer):
    """U-net on real feature maps.

    Args:
        filters: filters of each level, from the finest; its length is the number of levels.
        n_convs: convolutions per level (on each side).
        out_channels: output channels.
        kernel_size: kernel size of the level convolutions.
        activation: activation name (see `conv.make_activation`).
        use_bias: whether the level convolutions and up-convolutions have biases (the output
            convolution always has one).
        normalization: None or ``"instance"``, after each level convolution and up-convolution.
        pooling: ``"max"`` or ``"average"``.
        upsampling: ``"nearest"`` (upsampling then 2x2 convolution) or ``"transpose"`` (2x2
            transposed convolution of stride 2).
        penultimate_channels: channels of a 1x1 convolution (with a bias) before the output one, or
            None (none).
        penultimate_activation: its activation name (see `conv.make_activation`).

    Call args:
        x: float ``(batch, H, W, C_in)``, any ``H`` and ``W``.

    Returns:
        ``(batch, H, W, out_channels)`` in the layer's compute dtype.

    Raises:
        ConfigError: for an unknown pooling, upsampling or normalisation, or no levels.
    """

    def __init__(
        self,
        filters=(16, 32, 64, 128),
        n_convs=2,
        out_channels=1,
        kernel_size=3,
        activation="relu",
        use_bias=True,
        normalization=None,
        pooling="max",
        upsampling="nearest",
        penultimate_channels=None,
        penultimate_activation="linear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in ("max", "average") or upsampling not in ("nearest", "transpose"):
            raise ConfigError(
                f"U-net pooling must be 'max' or 'average' and upsampling 'nearest' or 'transpose', "
                f"got {pooling!r} and {upsampling!r}"
            )
        self.filters = tuple(int(f) for f in filters)
        if not self.filters or min(self.filters) < 1:
            raise ConfigError(f"U-net filters must be one positive number per level, got {list(self.filters)}")
        self.n_convs = n_convs
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.use_bias = use_bias
        self.normalization = normalization
        self.pooling = pooling
        self.upsampling = upsampling
        self.penultimate_channels = None if penultimate_channels is None else int(penultimate_channels)
        self.penultimate_activation = penultimate_activation
        options = dict(activation=activation, use_bias=use_bias, normalization=normalization)
        self.encoder = [ConvBlock(n_convs, f, kernel_size, **options) for f in self.filters]
        self.upconvs = [self._upconv(f) for f in self.filters[:-1]]
        self.up_norms = [make_normalization(normalization) for _ in self.filters[:-1]] if normalization else []
        self.up_activations = [make_activation(activation) for _ in self.filters[:-1]]
        self.decoder = [ConvBlock(n_convs, f, kernel_size, **options) for f in self.filters[:-1]]
        self.penultimate_conv = self.penultimate_act = None
        if self.penultimate_channels is not None:
            self.penultimate_conv = keras.layers.Conv2D(self.penultimate_channels, 1, padding="same")
            self.penultimate_act = make_activation(penultimate_activation)
        self.output_conv = keras.layers.Conv2D(out_channels, 1, padding="same")

    def _upconv(self, filters):
        if self.upsampling == "transpose":
            return keras.layers.Conv2DTranspose(filters, 2, strides=2, use_bias=self.use_bias)
        return keras.layers.Conv2D(filters, 2, padding="same", use_bias=self.use_bias)

    @property
    def pooling_factor(self):
        """The total down-sampling factor ``2 ** (levels - 1)``: input sizes are padded to multiples of it."""
        return 2 ** (len(self.filters) - 1)

    def _up_units(self):
        norms = self.up_norms or [None] * len(self.upconvs)
        return list(zip(self.upconvs, norms, self.up_activations))

    def _penultimate_unit(self):
        return (self.penultimate_conv, None, self.penultimate_act)

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        channels = input_shape[-1]
        for block in self.encoder:
            block.build((None, None, None, channels))
            channels = block.n_filters
        for unit, block in zip(reversed(self._up_units()), reversed(self.decoder)):
            build_unit(unit, (None, None, None, channels), block.n_filters)
            block.build((None, None, None, 2 * block.n_filters))
            channels = block.n_filters
        if self.penultimate_conv is not None:
            build_unit(self._penultimate_unit(), (None, None, None, channels), self.penultimate_channels)
            channels = self.penultimate_channels
        self.output_conv.build((None, None, None, channels))

    def call(self, x):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        multiple = self.pooling_factor
        x = tf.pad(x, [[0, 0], [0, -height % multiple], [0, -width % multiple], [0, 0]])
        pool = tf.nn.max_pool2d if self.pooling == "max" else tf.nn.avg_pool2d
        skips = []
        for block in self.encoder[:-1]:
            x = block(x)
            skips.append(x)
            x = pool(x, 2, 2, "VALID")
        x = self.encoder[-1](x)
        for unit, block, skip in zip(reversed(self._up_units()), reversed(self.decoder), reversed(skips)):
            if self.upsampling == "nearest":
                x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
            x = block(tf.concat([skip, apply_unit(unit, x)], axis=-1))
        if self.penultimate_conv is not None:
            x = apply_unit(self._penultimate_unit(), x)
        return self.output_conv(x)[:, :height, :width]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "normalization": self.normalization,
            "pooling": self.pooling,
            "upsampling": self.upsampling,
            "penultimate_channels": self.penultimate_channels,
            "penultimate_activation": self.penultimate_activation,
        }
