"""The registry: every reconstruction model and baseline the commands know, by name.

Each entry maps a name (as typed on the command line) to the ``keras.Model`` subclass that
implements it, its kind (``model``: learned, ``baseline``: classical) and the constructor arguments
that make it a preset of its class (``xpdnet-didn`` is `XPDNet` with ``image_net="didn"``). Every
entry is built as ``cls(crop_size=..., **{**defaults, **config})`` and called as
``model((kspace, mask[, smaps]))``, so one evaluation loop serves models and baselines alike.
Classes are imported on first use.

Every model entry also declares ``tiny``, a small configuration of it (constructor arguments over
``defaults``) that builds, runs and trains in seconds on inputs of a few tens of pixels, for tests
and examples: ``build(name, **get_entry(name).tiny)``; so does the non-Cartesian adjoint baseline,
whose default grid is large. The model tests run one contract over every entry that has one.

Single- or multi-coil is not part of an entry: every model reads it from the rank of the k-space
it is called with, and a class whose ``needs_smaps`` is true needs the coil sensitivity maps with
multi-coil k-space (`models.base`).

Acquisition: entries with ``acquisition="noncartesian"`` (NC-PDNet, its baselines) are
called as ``model((kspace, trajectory, density[, smaps]))`` instead (`models.nc_base`), take their
image grid as ``image_shape``, and need the non-Cartesian pipelines: ``train`` and ``evaluate`` pick
the pipeline from the entry's ``acquisition`` (``"cartesian"`` by default).
"""

import dataclasses
import difflib
import importlib

