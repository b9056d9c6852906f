"""The registry: every reconstruction model and baseline the commands know, by name.

Each entry maps a name (as typed on the command line) to the ``keras.Model`` subclass that
implements it and its kind (``model``: learned, ``baseline``: classical). Every entry is built as
``cls(crop_size=..., **config)`` and called as ``model((kspace, mask[, smaps]))``, so one
evaluation loop serves models and baselines alike. Classes are imported on first use.

Single- or multi-coil is not part of an entry: every model reads it from the rank of the k-space
it is called with, and a class whose ``needs_smaps`` is true needs the coil sensitivity maps with
multi-coil k-space (`models.base`).
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
    """

    name: str
    kind: str
    target: str
    summary: str

    def load_class(self):
        """Import and return the implementing class."""
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)


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
        ),
        Entry(
            "cascade-net",
            "model",
            "fastmri_recon.models.cascade:CascadeNet",
            "5 residual image CNNs (5 x 48-filter convolutions) with k-space data consistency",
        ),
        Entry(
            "kiki-net",
            "model",
            "fastmri_recon.models.kiki:KIKINet",
            "2 iterations of k-space and image CNNs (16 x 48-filter convolutions) with data consistency",
        ),
        Entry(
            "pdnet",
            "model",
            "fastmri_recon.models.pdnet:PDNet",
            "learned primal-dual: 10 unrolled iterations of image and k-space CNNs (32 filters)",
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
        **config: constructor arguments overriding the defaults.

    Returns:
        keras.Model.
    """
    return get_entry(name).load_class()(crop_size=crop_size, **config)
