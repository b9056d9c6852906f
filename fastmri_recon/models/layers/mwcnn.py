"""MWCNN (Liu et al. 2018, "Multi-level wavelet-CNN for image restoration"), as the XPDNet denoiser.

The orthonormal Haar transform (`haar.haar_dwt` / `haar.haar_idwt`) is the pooling / unpooling:
it halves the image size and multiplies the channels by 4 without losing information. The network:

- ``n_first_convs`` full-resolution convolutions of ``first_filters`` channels (kept for a skip);
- for each scale ``s``: a DWT, then ``n_convs[s]`` convolutions of ``filters[s]`` channels (kept for
  a skip);
- back up, from the coarsest scale: ``n_convs[s] - 1`` convolutions of ``filters[s]`` channels and
  one to 4 times the channels of the scale above, an IDWT, and the skip of that scale added;
- ``n_first_convs - 1`` full-resolution convolutions and a linear output convolution.

Hidden convolutions are 3x3, without bias, each followed by the activation, as in the XPDNet
benchmark's MWCNN (its parameter counts are reproduced: 338,122 / 6,217,930 / 24,932,746 for the
small / medium / big sizes with 12 input and 10 output channels). The residual connection of the
XPDNet denoisers is added by the complex wrapper (`multiscale.ComplexDenoiser`).
"""

import keras

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.conv import ConvBlock
from fastmri_recon.models.layers.haar import haar_dwt, haar_idwt


def _per_scale(value, n_scales):
    """``value`` as a tuple of one int per scale (an int is repeated)."""
    values = (value,) * n_scales if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != n_scales:
        raise ConfigError(f"MWCNN: n_convs needs one value per scale ({n_scales}), got {value}")
    return values


@keras.saving.register_keras_serializable(package="fastmri_recon")
class MWCNN(keras.layers.Layer):
    """Multi-level wavelet CNN on real feature maps.

    Args:
        filters: filters of each scale, from the finest; its length is the number of DWT levels.
        n_convs: convolutions per scale and side (at least 1): an int, or one per scale.
        first_filters: filters of the full-resolution convolutions.
        n_first_convs: full-resolution convolutions on each side (at least 1).
        out_channels: output channels.
        kernel_size: kernel size of every convolution.
        activation: activation name (see `conv.make_activation`).

    Call args:
        x: float ``(batch, H, W, C_in)``, ``H`` and ``W`` multiples of `pooling_factor`.

    Returns:
        ``(batch, H, W, out_channels)`` in the layer's compute dtype.

    Raises:
        ConfigError: for fewer than one convolution per scale or side.
    """

    def __init__(
        self,
        filters=(64, 128, 256),
        n_convs=3,
        first_filters=32,
        n_first_convs=2,
        out_channels=1,
        kernel_size=3,
        activation="relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = _per_scale(n_convs, len(self.filters))
        if min(self.n_convs + (n_first_convs,)) < 1:
            raise ConfigError(
                f"MWCNN needs at least one convolution per scale and side, got {n_convs} and {n_first_convs}"
            )
        self.first_filters = first_filters
        self.n_first_convs = n_first_convs
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation

        def block(n, f):
            return ConvBlock(n, f, kernel_size, activation, use_bias=False)

        above = (first_filters,) + self.filters[:-1]  # channels of the scale above each scale
        self.head = block(n_first_convs, first_filters)
        self.down = [block(n, f) for n, f in zip(self.n_convs, self.filters)]
        self.up = [block(n - 1, f) for n, f in zip(self.n_convs, self.filters)]
        self.expand = [block(1, 4 * a) for a in above]
        self.tail = block(n_first_convs - 1, first_filters)
        self.output_conv = keras.layers.Conv2D(out_channels, kernel_size, padding="same")

    @property
    def pooling_factor(self):
        """The total down-sampling factor ``2 ** len(filters)``: input sizes must be multiples of it."""
        return 2 ** len(self.filters)

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, H, W, C_in)`` (only ``C_in`` matters)."""
        self.head.build((None, None, None, input_shape[-1]))
        channels = self.first_filters
        for down, up, expand, filters in zip(self.down, self.up, self.expand, self.filters):
            down.build((None, None, None, 4 * channels))
            up.build((None, None, None, filters))
            expand.build((None, None, None, filters))
            channels = filters
        self.tail.build((None, None, None, self.first_filters))
        self.output_conv.build((None, None, None, self.first_filters))

    def call(self, x):
        first = self.head(x)
        x, skips = first, []
        for down in self.down:
            x = down(haar_dwt(x))
            skips.append(x)
        for scale in reversed(range(len(self.filters))):
            if scale < len(self.filters) - 1:
                x = haar_idwt(x) + skips[scale]
            x = self.expand[scale](self.up[scale](x))
        return self.output_conv(self.tail(haar_idwt(x) + first))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "first_filters": self.first_filters,
            "n_first_convs": self.n_first_convs,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
        }
