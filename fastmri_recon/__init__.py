"""fastmri-recon: deep-learning MRI reconstruction in TensorFlow 2 / Keras 3.

``fastmri_recon.from_pretrained``, ``fastmri_recon.load_pretrained`` and ``fastmri_recon.from_keras2`` (`fastmri_recon.hub`) are
imported on first use, so that ``import fastmri_recon`` stays light (no TensorFlow).

Importing the package before TensorFlow turns on TensorFlow's oneDNN CPU kernels
(``TF_ENABLE_ONEDNN_OPTS=1``) unless the variable is already set: TensorFlow enables them by itself
only on CPUs with AVX-512 VNNI / BF16, AVX-VNNI or AMX, and without them the main job's training
steps on an AVX2 CPU were 1.15x (U-net) to 2.3x (Cascade-net) slower (BENCHMARKS.md).
``TF_ENABLE_ONEDNN_OPTS=0`` keeps the Eigen kernels; `fastmri_recon.training.strategy.cpu_kernels_warning`
says when they run.
"""

import os
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
"""Read once by TensorFlow when it is imported: ``1`` / ``true`` turns its oneDNN CPU kernels on, ``0`` / ``false`` off."""

if "tensorflow" not in sys.modules:
    os.environ.setdefault(ONEDNN_VARIABLE, "1")

__version__ = "0.1.0"

_LAZY = {"from_keras2", "from_pretrained", "load_pretrained"}


def __getattr__(name):
    if name in _LAZY:
        from fastmri_recon import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'fastmri_recon' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | _LAZY)
