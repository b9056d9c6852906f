"""fastmri-recon: deep-learning MRI reconstruction in TensorFlow 2 / Keras 3.

``fastmri_recon.from_pretrained``, ``fastmri_recon.load_pretrained`` and ``fastmri_recon.from_keras2`` (`fastmri_recon.hub`) are
imported on first use, so that ``import fastmri_recon`` stays light (no TensorFlow).
"""

__version__ = "0.1.0"

_LAZY = {"from_keras2", "from_pretrained", "load_pretrained"}


def __getattr__(name):
    if name in _LAZY:
        from fastmri_recon import hub

        return getattr(hub, name)
    raise AttributeError(f"module 'fastmri_recon' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | _LAZY)
