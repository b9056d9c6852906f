"""The interface shared by the reconstruction networks.

Every network is called as ``model((kspace, mask))`` or ``model((kspace, mask, smaps))`` and returns
float32 magnitude images ``(batch, h, w)`` center-cropped to ``crop_size``, as the baselines do, so
one evaluation loop serves all.

Multi-coil data is recognised by its rank: k-space ``(batch, coils, H, W)`` instead of
``(batch, H, W)``. The weights do not depend on it (image-domain CNNs act on the coil-combined
image ``S^H F^H y``, k-space CNNs on each coil's k-space with shared weights), so one model serves
both. Networks with ``needs_smaps = True`` require the sensitivity maps with multi-coil k-space;
single-coil inputs ignore any maps given. Networks with ``multicoil_only = True`` (those that
estimate their own maps, such as E2E-VarNet) refuse single-coil k-space.

The input k-space is masked by the model (``M y``), so fully-sampled k-space with a mask is valid
input. The networks are not scale-equivariant (biases, activations): as in the benchmark, which
multiplied fastMRI knee k-space by 1e6, they expect k-space scaled by the data pipeline to values
of order one, and return images in that scale.

Nor are complex networks equivariant to a global phase, which in MRI is arbitrary (receiver phase,
B0 offset): a network trained on few subjects fails on a subject whose image phase lies outside the
training range. ``phase_normalization=True`` (off by default: the papers' networks have no such
step) rotates the measured k-space by the conjugate of the phase of its zero-filled image's sum
``sum(A^H y)`` before the network sees it, which makes the magnitude output exactly invariant to a
global phase of the data.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import DataError
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.encoding import CartesianEncoding
from fastmri_recon.ops.masking import apply_mask


def remove_global_phase(measured, image):
    """Rotate measured data by the conjugate phase of the sum of ``image`` (its adjoint image).

    Args:
        measured: complex64 ``(batch, ...)`` measured data (any layout, linear in the image).
        image: complex64 ``(batch, ...)`` the adjoint (zero-filled) image of ``measured``.

    Returns:
        complex64, ``measured``'s shape: ``measured * exp(-i angle(sum(image)))`` per example
        (unchanged where the sum is zero).
    """
    total = tf.reduce_sum(image, axis=list(range(1, image.shape.rank)))
    safe = tf.where(tf.abs(total) > 0, total, tf.ones_like(total))
    rotation = tf.math.conj(safe) / tf.cast(tf.abs(safe), tf.complex64)
    return measured * tf.reshape(rotation, [-1] + [1] * (measured.shape.rank - 1))


class ReconstructionModel(keras.Model):
    """Base class of the reconstruction networks: input parsing, output magnitude and cropping.

    Subclasses create their sub-layers in ``__init__``, their weights in `build` (from the
    configuration only, so that a saved model reloads with the right weights) and implement
    ``call(inputs)`` with `parse_inputs` and `output_image`.

    Args:
        crop_size: in-plane output size ``(h, w)``, or None to return the full image.
        phase_normalization: remove the global phase of the measured data before the network
            (see the module docstring).
    """

    needs_smaps = True
    multicoil_only = False
    acquisition = "cartesian"  # inputs (kspace, mask[, smaps]); "noncartesian": see models.nc_base

    def __init__(self, crop_size=None, phase_normalization=False, **kwargs):
        super().__init__(**kwargs)
        self.crop_size = None if crop_size is None else tuple(int(s) for s in crop_size)
        self.phase_normalization = bool(phase_normalization)

    def parse_inputs(self, inputs):
        """Split and check the inputs.

        Args:
            inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)``: kspace complex64
                ``(batch, H, W)`` or ``(batch, coils, H, W)``, mask float ``(batch, W)`` or ``(W,)``,
                smaps complex64 ``(batch, coils, H, W)``.

        Returns:
            ``(measured, encoding)``: the masked k-space (complex64, kspace's shape; without its
            global phase with ``phase_normalization``) and the batch's `ops.encoding.CartesianEncoding`
            (its ``mask`` float32, its ``smaps`` the maps or None for single-coil data and for
            multi-coil data to a network that needs no maps): the protocol the non-Cartesian models'
            `models.nc_base.NonCartesianModel.parse_inputs` follows.

        Raises:
            DataError: for k-space of another rank or dtype, single-coil k-space to a multi-coil
                network, or multi-coil k-space without maps when the network needs them.
        """
        kspace, mask = inputs[0], inputs[1]
        smaps = inputs[2] if len(inputs) > 2 else None
        name = type(self).__name__
        if kspace.dtype != tf.complex64 or kspace.shape.rank not in (3, 4):
            raise DataError(
                f"{name}: k-space must be complex64 (batch, H, W) or (batch, coils, H, W), "
                f"got {kspace.dtype.name} of shape {tuple(kspace.shape)}"
            )
        if kspace.shape.rank == 3 and self.multicoil_only:
            raise DataError(
                f"{name}: multi-coil only: k-space must be complex64 (batch, coils, H, W), "
                f"got single-coil shape {tuple(kspace.shape)}"
            )
        if kspace.shape.rank == 3:
            smaps = None
        elif smaps is None and self.needs_smaps:
            raise DataError(
                f"{name}: multi-coil k-space needs coil sensitivity maps: call it with (kspace, mask, smaps)"
            )
        encoding = CartesianEncoding(tf.cast(mask, tf.float32), smaps)
        measured = apply_mask(kspace, encoding.mask)
        if self.phase_normalization:
            measured = remove_global_phase(measured, encoding.unmasked.adjoint(measured))
        return measured, encoding

    def output_image(self, image):
        """Magnitude of a complex image (or a magnitude image), as float32, center-cropped.

        Args:
            image: complex64 or float ``(batch, H, W)``.

        Returns:
            float32 ``(batch, h, w)``.
        """
        image = tf.abs(image) if image.dtype.is_complex else tf.cast(image, tf.float32)
        return image if self.crop_size is None else center_crop(image, self.crop_size)

    def get_config(self):
        return {**super().get_config(), "crop_size": self.crop_size, "phase_normalization": self.phase_normalization}
