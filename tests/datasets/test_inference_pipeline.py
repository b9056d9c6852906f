"""The test / inference pipeline on the demo test files (undersampled k-space with their own mask)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_volume
from data.test_h5 import corrupt
from pipeline_helpers import copy_files

from fastmri_recon.data.datasets import InferenceConfig, inference_dataset
from fastmri_recon.data.h5 import read_volume
from fastmri_recon.errors import ConfigError, DataError


@pytest.mark.slow
@pytest.mark.parametrize("coils", ["singlecoil", "multicoil"])
def test_elements_cover_every_slice_of_every_file(demo_dir, coils):
    directory = demo_dir / f"{coils}_test"
    config = InferenceConfig(batch_size=2, scale_factor=10.0, sensitivity_maps="acs" if coils == "multicoil" else None)
    dataset = inference_dataset(directory, config)
    names_spec, slices_spec, inputs_spec = dataset.element_spec
    assert names_spec == tf.TensorSpec((None,), tf.string) and slices_spec == tf.TensorSpec((None,), tf.int32)
    assert inputs_spec[0].dtype == tf.complex64 and inputs_spec[1] == tf.TensorSpec((None, 32), tf.float32)
    seen = []
    for names, slices, inputs in dataset:
        assert len(set(names.numpy())) == 1 and names.shape[0] <= 2  # a batch never mixes volumes
        volume = read_volume(directory / names[0].numpy().decode())
        kspace, mask = inputs[0].numpy(), inputs[1].numpy()
        np.testing.assert_array_equal(mask, np.broadcast_to(volume.mask, mask.shape))
        np.testing.assert_allclose(kspace, volume.kspace[slices.numpy()] * 10.0, rtol=1e-6)
        if coils == "multicoil":
            assert inputs[2].shape == kspace.shape and inputs[2].dtype == tf.complex64
        else:
            assert len(inputs) == 2
        seen += [(names[0].numpy().decode(), int(index)) for index in slices]
    assert seen == [(path.name, index) for path in sorted(directory.glob("*.h5")) for index in range(3)]


def test_files_without_mask_and_bad_files(demo_dir, tmp_path):
    with pytest.raises(DataError, match="demo_001.h5: has no 'mask'"):
        inference_dataset(demo_dir / "singlecoil_val")
    with pytest.raises(ConfigError, match="sensitivity_maps='acs': the files of .* are single-coil"):
        inference_dataset(demo_dir / "singlecoil_test", InferenceConfig(sensitivity_maps="acs"))
    copy_files(sorted((demo_dir / "multicoil_test").glob("*.h5")), tmp_path)
    random_volume(tmp_path / "single.h5", target=False, mask=True)
    message = corrupt("truncated", tmp_path / "truncated.h5")
    with pytest.raises(DataError, match="single.h5: single-coil k-space .* in a multi-coil pipeline"):
        inference_dataset(tmp_path)
    with pytest.warns(UserWarning) as warned:
        dataset = inference_dataset(tmp_path, InferenceConfig(skip_bad_files=True))
    assert [str(w.message).split(": ")[1].rsplit("/", 1)[-1] for w in warned] == ["single.h5", "truncated.h5"]
    assert message in str(warned[1].message)
    assert sum(int(names.shape[0]) for names, _, _ in dataset) == 6