from fastmri_recon.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered reconstruction method.

    Attributes:
        name: the name used on the command line.
        kind: ``"model"`` or ``"baseline"``.
        target: ``"module:Class"`` of the implementation.
        summary: a one-line description.
        defaults: constructor arguments of the preset (empty: the class's defaults).
        acquisition: ``"cartesian"`` (inputs ``(kspace, mask[, smaps])``) or ``"noncartesian"``
            (inputs ``(kspace, trajectory, density[, smaps])``); the class's ``acquisition``.
        tiny: a small configuration (constructor arguments over ``defaults``; non-Cartesian ones
            set a small ``image_shape``), or None; every model entry has one.
    """

    name: str
    kind: str
    target: str
    summary: str
    defaults: dict = dataclasses.field(default_factory=dict, hash=False)
    acquisition: str = "cartesian"
    tiny: dict | None = dataclasses.field(default=None, hash=False)

    def load_class(self):
        """Import and return the implementing class."""
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


XPDNET_CHALLENGE = {
    "n_iter": 25,
    "image_net": "mwcnn",
    "image_net_size": "medium",
    "refine_smaps": True,
    "smaps_refiner_params": {
        "filters": (8, 16, 32, 64),
        "n_convs": 2,
        "activation": "lrelu",
        "penultimate_channels": 4,
        "penultimate_activation": "lrelu",
    },
    "pad_multiple": 16,
    "odd_padding": "start",
}
"""XPDNet's configuration in the fastMRI 2020 brain challenge (the ``XPDNet-brain-af4`` model card)."""

TINY_UNET = {"filters": (4, 8, 8), "n_convs": 1}
TINY_KIKI = {"n_iter": 2, "n_convs": 2, "n_filters": 4}
TINY_PDNET = {"n_iter": 2, "n_primal": 2, "n_dual": 2, "n_filters": 4}
TINY_MWCNN = {"filters": (4, 8), "n_convs": 1, "first_filters": 4, "n_first_convs": 1}
TINY_XPDNET = {"n_iter": 2, "n_primal": 2, "image_net_params": TINY_MWCNN}
TINY_NCPDNET = {"n_iter": 2, "n_primal": 2, "n_filters": 4, "image_shape": (16, 16)}
"""Tiny configurations shared by presets of one class (`Entry.tiny`)."""

ENTRIES = {
    entry.name: entry
    for entry in (
        Entry(
            "zero-filled",
            "baseline",
            "fastmri_recon.baselines.zero_filled:ZeroFilled",
            "inverse FFT of the undersampled k-space (root-sum-of-squares over coils)",
        ),
        Entry(
            "cs-wavelet",
            "baseline",
            "fastmri_recon.baselines.cs_wavelet:CSWavelet",
            "compressed sensing: wavelet l1 prior solved by FISTA (multi-coil with sensitivities)",
        ),
        Entry(
            "sense",
            "baseline",
            "fastmri_recon.baselines.sense:Sense",
            "CG-SENSE: least squares with coil sensitivities by conjugate gradient",
        ),
        Entry(
            "grappa",
            "baseline",
            "fastmri_recon.baselines.grappa:Grappa",
            "GRAPPA: k-space interpolation calibrated on the auto-calibration lines (multi-coil)",
        ),
        Entry(
            "unet",
            "model",
            "fastmri_recon.models.unet:UNetPostProcessing",
            "U-net (4 levels, 16-128 filters) correcting the zero-filled magnitude image",
            tiny=TINY_UNET,
        ),
        Entry(
            "unet-benchmark",
            "model",
            "fastmri_recon.models.unet:UNetPostProcessing",
            "the benchmark code's U-net (its published weights): per-slice standardised input, no residual, "
            "linear 4-channel 1x1 convolution before the output",
            {"residual": False, "standardize": True, "penultimate_channels": 4},
            tiny=TINY_UNET,
        ),
        Entry(
            "cascade-net",
            "model",
            "fastmri_recon.models.cascade:CascadeNet",
            "5 residual image CNNs (5 x 48-filter convolutions) with k-space data consistency",
            tiny={"n_cascades": 2, "n_convs": 2, "n_filters": 4},
        ),
        Entry(
            "kiki-net",
            "model",
            "fastmri_recon.models.kiki:KIKINet",
            "2 iterations of k-space and image CNNs (16 x 48-filter convolutions) with data consistency",
            tiny=TINY_KIKI,
        ),
        Entry(
            "kiki-net-benchmark",
            "model",
            "fastmri_recon.models.kiki:KIKINet",
            "the benchmark code's KIKI-net (its published weights): no data consistency after the last I-net",
            {"final_data_consistency": False},
            tiny=TINY_KIKI,
        ),
        Entry(
            "pdnet",
            "model",
            "fastmri_recon.models.pdnet:PDNet",
            "learned primal-dual: 10 unrolled iterations of image and k-space CNNs (32 filters)",
            tiny=TINY_PDNET,
        ),
        Entry(
            "pdnet-benchmark",
            "model",
            "fastmri_recon.models.pdnet:PDNet",
            "the benchmark code's PD-net (its published weights): primal and dual buffers start at zero",
            {"buffer_init": "zeros"},
            tiny=TINY_PDNET,
        ),
        Entry(
            "xpdnet",
            "model",
            "fastmri_recon.models.xpdnet:XPDNet",
            "XPDNet: 10 unrolled primal-only iterations, 5 image buffers, medium MWCNN denoiser",
            tiny=TINY_XPDNET,
        ),
        Entry(
            "xpdnet-didn",
            "model",
            "fastmri_recon.models.xpdnet:XPDNet",
            "XPDNet with a medium DIDN denoiser (64 filters, 2 down-up blocks)",
            {"image_net": "didn"},
            tiny={**TINY_XPDNET, "image_net_params": {"filters": 4, "n_dubs": 1, "n_scales": 2}},
        ),
        Entry(
            "xpdnet-unet",
            "model",
            "fastmri_recon.models.xpdnet:XPDNet",
            "XPDNet with a medium U-net denoiser (4 levels, 16-128 filters)",
            {"image_net": "unet"},
            tiny={**TINY_XPDNET, "image_net_params": {"filters": (4, 8), "n_convs": 1}},
        ),
        Entry(
            "xpdnet-challenge",
            "model",
            "fastmri_recon.models.xpdnet:XPDNet",
            "XPDNet of the fastMRI 2020 brain challenge (its published weights): 25 iterations, medium MWCNN, "
            "big map refiner",
            XPDNET_CHALLENGE,
            tiny={
                **TINY_XPDNET,
                "smaps_refiner_params": {
                    "filters": (2, 4),
                    "n_convs": 1,
                    "activation": "lrelu",
                    "penultimate_channels": 2,
                    "penultimate_activation": "lrelu",
                },
            },
        ),
        Entry(
            "e2e-varnet",
            "model",
            "fastmri_recon.models.varnet:E2EVarNet",
            "E2E-VarNet (fastMRI): 12 cascades of U-nets (18 channels, 4 pools), map estimation; multi-coil",
            tiny={"n_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1},
        ),
        Entry(
            "deq-xpdnet",
            "model",
            "fastmri_recon.models.deq:DEQXPDNet",
            "DEQ-XPDNet: fixed point of one shared XPDNet iteration (medium MWCNN), Broyden, SHINE-fallback backward",
            tiny={"n_primal": 2, "image_net_params": TINY_MWCNN, "max_iter": 4, "backward_max_iter": 4},
        ),
        Entry(
            "nc-adjoint",
            "baseline",
            "fastmri_recon.baselines.nc_adjoint:NCAdjoint",
            "non-Cartesian: density-compensated adjoint NUFFT (2D / 3D; coil-combined with maps, else RSS)",
            acquisition="noncartesian",
            tiny={"image_shape": (16, 16)},
        ),
        Entry(
            "ncpdnet",
            "model",
            "fastmri_recon.models.ncpdnet:NCPDNet",
            "NC-PDNet: 10 primal-only iterations with the density-compensated NUFFT, 5 buffers, 32 filters (2D)",
            acquisition="noncartesian",
            tiny=TINY_NCPDNET,
        ),
        Entry(
            "ncpdnet-3d",
            "model",
            "fastmri_recon.models.ncpdnet:NCPDNet",
            "NC-PDNet on 176 x 256 x 256 volumes (Conv3D), as the paper's 3D experiments",
            {"image_shape": (176, 256, 256)},
            acquisition="noncartesian",
            tiny={**TINY_NCPDNET, "image_shape": (8, 8, 8)},
        ),
        Entry(
            "ncpdnet-benchmark",
            "model",
            "fastmri_recon.models.ncpdnet:NCPDNet",
            "the benchmark code's NC-PDNet (its published weights): NUFFT scaled by 1/2 as tfkbnufft's",
            {"operator_scale": 0.5},
            acquisition="noncartesian",
            tiny=TINY_NCPDNET,
        ),
        Entry(
            "nc-unet",
            "model",
            "fastmri_recon.models.unet:NCUNet",
            "non-Cartesian: U-net (4 levels, 16-128 filters) correcting the density-compensated adjoint (2D)",
            acquisition="noncartesian",
            tiny={"filters": (4, 8), "n_convs": 1, "image_shape": (16, 16)},
        ),
    )
}


def get_entry(name):
    """The `Entry` registered under ``name``.

    Raises:
        ConfigError: for an unknown name, listing close matches or the known names.
    """
    if name in ENTRIES:
        return ENTRIES[name]
    close = difflib.get_close_matches(name, ENTRIES, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(ENTRIES))}"
    raise ConfigError(f"unknown model '{name}' ({hint})")


def build(name, crop_size=None, **config):
    """Build the registered model or baseline ``name``.

    Args:
        name: a registered name.
        crop_size: in-plane output size ``(h, w)`` or None.
        **config: constructor arguments overriding the entry's and the class's defaults.

    Returns:
        keras.Model.
    """
    entry = get_entry(name)
    return entry.load_class()(crop_size=crop_size, **{**entry.defaults, **config})


def count_parameters(name, size=32):
    """Number of weights of the registered ``name`` at its default configuration (0 for baselines).

    The model is called once on a dummy input, so that it is built exactly as in use: zero
    single-coil k-space ``(1, size, size)`` with a full mask, or for multi-coil-only classes zero
    multi-coil k-space ``(1, 2, size, size)`` (with uniform maps if the class needs them).
    Non-Cartesian entries are built on a ``size x size`` grid (``8^3`` for 3D ones) and called on
    `nc_base.dummy_inputs`.

    Args:
        name: a registered name.
        size: in-plane size of the dummy input.

    Returns:
        int.
    """
    import numpy as np

    if get_entry(name).acquisition == "noncartesian":  # weights do not depend on the grid: build on a small one
        from fastmri_recon.models.nc_base import dummy_inputs

        shape = (size, size) if len(build(name).image_shape) == 2 else (min(size, 8),) * 3
        model = build(name, image_shape=shape)
        model(dummy_inputs(shape, model.multicoil_only))
        return model.count_params()
    model = build(name)
    multicoil = model.multicoil_only
    shape = (1, 2, size, size) if multicoil else (1, size, size)
    inputs = (np.zeros(shape, np.complex64), np.ones((1, size), np.float32))
    if multicoil and model.needs_smaps:
        inputs += (np.full(shape, 2**-0.5, np.complex64),)
    model(inputs)
    return model.count_params()

