"""The image denoisers of XPDNet and their small / medium / big sizes.

Sizes follow the XPDNet benchmark's (Ramzi et al. 2020-2021, the ``proposed_params`` of
fastmri-reproducible-benchmark). Parameter counts are for XPDNet's default image step (12 real
input channels: 5 primal buffers and the data-consistency gradient; 10 output channels), as
printed by this module's layers:

| denoiser | size | configuration | parameters |
|---|---|---|---|
| MWCNN | small | 2 scales of 32, 64 filters, 2 convs per scale and side; 2 x 32 full-resolution convs | 338,122 |
| MWCNN | medium | 3 scales of 64, 128, 256 filters, 3 convs; 2 x 32 full-resolution convs | 6,217,930 |
| MWCNN | big | 3 scales of 128, 256, 512 filters, 3 convs; 3 x 64 full-resolution convs | 24,932,746 |
| DIDN | small | 32 filters, 2 down-up blocks of 3 scales, 2 reconstruction convs | 867,642 |
| DIDN | medium | 64 filters, 2 blocks, 2 reconstruction convs | 3,455,594 |
| DIDN | big | 128 filters, 4 blocks, 2 reconstruction convs | 26,977,226 |
| U-net | small | 3 levels of 16, 32, 64 filters, 1 conv per level and side | 58,426 |
| U-net | medium | 4 levels of 16, 32, 64, 128 filters, 2 convs | 483,482 |
| U-net | big | 4 levels of 32, 64, 128, 256 filters, 2 convs | 1,928,490 |

The MWCNN counts equal the benchmark's (``experiments/n_params_model.csv`` there). Its U-net counts
(58,536 / 483,592 / 1,928,600) are 110 higher, the size of one more 1x1 convolution of 10 to 10
channels. Its DIDN counts (865,264 / 3,450,848 for small / medium) are 0.1-0.3 % lower than these, by
an amount linear in the filters (bias / PReLU-sized terms), a difference not traced.
"""

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.didn import DIDN
from fastmri_recon.models.layers.mwcnn import MWCNN
from fastmri_recon.models.layers.unet import UNet

DENOISERS = {"mwcnn": MWCNN, "didn": DIDN, "unet": UNet}
SIZES = {
    "mwcnn": {
        "small": dict(filters=(32, 64), n_convs=2, first_filters=32, n_first_convs=2),
        "medium": dict(filters=(64, 128, 256), n_convs=3, first_filters=32, n_first_convs=2),
        "big": dict(filters=(128, 256, 512), n_convs=3, first_filters=64, n_first_convs=3),
    },
    "didn": {
        "small": dict(filters=32, n_dubs=2, n_recon_convs=2, n_scales=3),
        "medium": dict(filters=64, n_dubs=2, n_recon_convs=2, n_scales=3),
        "big": dict(filters=128, n_dubs=4, n_recon_convs=2, n_scales=3),
    },
    "unet": {
        "small": dict(filters=(16, 32, 64), n_convs=1),
        "medium": dict(filters=(16, 32, 64, 128), n_convs=2),
        "big": dict(filters=(32, 64, 128, 256), n_convs=2),
    },
}


def build_denoiser(name, size="medium", out_channels=1, **overrides):
    """A denoiser layer on real channels at one of the XPDNet sizes.

    Args:
        name: ``"mwcnn"``, ``"didn"`` or ``"unet"``.
        size: ``"small"``, ``"medium"`` or ``"big"`` (see the module's table).
        out_channels: real output channels.
        **overrides: constructor arguments replacing the size's.

    Returns:
        keras.layers.Layer: an `MWCNN`, `DIDN` or `UNet`.

    Raises:
        ConfigError: for an unknown denoiser or size.
    """
    if name not in DENOISERS or size not in SIZES.get(name, {}):
        raise ConfigError(
            f"unknown denoiser {name!r} of size {size!r} (denoisers: {', '.join(DENOISERS)}; sizes: small, medium, big)"
        )
    return DENOISERS[name](out_channels=out_channels, **{**SIZES[name][size], **overrides})
