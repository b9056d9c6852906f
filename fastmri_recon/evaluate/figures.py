"""Figures: reconstructions and error maps of several methods side by side."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastmri_recon.files import atomic_path  # noqa: E402


def comparison_figure(path, target, reconstructions, title=None):
    """Write a PNG with the target, each reconstruction, and each absolute error map.

    Args:
        path: output ``.png`` path (written atomically).
        target: float ``(h, w)`` ground-truth image.
        reconstructions: dict method name -> float ``(h, w)`` image (same size as ``target``).
        title: optional figure title.

    Returns:
        the written path.
    """
    names = list(reconstructions)
    columns = len(names) + 1
    fig, axes = plt.subplots(2, columns, figsize=(2.6 * columns, 5.4), squeeze=False)
    vmax = float(target.max())
    error_max = max(float(np.abs(reconstructions[n] - target).max()) for n in names) or 1.0
    axes[0, 0].imshow(target, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("target")
    for column, name in enumerate(names, start=1):
        image = reconstructions[name]
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        axes[0, column].set_title(name)
        errors = axes[1, column].imshow(np.abs(image - target), cmap="inferno", vmin=0, vmax=error_max)
        axes[1, column].set_title(f"|error| {name}", fontsize=8)
    fig.colorbar(errors, ax=axes[1, 1:].tolist(), shrink=0.8)
    for axis in axes.ravel():
        axis.set_axis_off()
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
