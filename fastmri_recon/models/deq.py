"""DEQ-XPDNet: the primal-only XPDNet (`xpdnet`) as a deep-equilibrium model with SHINE gradients.

Instead of ``n_iter`` unrolled iterations, each with its own denoiser, one weight-shared primal
iteration ``f`` is iterated to its fixed point ``z* = f(z*, x)`` by `implicit.deq.DEQ` (Broyden
forward; backward by the implicit function theorem or one of the SHINE approximations), so the
effective depth is that of the solver while the training memory is that of one iteration.

The state ``z`` is XPDNet's primal buffer of ``n_primal`` complex images, started at ``A^H y``;
the iteration feeds the denoiser ``D`` (an MWCNN, DIDN or U-net, `layers.denoisers`, of
``2 n_primal`` real output channels, wrapped by `layers.multiscale.ComplexDenoiser`) with
``[x_0, z, A^H (A z[0] - y)]`` (``x_0 = A^H y``; ``A^H (A x - y)`` the gradient of the data
consistency ``||A x - y||^2 / 2``) and returns

    f(z, x) = x_0 + D([x_0, z, A^H (A z[0] - y)]).

XPDNet's residual update ``z + D(...)`` would have the Jacobian ``I + J_D``, whose fixed points are the
zeros of ``D`` and whose implicit-gradient system ``(I - J_f)^T w = grad`` is singular while ``D`` is
small (at initialisation): anchoring the residual connection at ``x_0`` gives ``J_f = J_D``, a
contraction for a small ``D``, with ``z* = x_0`` when ``D = 0``, the same starting image as XPDNet.
The output is ``|z*[0]|``.

Defaults: 5 primal buffers and the medium MWCNN (XPDNet's, for one iteration instead of ten: 6.2 M
parameters), Broyden for at most 20 forward iterations to a relative residual of 1e-3, and the
``shine-fallback`` backward (threshold 2).
"""

import keras
import tensorflow as tf

from fastmri_recon.implicit.deq import DEQ
from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.denoisers import build_denoiser
from fastmri_recon.models.layers.multiscale import ComplexDenoiser
from fastmri_recon.models.unrolled import copies, cross_domain_step, residual_dual
from fastmri_recon.models.xpdnet import frozen_params
from fastmri_recon.ops.encoding import CartesianEncoding


@keras.saving.register_keras_serializable(package="fastmri_recon")
class PrimalIteration(keras.layers.Layer):
    """``f(z, x) = x_0 + D([x_0, z, A^H (A z[0] - y)])``: the DEQ-XPDNet iteration.

    Args:
        denoiser: a `ComplexDenoiser` (not residual) of ``n_primal`` complex output channels.

    Call args:
        z: complex64 ``(batch, H, W, n_primal)``, the primal buffer.
        x: ``(x_0, measured, mask)`` or ``(x_0, measured, mask, smaps)``: the initial image ``A^H y``
            complex64 ``(batch, H, W)``, the masked k-space complex64 ``(batch, H, W)`` or
            ``(batch, coils, H, W)``, the mask float32 ``(batch, W)`` or ``(W,)`` and the maps.

    Returns:
        complex64 ``(batch, H, W, n_primal)``.
    """

    def __init__(self, denoiser, **kwargs):
        kwargs.setdefault("dtype", "float32")  # complex data: no float16 autocasting of the mask
        super().__init__(**kwargs)
        self.denoiser = denoiser
        self.n_primal = denoiser.out_channels

    def build(self, input_shape=None):
        """Create the denoiser's weights (from ``n_primal`` only)."""
        self.denoiser.build((None, None, None, self.n_primal + 2))

    def call(self, z, x):
        image, measured, mask = x[:3]
        encoding = CartesianEncoding(mask, x[3] if len(x) > 3 else None)

        def anchored_update(primal, gradient):
            update = self.denoiser(tf.concat([image[..., None], primal, gradient[..., None]], axis=-1))
            return image[..., None] + update

        return cross_domain_step(z, None, measured, encoding, anchored_update, residual_dual)[0]

    def get_config(self):
        return {**super().get_config(), "denoiser": keras.saving.serialize_keras_object(self.denoiser)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["denoiser"] = keras.saving.deserialize_keras_object(config["denoiser"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class DEQXPDNet(ReconstructionModel):
    """Deep-equilibrium primal-only XPDNet with ``A = M F S`` (single- and multi-coil).

    Args:
        n_primal: complex images in the primal buffer.
        image_net: the denoiser, ``"mwcnn"``, ``"didn"`` or ``"unet"``.
        image_net_size: ``"small"``, ``"medium"`` or ``"big"`` (see `layers.denoisers`).
        image_net_params: denoiser constructor arguments replacing the size's, or None.
        solver: forward solver (``"broyden"``, ``"anderson"``, ``"fixed-point"``).
        max_iter: forward iterations.
        tol: forward relative tolerance.
        backward: backward mode (`implicit.backward.MODES`).
        backward_max_iter: iterations of the ``implicit`` backward solve.
        backward_tol: its relative tolerance.
        refine_iter: iterations of ``shine-refine``.
        fallback_threshold: the ``shine-fallback`` threshold.
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are required with multi-coil k-space.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.

    Raises:
        ConfigError: for an unknown denoiser, size, solver or backward mode.
    """

    def __init__(
        self,
        n_primal=5,
        image_net="mwcnn",
        image_net_size="medium",
        image_net_params=None,
        solver="broyden",
        max_iter=20,
        tol=1e-3,
        backward="shine-fallback",
        backward_max_iter=20,
        backward_tol=1e-3,
        refine_iter=5,
        fallback_threshold=2.0,
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.n_primal = n_primal
        self.image_net = image_net
        self.image_net_size = image_net_size
        self.image_net_params = frozen_params(image_net_params)
        self.solver_params = dict(
            solver=solver,
            max_iter=max_iter,
            tol=tol,
            backward=backward,
            backward_max_iter=backward_max_iter,
            backward_tol=backward_tol,
            refine_iter=refine_iter,
            fallback_threshold=fallback_threshold,
        )
        network = build_denoiser(image_net, image_net_size, 2 * n_primal, **self.image_net_params)
        self.deq = DEQ(PrimalIteration(ComplexDenoiser(network)), name="deq", **self.solver_params)

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        self.deq.function.build()
        self.deq.built = True

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        image = encoding.adjoint(measured)
        data = (image, measured, encoding.mask) + ((encoding.smaps,) if encoding.multicoil else ())
        primal = self.deq(data, z0=copies(image, self.n_primal))
        return self.output_image(primal[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "n_primal": self.n_primal,
            "image_net": self.image_net,
            "image_net_size": self.image_net_size,
            "image_net_params": self.image_net_params,
            **self.solver_params,
        }
