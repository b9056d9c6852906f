"""XPDNet (Ramzi, Ciuciu and Starck 2021, "XPDNet for MRI reconstruction: an application to the 2020
fastMRI challenge"): learned primal-dual (`pdnet.PDNet`) with a multiscale image denoiser.

The primal buffer holds ``n_primal`` complex images, all starting at ``A^H y``. Each of the ``n_iter``
unrolled iterations computes the measurements residual ``r = A x - y`` of the current image
``x = primal[0]`` and updates the primal buffer with the iteration's denoiser of
``[primal, A^H r]`` (``A^H r`` is the gradient of the data-consistency term ``||A x - y||^2 / 2``),
residually: ``primal <- primal + D([primal, A^H r])``. The output is ``|primal[0]|``.

- ``primal_only=True`` (the paper's XPDNet) has no k-space network: the dual step is the residual.
  ``primal_only=False`` adds one k-space CNN per iteration (`layers.conv.ComplexConvStack`, applied
  to each coil's k-space with shared weights) that corrects the residual:
  ``r <- r + K([r, A x, y])``.
- The denoiser ``D`` is an MWCNN, a DIDN or a U-net of a small / medium / big size
  (`layers.denoisers`), wrapped to act on complex images of any size
  (`layers.multiscale.ComplexDenoiser`).
- ``refine_smaps=True`` (multi-coil) first refines the given sensitivity maps with a small residual
  U-net (3 levels of 4, 8, 16 filters, 2 convolutions each, leaky ReLU; ``smaps_refiner_params``
  replaces these `layers.unet.UNet` arguments) applied to each coil's map, and renormalises them by
  their root-sum-of-squares over coils.
- The denoisers' inputs are zero-padded to a multiple of the denoiser's pooling factor, the odd pixel
  at the end; the benchmark's code pads to ``2 ** n_scales`` (``pad_multiple=16`` for its MWCNNs)
  with the odd pixel at the start (``odd_padding="start"``), which changes the output near the edges.

Defaults: 10 iterations and 5 primal buffers, as the paper's denoiser study, with the medium MWCNN
(62.2 M parameters; the benchmark's training script defaulted to the big one, ``image_net_size="big"``,
249 M). The fastMRI 2020 brain challenge model (``xpdnet-challenge`` in the registry, the published
``XPDNet-brain-af4`` weights) unrolls 25 iterations of a medium MWCNN without biases but in its
output convolution, with the big map refiner (4 levels of 8-64 filters and a leaky-ReLU 4-channel
1x1 convolution before the output one), ``pad_multiple=16`` and ``odd_padding="start"``.
"""

import keras

from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.coils import build_smaps_refiner, refine_smaps
from fastmri_recon.models.layers.conv import ComplexConvStack
from fastmri_recon.models.layers.denoisers import build_denoiser
from fastmri_recon.models.layers.multiscale import ComplexDenoiser
from fastmri_recon.models.unrolled import copies, corrected_residual_dual, primal_update, residual_dual, unroll
from fastmri_recon.ops.encoding import CartesianEncoding

KSPACE_NET_DEFAULTS = dict(n_convs=2, n_filters=32, activation="relu")


