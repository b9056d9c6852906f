"""Figures: reconstructions and error maps of several methods side by side; convergence curves."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastmri_recon.files import atomic_path  # noqa: E402


TITLE_WIDTH = 16
"""Characters per line of a method's name above its image (longer names wrap at their hyphens)."""


def _wrapped(name):
    """A method name broken into lines of at most `TITLE_WIDTH` characters, at hyphens where it can."""
    return "\n".join(textwrap.wrap(name.replace("-", "- "), TITLE_WIDTH)).replace("- ", "-")


def comparison_figure(path, target, reconstructions, title=None):
    """Write a PNG with the target, each reconstruction, and each absolute error map.

    One column per method (readable for up to eight methods: names wrap, the error maps share
    one colour bar); the first column holds the target.

    Args:
        path: output ``.png`` path (written atomically).
        target: float ``(h, w)`` ground-truth image.
        reconstructions: dict method name -> float ``(h, w)`` image (same size as ``target``).
        title: optional figure title.

    Returns:
        the written path.
    """
    fig = comparison(target, reconstructions, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def comparison(target, reconstructions, title=None):
    """The figure of `comparison_figure` (a ``matplotlib.figure.Figure``, not closed)."""
    names = list(reconstructions)
    columns = len(names) + 1
    fig, axes = plt.subplots(2, columns, figsize=(2.4 * columns + 1.0, 5.6), squeeze=False, layout="constrained")
    vmax = float(target.max())
    error_max = max(float(np.abs(reconstructions[n] - target).max()) for n in names) or 1.0
    axes[0, 0].imshow(target, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("target", fontsize=9)
    axes[1, 0].text(0.5, 0.5, "absolute error\n(one colour scale)", ha="center", va="center", fontsize=9)
    for column, name in enumerate(names, start=1):
        image = reconstructions[name]
        axes[0, column].imshow(image, cmap="gray", vmin=0, vmax=vmax)
        axes[0, column].set_title(_wrapped(name), fontsize=9)
        errors = axes[1, column].imshow(np.abs(image - target), cmap="inferno", vmin=0, vmax=error_max)
    fig.colorbar(errors, ax=axes[1, 1:].tolist(), shrink=0.8)
    for axis in axes.ravel():
        axis.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def curves_figure(path, curves, xlabel, ylabel, title=None, logx=False, logy=False, reference=None):
    """Write a PNG with one line per method (convergence curves, timings).

    Args:
        path: output ``.png`` path (written atomically).
        curves: dict method name -> ``(x, y)`` sequences of equal length.
        xlabel, ylabel: axis labels.
        title: optional figure title.
        logx, logy: logarithmic axes.
        reference: optional ``(label, value)`` drawn as a dashed horizontal line.

    Returns:
        the written path.
    """
    fig, axis = plt.subplots(figsize=(6.4, 4.2))
    for name, (x, y) in curves.items():
        axis.plot(x, y, marker=".", markersize=3, linewidth=1.2, label=name)
    if reference is not None:
        axis.axhline(reference[1], color="black", linestyle="--", linewidth=0.8, label=reference[0])
    axis.set_xscale("log" if logx else "linear")
    axis.set_yscale("log" if logy else "linear")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
