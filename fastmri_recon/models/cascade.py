"""Cascade-net (Schlemper et al. 2017, "A deep cascade of convolutional neural networks for dynamic
MR image reconstruction"), in the configuration of Ramzi et al. 2020's benchmark.

Starting from ``x = A^H y``, each cascade refines the image with a residual CNN,
``x <- x + CNN(x)``, then enforces data consistency in k-space:
``x <- S^H F^H DC(F S x, y)``.
"""

import keras

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.layers.data_consistency import DataConsistency


@keras.saving.register_keras_serializable(package="fastmri_recon")
class CascadeNet(ReconstructionModel):
    """Cascade of residual image CNNs interleaved with data consistency.

    Args:
        n_cascades: number of cascades (CNN + data consistency).
        n_convs: hidden convolutions per CNN (plus one linear output convolution).
        n_filters: channels of the hidden convolutions.
        data_consistency: ``"replace"`` (the benchmark's noiseless setting) or ``"learned"`` (one
            trainable weight per cascade).
        activation: activation name (see `layers.conv.get_activation`).
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are required with multi-coil k-space.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    def __init__(
        self,
        n_cascades=5,
        n_convs=5,
        n_filters=48,
        data_consistency="replace",
        activation="relu",
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.n_cascades = n_cascades
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.data_consistency = data_consistency
        self.activation = activation
        self.cnns = [ComplexConvStack(n_convs, n_filters, 1, activation=activation) for _ in range(n_cascades)]
        self.dcs = [DataConsistency(data_consistency) for _ in range(n_cascades)]

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        for cnn, dc in zip(self.cnns, self.dcs):
            cnn.build((None, None, None, 1))
            dc.build(input_shape)

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        full = encoding.unmasked
        image = full.adjoint(measured)
        for cnn, dc in zip(self.cnns, self.dcs):
            image = image + cnn(image[..., None])[..., 0]
            kspace = dc((full.forward(image), measured, encoding.mask))
            image = full.adjoint(kspace)
        return self.output_image(image)

    def get_config(self):
        return {
            **super().get_config(),
            "n_cascades": self.n_cascades,
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "data_consistency": self.data_consistency,
            "activation": self.activation,
        }