def frozen_params(params):
    """A copy of ``params`` with lists as tuples (configs compare equal after a JSON round trip)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in (params or {}).items()}


@keras.saving.register_keras_serializable(package="fastmri_recon")
class XPDNet(ReconstructionModel):
    """Unrolled primal(-dual) network with a multiscale image denoiser and ``A = M F S``.

    Args:
        n_iter: number of unrolled iterations (each with its own networks).
        n_primal: complex images in the primal buffer.
        image_net: the denoiser, ``"mwcnn"``, ``"didn"`` or ``"unet"``.
        image_net_size: ``"small"``, ``"medium"`` or ``"big"`` (see `layers.denoisers`).
        image_net_params: denoiser constructor arguments replacing the size's, or None.
        primal_only: no k-space network (the dual step is the measurements residual).
        kspace_net_params: `ComplexConvStack` arguments of the k-space networks (``n_convs``,
            ``n_filters``, ``activation``, ...; defaults 2, 32, ``"relu"``), used when
            ``primal_only`` is False.
        refine_smaps: refine multi-coil sensitivity maps with a per-coil U-net.
        smaps_refiner_params: `layers.unet.UNet` arguments of that U-net replacing the defaults
            (`layers.coils.SMAPS_REFINER`), or None.
        pad_multiple: the multiple the denoisers' inputs are zero-padded to (None: the denoiser's
            pooling factor); the map refiner pads to its U-net's own.
        odd_padding: where an odd padding's extra pixel goes, ``"end"`` or ``"start"``.
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are required with multi-coil k-space.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.

    Raises:
        ConfigError: for an unknown denoiser or size.
    """

    def __init__(
        self,
        n_iter=10,
        n_primal=5,
        image_net="mwcnn",
        image_net_size="medium",
        image_net_params=None,
        primal_only=True,
        kspace_net_params=None,
        refine_smaps=False,
        smaps_refiner_params=None,
        pad_multiple=None,
        odd_padding="end",
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.n_iter = n_iter
        self.n_primal = n_primal
        self.image_net = image_net
        self.image_net_size = image_net_size
        self.image_net_params = frozen_params(image_net_params)
        self.primal_only = primal_only
        self.kspace_net_params = frozen_params(kspace_net_params)
        self.refine_smaps = refine_smaps
        self.smaps_refiner_params = frozen_params(smaps_refiner_params)
        self.pad_multiple = pad_multiple
        self.odd_padding = odd_padding
        padding = dict(pad_multiple=pad_multiple, odd_padding=odd_padding)

        def denoiser():
            network = build_denoiser(image_net, image_net_size, 2 * n_primal, **self.image_net_params)
            return ComplexDenoiser(network, residual=True, **padding)

        self.image_nets = [denoiser() for _ in range(n_iter)]
        kspace_params = {**KSPACE_NET_DEFAULTS, **self.kspace_net_params, "out_channels": 1}
        self.kspace_nets = [] if primal_only else [ComplexConvStack(**kspace_params) for _ in range(n_iter)]
        if refine_smaps:
            self.smaps_refiner = build_smaps_refiner(self.smaps_refiner_params, odd_padding)

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(kspace_shape, mask_shape[, smaps_shape])``."""
        for image_net in self.image_nets:
            image_net.build((None, None, None, self.n_primal + 1))
        for kspace_net in self.kspace_nets:
            kspace_net.build((None, None, None, 3))
        if self.refine_smaps:
            self.smaps_refiner.build((None, None, None, 1))

    def call(self, inputs):
        measured, encoding = self.parse_inputs(inputs)
        if encoding.multicoil and self.refine_smaps:
            encoding = CartesianEncoding(encoding.mask, refine_smaps(self.smaps_refiner, encoding.smaps))
        primal = copies(encoding.adjoint(measured), self.n_primal)
        dual_steps = [corrected_residual_dual(net) for net in self.kspace_nets] or [residual_dual] * self.n_iter
        steps = [(primal_update(net, residual=False), dual) for net, dual in zip(self.image_nets, dual_steps)]
        primal, _ = unroll(primal, None, measured, encoding, steps)
        return self.output_image(primal[..., 0])

    def get_config(self):
        return {
            **super().get_config(),
            "n_iter": self.n_iter,
            "n_primal": self.n_primal,
            "image_net": self.image_net,
            "image_net_size": self.image_net_size,
            "image_net_params": self.image_net_params,
            "primal_only": self.primal_only,
            "kspace_net_params": self.kspace_net_params,
            "refine_smaps": self.refine_smaps,
            "smaps_refiner_params": self.smaps_refiner_params,
            "pad_multiple": self.pad_multiple,
            "odd_padding": self.odd_padding,
        }
