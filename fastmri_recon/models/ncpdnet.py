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

Each CNN is ``n_convs`` hidden convolutions of ``n_filters`` channels with ReLU and a linear output
convolution (3 layers by default), on the real and imaginary parts of ``[primal, A^H D r]``; 3D
images (``image_shape`` of length 3) use ``Conv3D``. Defaults are the paper's: 10 iterations, 5
primal buffers, 32 filters.

Inputs and output: see `models.nc_base` (``(kspace, trajectory, density[, smaps])`` ->
float32 magnitude). 2D single-coil, 2D multi-coil (with maps) and 3D single-coil are the paper's
settings; 3D multi-coil works the same way.
"""

import keras
import tensorflow as tf

from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.nc_base import DEFAULT_IMAGE_SHAPE, DEFAULT_NUFFT_EPS, NonCartesianModel


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
        crop_size: output size (see `NonCartesianModel`), or None.

    Call args:
        inputs: ``(kspace, trajectory, density)`` or ``(kspace, trajectory, density, smaps)``: kspace
            complex64 ``(batch, M)`` or ``(batch, coils, M)``, trajectory float32
            ``(batch, ndim, M)``, density float32 ``(batch, M)``, smaps complex64
            ``(batch, coils, *image_shape)`` (required with multi-coil k-space).

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
        crop_size=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, nufft_eps=nufft_eps, crop_size=crop_size, **kwargs)
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

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        image = encoding.adjoint(measured)
        primal = tf.tile(image[..., None], [1] * (self.ndim + 1) + [self.n_primal])
        for cnn in self.primal_cnns:
            residual = encoding.forward(primal[..., 0]) - measured
            gradient = encoding.adjoint(residual)
            primal = primal + cnn(tf.concat([primal, gradient[..., None]], axis=-1))
        return self.output_image(primal[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "n_iter": self.n_iter,
            "n_primal": self.n_primal,
            "n_filters": self.n_filters,
            "n_convs": self.n_convs,
            "activation": self.activation,
        }
