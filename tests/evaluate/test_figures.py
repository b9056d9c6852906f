"""The reconstruction figure stays readable with many methods of long names."""

import itertools

import matplotlib.pyplot as plt
import numpy as np

import pytest

from fastmri_recon.evaluate.figures import comparison, comparison_figure

NAMES = ["zero-filled", "cs-wavelet", "unet-fastmri", "kiki-net-fastmri", "cascade-net-fastmri", "pdnet-fastmri",
         "xpdnet-brain-af4", "runs/e2e-varnet_multicoil_equispaced_fraction_x4"]


@pytest.mark.slow
def test_eight_method_titles_do_not_overlap(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.random((32, 32))
    recons = {name: target + 0.1 * rng.random((32, 32)) for name in NAMES}
    fig = comparison(target, recons, "demo_001.h5, slice 4")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [axis.title.get_window_extent(renderer) for axis in fig.axes[: len(NAMES) + 1]]
    for a, b in itertools.combinations(titles, 2):
        assert not a.overlaps(b)
    plt.close(fig)
    assert comparison_figure(tmp_path / "f.png", target, recons).stat().st_size > 0
