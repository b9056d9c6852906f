"""Zero-filled reconstruction: the inverse FFT of the undersampled k-space."""

import keras
import tensorflow as tf

from fastmri_recon.baselines.base import Baseline
from fastmri_recon.models.layers.coils import rss
from fastmri_recon.ops.fourier import ifft2c


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ZeroFilled(Baseline):
    """Zero-filled baseline with the models' interface.

    Masks the k-space, applies the centered orthonormal inverse FFT, takes the magnitude (the
    root-sum-of-squares over coils for multi-coil data) and center-crops to ``crop_size``.

    Args:
        crop_size: in-plane output size ``(h, w)``, or None to return the full image.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)``; kspace complex64 ``(batch, H, W)``
            or ``(batch, coils, H, W)``, mask float32 broadcastable to ``(batch, W)`` along the last
            axis; smaps are ignored.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    def call(self, inputs):
        kspace, _ = self.parse_inputs(inputs)
        image = ifft2c(kspace)
        return self.output_image(rss(image) if kspace.shape.rank == 4 else tf.abs(image))
