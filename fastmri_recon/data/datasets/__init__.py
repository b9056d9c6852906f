"""tf.data pipelines that turn directories of fastMRI HDF5 files into model-ready batches.

- `singlecoil_dataset` / `multicoil_dataset` (train and validation): ``((kspace, mask[, smaps]),
  target)`` batches, configured by `SinglecoilConfig` / `MulticoilConfig`;
- `inference_dataset` (test files with their own mask): ``(file_names, slice_indices, (kspace,
  mask[, smaps]))``, configured by `InferenceConfig`;
- `noncartesian_dataset` (radial / spiral acquisitions simulated from the files, single- or
  multi-coil): ``((kspace, trajectory, density[, smaps]), target)``, configured by `NonCartesianConfig`;
- `volume3d_dataset` (3D stack-of-spirals / stack-of-radial / kooshball acquisitions simulated from
  NIfTI volumes or `demo_volumes`): ``((kspace, trajectory, density), target)``, configured by
  `Volume3DConfig`.

`build_cache` converts a directory of train / validation files into a TFRecord cache, which the
single-coil and multi-coil pipelines read instead of the HDF5 files when their configuration's
``cache_dir`` names it (same batches; `TFRecordCache`, `CacheError`: see `tfrecord`).

K-space and targets are multiplied by ``config.scale_factor`` (`DEFAULT_SCALE_FACTOR` = 1e6); divide
a model's output by it to get the files' units.
"""

from fastmri_recon.data.datasets.cartesian import multicoil_dataset, singlecoil_dataset
from fastmri_recon.data.datasets.config import (
    DEFAULT_SCALE_FACTOR,
    InferenceConfig,
    MulticoilConfig,
    SinglecoilConfig,
    SliceOptions,
)
from fastmri_recon.data.datasets.inference import inference_dataset
from fastmri_recon.data.datasets.nc_config import NonCartesianConfig, Volume3DConfig
from fastmri_recon.data.datasets.noncartesian import noncartesian_dataset
from fastmri_recon.data.datasets.tfrecord import CacheError, TFRecordCache, build_cache
from fastmri_recon.data.datasets.volume3d import demo_volumes, volume3d_dataset

__all__ = [
    "DEFAULT_SCALE_FACTOR",
    "CacheError",
    "InferenceConfig",
    "MulticoilConfig",
    "NonCartesianConfig",
    "SinglecoilConfig",
    "SliceOptions",
    "TFRecordCache",
    "Volume3DConfig",
    "build_cache",
    "demo_volumes",
    "inference_dataset",
    "multicoil_dataset",
    "noncartesian_dataset",
    "singlecoil_dataset",
    "volume3d_dataset",
]
