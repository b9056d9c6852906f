"""KIKI-net (Eo et al. 2018, "KIKI-net: cross-domain convolutional neural networks for
reconstructing undersampled magnetic resonance images"), in the configuration of Ramzi et al.
2020's benchmark.

Each of the ``n_iter`` iterations applies a k-space CNN (K-net) to the current k-space, goes to the
image domain (``S^H F^H``), refines the image with a residual image CNN (I-net) and comes back to
k-space with data consistency (``DC(F S x, y)``); the output is the image of the last k-space. The
benchmark's KIKI-net (``kikinet-sep-16``: two iterations, 16 convolutions of 48 filters, leaky
ReLU, 1x1 output convolutions) is the default; it was trained block by block, this one end to end.
The benchmark's code has no data consistency after the last I-net (its output is that I-net's
image): ``final_data_consistency=False`` (``kiki-net-benchmark`` in the registry, the papers'
weights) does the same.
"""

import keras

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.layers.data_consistency import DataConsistency


@keras.saving.register_keras_serializable(package="fastmri_recon")
class KIKINet(ReconstructionModel):
    """Alternating k-space and image CNNs with data consistency.

    Args:
        n_iter: number of K-net / I-net pairs.
        n_convs: hidden convolutions per CNN (plus one linear output convolution).
        n_filters: channels of the hidden convolutions.
        activation: activation name (see `layers.conv.get_activation`); ``"lrelu"`` is the leaky
            ReLU of slope 0.1 of the benchmark.
        last_kernel_size: kernel size of each CNN's output convolution.
        data_consistency: ``"replace"`` (the benchmark's noiseless setting) or ``"learned"``.
        final_data_consistency: whether the last I-net is followed by data consistency (else the
            output is its image).
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are required with multi-coil k-space, whose coils the K-nets process one by one.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    def __init__(
        self,
        n_iter=2,
        n_convs=16,
        n_filters=48,
        activation="lrelu",
        last_kernel_size=1,
        data_consistency="replace",
        final_data_consistency=True,
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.final_data_consistency = bool(final_data_consistency)
        self.n_iter = n_iter
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.activation = activation
        self.last_kernel_size = last_kernel_size
        self.data_consistency = data_consistency

        def cnn():
            return ComplexConvStack(n_convs, n_filters, 1, last_kernel_size=last_kernel_size, activation=activation)

        self.knets = [cnn() for _ in range(n_iter)]
        self.inets = [cnn() for _ in range(n_iter)]
        self.dcs = [DataConsistency(data_consistency) for _ in range(n_iter)]

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        for knet, inet, dc in zip(self.knets, self.inets, self.dcs):
            knet.build((None, None, None, 1))
            inet.build((None, None, None, 1))
            dc.build(input_shape)

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        full = encoding.unmasked
        kspace = measured
        for i, (knet, inet, dc) in enumerate(zip(self.knets, self.inets, self.dcs)):
            kspace = knet(kspace[..., None])[..., 0]
            image = full.adjoint(kspace)
            image = image + inet(image[..., None])[..., 0]
            if i == self.n_iter - 1 and not self.final_data_consistency:
                return self.output_image(image)
            kspace = dc((full.forward(image), measured, encoding.mask))
        return self.output_image(full.adjoint(kspace))

    def get_config(self):
        return {
            **super().get_config(),
            "n_iter": self.n_iter,
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "activation": self.activation,
            "last_kernel_size": self.last_kernel_size,
            "data_consistency": self.data_consistency,
            "final_data_consistency": self.final_data_consistency,
        }
