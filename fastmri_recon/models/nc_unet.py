"""Adjoint + U-net: the non-Cartesian post-processing baseline of the NC-PDNet paper.

The density-compensated adjoint ``x0 = A^H D y`` (coil-combined with the maps for multi-coil data)
is corrected by a U-net acting on its real and imaginary parts (4 levels of 16, 32, 64 and 128
filters, 2 convolutions per level, ReLU, as the paper's baseline), residually:
``|x0 + U(x0)|``. 2D only (the paper's 3D baseline is a V-net, not provided here).
"""

import keras

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.complex import from_channels, to_channels
from fastmri_recon.models.layers.unet import UNet
from fastmri_recon.models.nc_base import DEFAULT_IMAGE_SHAPE, DEFAULT_NUFFT_EPS, NonCartesianModel


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NCUNet(NonCartesianModel):
    """U-net correcting the complex density-compensated adjoint of non-Cartesian data (2D).

    Args:
        filters: filters of each U-net level, from the finest.
        n_convs: convolutions per level and side.
        residual: whether the U-net output is added to the adjoint image.
        activation: activation name (see `layers.conv.get_activation`).
        image_shape: image grid ``(H, W)``.
        nufft_eps: NUFFT accuracy.
        crop_size: output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, trajectory, density[, smaps])`` (see `models.nc_base`); smaps are
            required with multi-coil k-space.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.

    Raises:
        ConfigError: for a 3D ``image_shape``.
    """

    def __init__(
        self,
        filters=(16, 32, 64, 128),
        n_convs=2,
        residual=True,
        activation="relu",
        image_shape=DEFAULT_IMAGE_SHAPE,
        nufft_eps=DEFAULT_NUFFT_EPS,
        crop_size=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, nufft_eps=nufft_eps, crop_size=crop_size, **kwargs)
        if self.ndim != 2:
            raise ConfigError(f"NCUNet is 2D: image_shape must be (H, W), got {self.image_shape}")
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = n_convs
        self.residual = residual
        self.activation = activation
        self.unet = UNet(self.filters, n_convs, out_channels=2, activation=activation)

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, trajectory_shape, density_shape[, smaps_shape])``."""
        self.unet.build((None, None, None, 2))

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        image = encoding.adjoint(measured)[..., None]
        correction = from_channels(self.unet(to_channels(image)))
        return self.output_image((image + correction if self.residual else correction)[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "n_convs": self.n_convs,
            "residual": self.residual,
            "activation": self.activation,
        }
