"""tf.data pipelines that turn directories of fastMRI HDF5 files into model-ready batches.

- `singlecoil_dataset` / `multicoil_dataset` (train and validation): ``((kspace, mask[, smaps]),
  target)`` batches, configured by `SinglecoilConfig` / `MulticoilConfig`;
- `inference_dataset` (test files with their own mask): ``(file_names, slice_indices, (kspace,
  mask[, smaps]))``, configured by `InferenceConfig`.

K-space and targets are multiplied by ``config.scale_factor`` (`DEFAULT_SCALE_FACTOR` = 1e6); divide
a model's output by it to get the files' units.
"""

from fastmri_recon.data.datasets.cartesian import multicoil_dataset, singlecoil_dataset
from fastmri_recon.data.datasets.config import (
    DEFAULT_SCALE_FACTOR,
    InferenceConfig,
    MulticoilConfig,
    SinglecoilConfig,
)
from fastmri_recon.data.datasets.inference import inference_dataset

__all__ = [
    "DEFAULT_SCALE_FACTOR",
    "InferenceConfig",
    "MulticoilConfig",
    "SinglecoilConfig",
    "inference_dataset",
    "multicoil_dataset",
    "singlecoil_dataset",
]
