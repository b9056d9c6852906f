"""NC-PDNet (Ramzi, Chaithya, Starck and Ciuciu 2022, "NC-PDNet: a density-compensated unrolled network
for 2D and 3D non-Cartesian MRI reconstruction"): primal-only unrolled network with the
density-compensated non-Cartesian operator.

The primal buffer holds ``n_primal`` complex images, all starting at the density-compensated adjoint
``A^H D y``. Each of the ``n_iter`` unrolled iterations computes the measurements residual
``r = A x - y`` of the current image ``x = primal[0]`` (the primal-only dual step: no k-space
network), its density-compensated back-projection ``A^H D r``, and updates the buffer residually with
the iteration's image CNN: ``primal <- primal + CNN([primal, A^H D r])``. The output is
``|primal[0]|``. ``A = F_nu S`` is the NUFFT of the coil images (`ops.encoding.NonCartesianEncoding`,
one NUFFT plan per call shared by every iteration); ``D`` is the density given as input, which the
paper found essential for non-Cartesian data (the plain adjoint over-weights the k-space centre).
Given a B0 field map and read-out times (`models.nc_base`), ``A`` includes the off-resonance phase
(time-segmented, `ops.off_resonance`).

Each CNN is ``n_convs`` hidden convolutions of ``n_filters`` channels with ReLU and a linear output
convolution (3 layers by default), on the real and imaginary parts of ``[primal, A^H D r]``; 3D
images (``image_shape`` of length 3) use ``Conv3D``. Defaults are the paper's: 10 iterations, 5
primal buffers, 32 filters.

Inputs and output: see `models.nc_base` (``(kspace, trajectory, density[, smaps])`` ->
float32 magnitude). 2D single-coil, 2D multi-coil (with maps) and 3D single-coil are the paper's
settings; 3D multi-coil works the same way.

``refine_smaps=True`` (2D multi-coil) refines the given sensitivity maps first, as XPDNet does
(`layers.coils.build_smaps_refiner`; the published multi-coil NC-PDNet has the default refiner
with a leaky-ReLU 4-channel 1x1 convolution before its output).

``operator_scale`` multiplies both operators, ``A`` and ``A^H D`` (1: the package's orthonormal
NUFFT). The benchmark code that trained the published NC-PDNet weights used tfkbnufft's ``"ortho"``
NUFFT, normalised by the 2x-oversampled grid: its operators are those of a grid ``N`` scaled by
``1 / 2`` in 2D (``2 ** -1.5`` in 3D). Its network also cropped each image to the volume's own size
``n`` inside the network, which is the package's NUFFT on the grid ``n`` with the scale
``sqrt(prod(n) / prod(N))`` times that factor (`ncpdnet-benchmark` in the registry keeps the grid).
"""

import keras

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.coils import build_smaps_refiner, refine_smaps
from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.nc_base import DEFAULT_IMAGE_SHAPE, DEFAULT_NUFFT_EPS, NonCartesianModel
from fastmri_recon.models.unrolled import copies, primal_update, residual_dual, unroll
from fastmri_recon.ops.encoding import ScaledEncoding


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NCPDNet(NonCartesianModel):
    """Density-compensated primal-only unrolled network for non-Cartesian data, 2D or 3D.

    Args:
        n_iter: number of unrolled iterations (each with its own CNN).
        n_primal: complex images in the primal buffer.
        n_filters: channels of the hidden convolutions.
        n_convs: hidden convolutions per CNN (plus one linear output convolution).
        activation: activation name (see `layers.conv.get_activation`).
        image_shape: image grid ``(H, W)`` (2D, ``Conv2D``) or ``(D, H, W)`` (3D, ``Conv3D``).
        nufft_eps: NUFFT accuracy.
        operator_scale: factor applied to the forward and adjoint operators (see the module docstring).
        refine_smaps: refine multi-coil maps with a per-coil U-net (2D only).
        smaps_refiner_params: `layers.unet.UNet` arguments of that U-net replacing the defaults, or None.
        crop_size: output size (see `NonCartesianModel`), or None.
        b0_segments: time segments of the off-resonance-aware encoding (see `NonCartesianModel`).

    Call args:
        inputs: ``(kspace, trajectory, density)`` or ``(kspace, trajectory, density, smaps)``: kspace
            complex64 ``(batch, M)`` or ``(batch, coils, M)``, trajectory float32
            ``(batch, ndim, M)``, density float32 ``(batch, M)``, smaps complex64
            ``(batch, coils, *image_shape)`` (required with multi-coil k-space); with a B0 field map
            float32 ``(batch, *image_shape)`` (Hz) and read-out times float32 ``(batch, M)`` (s)
            appended, ``A`` is the off-resonance-aware `ops.off_resonance.OffResonanceEncoding`.

    Returns:
        float32 ``(batch, h, w)`` (2D) or ``(batch, d, h, w)`` (3D) magnitude images.
    """

    def __init__(
        self,
        n_iter=10,
        n_primal=5,
        n_filters=32,
        n_convs=2,
        activation="relu",
        image_shape=DEFAULT_IMAGE_SHAPE,
        nufft_eps=DEFAULT_NUFFT_EPS,
        operator_scale=1.0,
        refine_smaps=False,
        smaps_refiner_params=None,
        crop_size=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, nufft_eps=nufft_eps, crop_size=crop_size, **kwargs)
        self.operator_scale = float(operator_scale)
        self.refine_smaps = bool(refine_smaps)
        self.smaps_refiner_params = dict(smaps_refiner_params or {})
        if self.refine_smaps:
            if self.ndim != 2:
                raise ConfigError(f"NCPDNet: refine_smaps needs 2D images, got image_shape {self.image_shape}")
            self.smaps_refiner = build_smaps_refiner(self.smaps_refiner_params)
        self.n_iter = n_iter
        self.n_primal = n_primal
        self.n_filters = n_filters
        self.n_convs = n_convs
        self.activation = activation
        self.primal_cnns = [
            ComplexConvStack(n_convs, n_filters, n_primal, activation=activation, rank=self.ndim)
            for _ in range(n_iter)
        ]

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, trajectory_shape, density_shape[, smaps_shape])``."""
        for cnn in self.primal_cnns:
            cnn.build((None,) * (self.ndim + 1) + (self.n_primal + 1,))
        if self.refine_smaps:
            self.smaps_refiner.build((None, None, None, 1))

    def prepare_smaps(self, smaps):
        """The refined maps with ``refine_smaps``, else the given ones (complex64 ``(batch, coils, H, W)``)."""
        return refine_smaps(self.smaps_refiner, smaps) if self.refine_smaps else smaps

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        if self.operator_scale != 1.0:
            encoding = ScaledEncoding(encoding, self.operator_scale)
        primal = copies(encoding.adjoint(measured), self.n_primal)
        steps = [(primal_update(cnn), residual_dual) for cnn in self.primal_cnns]
        primal, _ = unroll(primal, None, measured, encoding, steps)
        return self.output_image(primal[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "n_iter": self.n_iter,
            "n_primal": self.n_primal,
            "n_filters": self.n_filters,
            "n_convs": self.n_convs,
            "activation": self.activation,
            "operator_scale": self.operator_scale,
            "refine_smaps": self.refine_smaps,
            "smaps_refiner_params": self.smaps_refiner_params,
        }
