"""The density-compensated adjoint: the non-Cartesian counterpart of the zero-filled reconstruction."""

import keras

from fastmri_recon.models.layers.coils import rss
from fastmri_recon.models.nc_base import NonCartesianModel


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NCAdjoint(NonCartesianModel):
    """Density-compensated adjoint ``|A^H D y|`` with the non-Cartesian models' interface; no weights.

    Single-coil: ``|F_nu^H D y|``. Multi-coil with maps: ``|S^H F_nu^H D y|``; without maps: the
    root-sum-of-squares of the coil images ``F_nu^H D y_c``.

    Args:
        image_shape: image grid ``(H, W)`` or ``(D, H, W)``.
        nufft_eps: NUFFT accuracy.
        crop_size: output size, or None (see `models.nc_base.NonCartesianModel`).

    Call args:
        inputs: ``(kspace, trajectory, density[, smaps])`` (see `models.nc_base`).

    Returns:
        float32 ``(batch, h, w)`` or ``(batch, d, h, w)`` magnitude images.
    """

    needs_smaps = False

    def build(self, input_shape):
        """No weights to create."""
        self.built = True

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        if measured.shape.rank == 3 and not encoding.multicoil:  # multi-coil without maps
            return self.output_image(rss(encoding.coil_adjoint(measured)))
        return self.output_image(encoding.adjoint(measured))
