"""E2E-VarNet (Sriram et al. 2020, "End-to-end variational networks for accelerated MRI
reconstruction"), as fastMRI's ``VarNet``: the external reference of the benchmarks.

The network estimates its own coil sensitivities: the low-frequency (auto-calibration) columns of
the measured k-space (`layers.coils.low_frequency_mask`) give low-resolution coil images, to which a
U-net is applied coil by coil; the maps are normalised by their root-sum-of-squares over coils.
Then each of the ``n_cascades`` cascades updates the coil k-space ``k`` (starting at ``y``) by

    k <- k - eta M (k - y) - F S U(S^H F^H k),

soft data consistency with a learned weight ``eta`` (initialised to 1; `DataConsistency` in its
learned mode; the first cascade's never trains, since ``k = y`` there, as in fastMRI) and a U-net
regulariser ``U`` on the complex coil-combined image. Both U-nets are fastMRI's (instance normalisation, leaky ReLU 0.2, average pooling, transposed-convolution
up-sampling, no biases) applied to the real and imaginary parts as 2 channels, standardised per
example and zero-padded to a multiple of ``2 ** pools`` (fastMRI's ``NormUnet``). The output is the
root-sum-of-squares of the final coil images, center-cropped.

The defaults are fastMRI's reference configuration (12 cascades, 18 channels, 4 pools; maps: 8
channels, 4 pools): 29,936,966 parameters, as fastMRI's ``VarNet``. Multi-coil only.
"""

import keras

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.coils import apply_per_coil, low_frequency_mask, normalize_by_rss, rss
from fastmri_recon.models.layers.data_consistency import DataConsistency
from fastmri_recon.models.layers.multiscale import ComplexDenoiser
from fastmri_recon.models.layers.unet import UNet
from fastmri_recon.ops.encoding import CartesianEncoding
from fastmri_recon.ops.fourier import ifft2c
from fastmri_recon.ops.masking import apply_mask


def norm_unet(chans, pools):
    """fastMRI's ``NormUnet(chans, pools)`` on complex images ``(n, H, W, 1)`` -> ``(n, H, W, 1)``."""
    unet = UNet(
        filters=[chans * 2**level for level in range(pools + 1)],
        out_channels=2,
        activation="leaky_relu",
        use_bias=False,
        normalization="instance",
        pooling="average",
        upsampling="transpose",
    )
    return ComplexDenoiser(unet, normalize=True)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class E2EVarNet(ReconstructionModel):
    """End-to-end variational network with sensitivity-map estimation (multi-coil).

    Args:
        n_cascades: number of cascades (U-net regulariser + soft data consistency).
        chans: channels of the first level of the regulariser U-nets.
        pools: poolings of the regulariser U-nets.
        sens_chans: channels of the first level of the sensitivity U-net.
        sens_pools: poolings of the sensitivity U-net.
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` with multi-coil kspace complex64 ``(batch, coils, H, W)`` and mask
            float ``(batch, W)`` or ``(W,)``; maps given as a third input are ignored.

    Returns:
        float32 ``(batch, h, w)`` root-sum-of-squares images.

    Raises:
        DataError: for single-coil k-space (see `ReconstructionModel.parse_inputs`).
    """

    needs_smaps = False
    multicoil_only = True

    def __init__(self, n_cascades=12, chans=18, pools=4, sens_chans=8, sens_pools=4, crop_size=None, **kwargs):
        super().__init__(crop_size=crop_size, **kwargs)
        self.n_cascades = n_cascades
        self.chans = chans
        self.pools = pools
        self.sens_chans = sens_chans
        self.sens_pools = sens_pools
        self.sens_net = norm_unet(sens_chans, sens_pools)
        self.regularizers = [norm_unet(chans, pools) for _ in range(n_cascades)]
        self.dcs = [DataConsistency("learned") for _ in range(n_cascades)]

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.sens_net.build((None, None, None, 1))
        for regularizer, dc in zip(self.regularizers, self.dcs):
            regularizer.build((None, None, None, 1))
            dc.build(input_shape)

    def estimate_smaps(self, measured, mask):
        """Sensitivity maps from the low-frequency columns of ``measured`` ``(batch, coils, H, W)``.

        Returns:
            complex64 ``(batch, coils, H, W)`` with unit root-sum-of-squares over coils.
        """
        images = ifft2c(apply_mask(measured, low_frequency_mask(mask)))
        return normalize_by_rss(apply_per_coil(self.sens_net, images))

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        mask = encoding.mask
        full = CartesianEncoding(None, self.estimate_smaps(measured, mask))
        kspace = measured
        for regularizer, dc in zip(self.regularizers, self.dcs):
            image = full.adjoint(kspace)
            regularization = full.forward(regularizer(image[..., None])[..., 0])
            kspace = dc((kspace, measured, mask)) - regularization
        return self.output_image(rss(ifft2c(kspace)))

    def get_config(self):
        return {
            **super().get_config(),
            "n_cascades": self.n_cascades,
            "chans": self.chans,
            "pools": self.pools,
            "sens_chans": self.sens_chans,
            "sens_pools": self.sens_pools,
        }
