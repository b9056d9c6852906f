"""The shared machinery of the classical baselines that run in NumPy.

Baselines share the networks' interface (`fastmri_recon.models.base.ReconstructionModel`): a
``keras.Model`` called as ``model((kspace, mask[, smaps]))`` on batches, returning float32 magnitude
images center-cropped to ``crop_size``, so one evaluation loop serves models and baselines. Those
that reconstruct one slice at a time in NumPy implement `SliceBaseline.reconstruct_slice`.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.models.base import ReconstructionModel


class Baseline(ReconstructionModel):
    """Base of the classical baselines: the networks' interface (`ReconstructionModel`), no weights.

    Args:
        crop_size: in-plane output size ``(h, w)``, or None for the full image.
    """

    needs_smaps = False

    def build(self, input_shape):
        """No weights to create; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.built = True


class SliceBaseline(Baseline):
    """Base of the baselines that reconstruct slice by slice in NumPy.

    Subclasses set ``needs_smaps`` (multi-coil methods that use coil sensitivities) and implement
    `reconstruct_slice`.

    Args:
        crop_size: in-plane output size ``(h, w)``, or None for the full image.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)``: kspace complex64 ``(batch, H, W)``
            or ``(batch, coils, H, W)``, mask float32 ``(batch, W)`` or ``(W,)``, smaps complex64
            ``(batch, coils, H, W)``.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    needs_smaps = False

    def reconstruct_slice(self, kspace, mask, smaps):
        """Reconstruct one slice.

        Args:
            kspace: complex64 ``(H, W)`` or ``(coils, H, W)``, already masked.
            mask: float32 ``(W,)``.
            smaps: complex64 ``(coils, H, W)`` or None.

        Returns:
            ``(H, W)`` image, complex or magnitude.
        """
        raise NotImplementedError

    def _reconstruct_batch(self, kspace, mask, smaps=None):
        mask = np.broadcast_to(mask, (kspace.shape[0], kspace.shape[-1]))
        images = [
            np.abs(self.reconstruct_slice(kspace[i], mask[i], None if smaps is None else smaps[i]))
            for i in range(kspace.shape[0])
        ]
        return np.stack(images).astype(np.float32)

    def call(self, inputs):
        kspace, encoding = self.parse_inputs(inputs)
        args = [kspace, encoding.mask] + ([encoding.smaps] if encoding.multicoil else [])
        images = tf.numpy_function(self._reconstruct_batch, args, tf.float32, stateful=False)
        images.set_shape([kspace.shape[0], kspace.shape[-2], kspace.shape[-1]])
        return self.output_image(images)
