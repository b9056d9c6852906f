"""U-net post-processing of the zero-filled reconstruction, in the configuration of Ramzi et al.
2020's benchmark (4 levels of 16, 32, 64 and 128 filters, 2 convolutions per level).

The input of the U-net is the magnitude of the zero-filled image (root-sum-of-squares over coils
for multi-coil data), center-cropped to ``crop_size`` first as in the benchmark (the network then
works on the output grid only); the U-net predicts a correction added to it (``residual=True``).

``standardize=True`` is the benchmark's input normalisation (its ``ZeroFilled2DSequence(norm=True)``,
which the papers' U-net weights were trained with): each slice's zero-filled magnitude ``z`` becomes
``(z - mean(z)) / (std(z) + 1e-11)`` (mean and population standard deviation over the cropped image),
and the U-net's output ``u`` is brought back as ``u * std(z) + mean(z)``; the output then no longer
depends on the scale of the data. The papers' U-net (``unet-benchmark`` in the registry) also has no
residual connection and a linear 4-channel 1x1 convolution before the output one.
"""

import keras
import tensorflow as tf

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.coils import rss
from fastmri_recon.models.layers.unet import UNet
from fastmri_recon.ops.fourier import ifft2c

STANDARDIZE_EPSILON = 1e-11
"""Added to each slice's standard deviation (the benchmark's value)."""


@keras.saving.register_keras_serializable(package="fastmri_recon")
class UNetPostProcessing(ReconstructionModel):
    """U-net applied to the zero-filled magnitude image.

    Args:
        filters: filters of each level, from the finest (its length is the number of levels).
        n_convs: convolutions per level and side.
        residual: whether the U-net output is added to its input.
        activation: activation name (see `layers.conv.get_activation`).
        standardize: standardise each slice's input by its mean and standard deviation and undo it
            on the output (see the module docstring).
        penultimate_channels: channels of a 1x1 convolution before the U-net's output one, or None
            (see `layers.unet.UNet`).
        penultimate_activation: its activation name.
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are not used.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    needs_smaps = False

    def __init__(
        self,
        filters=(16, 32, 64, 128),
        n_convs=2,
        residual=True,
        activation="relu",
        standardize=False,
        penultimate_channels=None,
        penultimate_activation="linear",
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = n_convs
        self.residual = residual
        self.activation = activation
        self.standardize = bool(standardize)
        self.penultimate_channels = penultimate_channels
        self.penultimate_activation = penultimate_activation
        self.unet = UNet(
            self.filters,
            n_convs,
            out_channels=1,
            activation=activation,
            penultimate_channels=penultimate_channels,
            penultimate_activation=penultimate_activation,
        )

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.unet.build((None, None, None, 1))

    def call(self, inputs):
        measured, _, _ = self.parse_inputs(inputs)
        zero_filled = ifft2c(measured)
        magnitude = rss(zero_filled) if measured.shape.rank == 4 else tf.abs(zero_filled)
        image = self.output_image(magnitude)[..., None]
        if self.standardize:
            mean, variance = tf.nn.moments(image, axes=[1, 2, 3], keepdims=True)
            std = tf.sqrt(variance)
            image = (image - mean) / (std + STANDARDIZE_EPSILON)
        correction = tf.cast(self.unet(image), tf.float32)
        output = image + correction if self.residual else correction
        if self.standardize:
            output = output * std + mean
        return output[..., 0]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "residual": self.residual,
            "activation": self.activation,
            "standardize": self.standardize,
            "penultimate_channels": self.penultimate_channels,
            "penultimate_activation": self.penultimate_activation,
        }
