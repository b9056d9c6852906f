"""U-net post-processing of the zero-filled reconstruction, in the configuration of Ramzi et al.
2020's benchmark (4 levels of 16, 32, 64 and 128 filters, 2 convolutions per level).

The input of the U-net is the magnitude of the zero-filled image (root-sum-of-squares over coils
for multi-coil data), center-cropped to ``crop_size`` first as in the benchmark (the network then
works on the output grid only); the U-net predicts a correction added to it (``residual=True``).
"""

import keras
import tensorflow as tf

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.coils import rss
from fastmri_recon.models.layers.unet import UNet
from fastmri_recon.ops.fourier import ifft2c


@keras.saving.register_keras_serializable(package="fastmri_recon")
class UNetPostProcessing(ReconstructionModel):
    """U-net applied to the zero-filled magnitude image.

    Args:
        filters: filters of each level, from the finest (its length is the number of levels).
        n_convs: convolutions per level and side.
        residual: whether the U-net output is added to its input.
        activation: activation name (see `layers.conv.get_activation`).
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are not used.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    needs_smaps = False

    def __init__(
        self, filters=(16, 32, 64, 128), n_convs=2, residual=True, activation="relu", crop_size=None, **kwargs
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = n_convs
        self.residual = residual
        self.activation = activation
        self.unet = UNet(self.filters, n_convs, out_channels=1, activation=activation)

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.unet.build((None, None, None, 1))

    def call(self, inputs):
        measured, _, _ = self.parse_inputs(inputs)
        zero_filled = ifft2c(measured)
        magnitude = rss(zero_filled) if measured.shape.rank == 4 else tf.abs(zero_filled)
        image = self.output_image(magnitude)[..., None]
        correction = tf.cast(self.unet(image), tf.float32)
        return (image + correction if self.residual else correction)[..., 0]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "residual": self.residual,
            "activation": self.activation,
        }
