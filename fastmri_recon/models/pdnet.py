"""Learned primal-dual (Adler & Oektem 2018, "Learned primal-dual reconstruction") adapted to
MRI, in the configuration of Ramzi et al. 2020's benchmark.

With ``buffer_init="adjoint"`` (the default) the primal buffer (``n_primal`` complex images) starts
with copies of the zero-filled image ``A^H y`` and the dual buffer (``n_dual`` complex k-spaces, per
coil for multi-coil data) with copies of the measured k-space ``y``; with ``buffer_init="zeros"``
both start at zero, as in Adler and Oektem and in the benchmark code that trained the papers' PD-net
weights (``pdnet-benchmark`` in the registry). From zeros the whole reconstruction is left to the
CNNs, which fits a few training subjects without generalising: the demo benchmark trains from the
adjoint. Each of the ``n_iter`` iterations updates the dual with
a k-space CNN of ``[dual, A primal[1], y]`` (``primal[0]`` if ``n_primal`` is 1) and the primal
with an image CNN of ``[primal, A^H dual[0]]``, both residually; the output is ``primal[0]``.
Every iteration has its own CNNs; each CNN is ``n_convs`` hidden convolutions and a linear output
one (3 layers by default).
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.unrolled import copies, primal_update, unroll

BUFFER_INITS = ("adjoint", "zeros")


def dual_update(cnn):
    """PD-net's dual step ``d <- d + cnn([d, A x, y])`` (see `models.unrolled`)."""

    def step(dual, evaluated, measured):
        return dual + cnn(tf.concat([dual, evaluated[..., None], measured[..., None]], -1))

    return step


@keras.saving.register_keras_serializable(package="fastmri_recon")
class PDNet(ReconstructionModel):
    """Unrolled learned primal-dual with the Cartesian operator ``A = M F S``.

    Args:
        n_iter: number of unrolled iterations.
        n_primal: complex images in the primal buffer.
        n_dual: complex k-spaces in the dual buffer.
        n_filters: channels of the hidden convolutions.
        n_convs: hidden convolutions per CNN (plus one linear output convolution).
        activation: activation name (see `layers.conv.get_activation`).
        buffer_init: ``"adjoint"`` (buffers start at ``A^H y`` and ``y``) or ``"zeros"``.
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are required with multi-coil k-space, whose coils the dual CNNs process one by one.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    def __init__(
        self,
        n_iter=10,
        n_primal=5,
        n_dual=5,
        n_filters=32,
        n_convs=2,
        activation="relu",
        buffer_init="adjoint",
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        if buffer_init not in BUFFER_INITS:
            raise ConfigError(f"PDNet: buffer_init must be one of {', '.join(BUFFER_INITS)}, got {buffer_init!r}")
        self.buffer_init = buffer_init
        self.n_iter = n_iter
        self.n_primal = n_primal
        self.n_dual = n_dual
        self.n_filters = n_filters
        self.n_convs = n_convs
        self.activation = activation

        def cnn(out_channels):
            return ComplexConvStack(n_convs, n_filters, out_channels, activation=activation)

        self.primal_cnns = [cnn(n_primal) for _ in range(n_iter)]
        self.dual_cnns = [cnn(n_dual) for _ in range(n_iter)]

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        for primal_cnn, dual_cnn in zip(self.primal_cnns, self.dual_cnns):
            primal_cnn.build((None, None, None, self.n_primal + 1))
            dual_cnn.build((None, None, None, self.n_dual + 2))

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        primal = copies(encoding.adjoint(measured), self.n_primal)
        dual = copies(measured, self.n_dual)
        if self.buffer_init == "zeros":
            primal, dual = tf.zeros_like(primal), tf.zeros_like(dual)
        steps = [(primal_update(p), dual_update(d)) for p, d in zip(self.primal_cnns, self.dual_cnns)]
        primal, _ = unroll(primal, dual, measured, encoding, steps, evaluated_channel=min(1, self.n_primal - 1))
        return self.output_image(primal[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "n_iter": self.n_iter,
            "n_primal": self.n_primal,
            "n_dual": self.n_dual,
            "n_filters": self.n_filters,
            "n_convs": self.n_convs,
            "activation": self.activation,
            "buffer_init": self.buffer_init,
        }
