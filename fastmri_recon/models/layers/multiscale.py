"""The multiscale complex denoiser wrapper: a real-valued multiscale CNN applied to complex images.

`ComplexDenoiser` splits complex feature maps into real channels (`complex.to_channels`),
optionally standardises them per example (fastMRI's ``NormUnet``: one mean and one standard
deviation for the real parts and one for the imaginary parts), zero-pads the image to a multiple of
the wrapped network's ``pooling_factor`` or of a given ``pad_multiple`` (half on each side, the odd
pixel at the end, or at the start as the benchmark's ``pad_for_pool``), runs the network, crops
back, undoes the standardisation, recombines into complex maps and optionally adds the first input
channels (a residual connection). Any size of image is thus accepted by MWCNN, DIDN and the U-net.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.complex import from_channels, to_channels

STD_FLOOR = 1e-12  # a constant image has std 0: fastMRI divides by it unguarded


ODD_PADDINGS = ("end", "start")


def pad_to_multiple(x, multiple, odd_padding="end"):
    """Zero-pad the image axes of ``x`` ``(batch, H, W, C)`` to multiples of ``multiple``.

    Args:
        x: tensor ``(batch, H, W, C)``.
        multiple: the multiple.
        odd_padding: where an odd padding's extra pixel goes, ``"end"`` or ``"start"``.

    Returns:
        ``(padded, (top, left))``: the padded tensor and the offsets of the original image in it.
    """
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    pad_h, pad_w = -height % multiple, -width % multiple
    extra = 1 if odd_padding == "start" else 0
    top, left = pad_h // 2 + extra * (pad_h % 2), pad_w // 2 + extra * (pad_w % 2)
    return tf.pad(x, [[0, 0], [top, pad_h - top], [left, pad_w - left], [0, 0]]), (top, left)


def standardise(channels):
    """Per-example mean / unbiased std of the real and of the imaginary channels (fastMRI's NormUnet).

    Args:
        channels: float32 ``(batch, H, W, 2C)``: real parts, then imaginary parts.

    Returns:
        ``(standardised, mean, std)``: mean and std of shape ``(batch, 1, 1, 2, 1)``.
    """
    shape = tf.shape(channels)
    parts = tf.reshape(channels, tf.concat([shape[:3], [2, -1]], 0))
    mean, variance = tf.nn.moments(parts, axes=[1, 2, 4], keepdims=True)
    count = tf.cast(tf.reduce_prod(shape[1:]) // 2, tf.float32)
    std = tf.maximum(tf.sqrt(variance * count / tf.maximum(count - 1.0, 1.0)), STD_FLOOR)
    return tf.reshape((parts - mean) / std, shape), mean, std


def unstandardise(channels, mean, std):
    """Inverse of `standardise` for ``channels`` float32 ``(batch, H, W, 2C')``."""
    shape = tf.shape(channels)
    parts = tf.reshape(channels, tf.concat([shape[:3], [2, -1]], 0))
    return tf.reshape(parts * std + mean, shape)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ComplexDenoiser(keras.layers.Layer):
    """A real-valued (multiscale) network applied to complex feature maps, any image size.

    Args:
        denoiser: a Keras layer mapping ``(batch, H, W, 2 C_in)`` to ``(batch, H, W, 2 C_out)`` real
            channels, with an ``out_channels`` attribute (``2 C_out``) and a ``pooling_factor``
            (the multiple its image sizes must have; 1 when absent).
        residual: add the first ``C_out`` input channels to the output.
        normalize: standardise the input channels per example and undo it on the output.
        pad_multiple: the multiple image sizes are zero-padded to (None: the denoiser's
            ``pooling_factor``).
        odd_padding: where an odd padding's extra pixel goes, ``"end"`` or ``"start"``.

    Call args:
        x: complex64 ``(batch, H, W, C_in)``.

    Returns:
        complex64 ``(batch, H, W, C_out)``.
    """

    def __init__(self, denoiser, residual=False, normalize=False, pad_multiple=None, odd_padding="end", **kwargs):
        super().__init__(**kwargs)
        if odd_padding not in ODD_PADDINGS:
            raise ConfigError(f"odd_padding must be one of {', '.join(ODD_PADDINGS)}, got {odd_padding!r}")
        self.denoiser = denoiser
        self.residual = residual
        self.normalize = normalize
        self.pad_multiple = None if pad_multiple is None else int(pad_multiple)
        self.odd_padding = odd_padding
        self.out_channels = denoiser.out_channels // 2

    def build(self, input_shape):
        """Create the denoiser's weights for ``input_shape = (batch, H, W, C_in)`` (unless it has them)."""
        if not self.denoiser.built:
            self.denoiser.build((None, None, None, 2 * input_shape[-1]))

    def call(self, x):
        channels = to_channels(x)
        if self.normalize:
            channels, mean, std = standardise(channels)
        multiple = self.pad_multiple or getattr(self.denoiser, "pooling_factor", 1)
        padded, (top, left) = pad_to_multiple(channels, multiple, self.odd_padding)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        out = tf.cast(self.denoiser(padded), tf.float32)[:, top : top + height, left : left + width]
        if self.normalize:
            out = unstandardise(out, mean, std)
        out = from_channels(out)
        return x[..., : self.out_channels] + out if self.residual else out

    def get_config(self):
        return {
            **super().get_config(),
            "denoiser": keras.saving.serialize_keras_object(self.denoiser),
            "residual": self.residual,
            "normalize": self.normalize,
            "pad_multiple": self.pad_multiple,
            "odd_padding": self.odd_padding,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["denoiser"] = keras.saving.deserialize_keras_object(config["denoiser"])
        return cls(**config)
