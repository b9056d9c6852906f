"""The shared machinery of the classical baselines that run in NumPy.

A classical baseline reconstructs one slice at a time in NumPy (`SliceBaseline.reconstruct_slice`);
this base class gives it the models' interface: a ``keras.Model`` called as
``model((kspace, mask[, smaps]))`` on batches, returning float32 magnitude images center-cropped to
``crop_size``, so one evaluation loop serves models and baselines.
"""

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.crop import center_crop


class Baseline(keras.Model):
    """Base of the classical baselines: no weights, output center-cropped to ``crop_size``.

    Args:
        crop_size: in-plane output size ``(h, w)``, or None for the full image.
    """

    def __init__(self, crop_size=None, **kwargs):
        super().__init__(**kwargs)
        self.crop_size = None if crop_size is None else tuple(int(s) for s in crop_size)

    def build(self, input_shape):
        """No weights to create; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.built = True

    def crop(self, images):
        """Center-crop float32 ``(batch, H, W)`` images to ``crop_size`` (if set)."""
        return images if self.crop_size is None else center_crop(images, self.crop_size)

    def get_config(self):
        return {**super().get_config(), "crop_size": self.crop_size}


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
            kspace: complex64 ``(H, W)`` or ``(coils, H, W)``, zero where not sampled.
            mask: float32 ``(W,)``.
            smaps: complex64 ``(coils, H, W)`` or None.

        Returns:
            ``(H, W)`` image, complex or magnitude.
        """
        raise NotImplementedError

    def _reconstruct_batch(self, kspace, mask, smaps=None):
        kspace = np.asarray(kspace)
        mask = np.broadcast_to(np.asarray(mask, np.float32), (kspace.shape[0], kspace.shape[-1]))
        images = []
        for i in range(kspace.shape[0]):
            expanded = mask[i] if kspace.ndim == 3 else mask[i][None, None]
            image = self.reconstruct_slice(kspace[i] * expanded + 0.0, mask[i], None if smaps is None else smaps[i])
            images.append(np.abs(image))
        return np.stack(images).astype(np.float32)

    def call(self, inputs):
        kspace, mask = inputs[0], inputs[1]
        smaps = inputs[2] if len(inputs) > 2 else None
        if self.needs_smaps and kspace.shape.rank == 4 and smaps is None:
            raise ConfigError(f"{type(self).__name__} needs coil sensitivity maps for multi-coil data")
        args = [kspace, mask] + ([smaps] if smaps is not None else [])
        images = tf.numpy_function(self._reconstruct_batch, args, tf.float32, stateful=False)
        images.set_shape([kspace.shape[0], kspace.shape[-2], kspace.shape[-1]])
        return self.crop(images)
