"""Coil compression as a data step: the pipelines, evaluate, reconstruct and training runs compress each slice."""

import json

import h5py
import numpy as np
import pytest
import tensorflow as tf
from test_cli import run_main

from fastmri_recon.data.coil_compression import SliceCompression, compress_coils
from fastmri_recon.data.datasets import InferenceConfig, MulticoilConfig, inference_dataset, multicoil_dataset
from fastmri_recon.data.datasets.transforms import compress_slice_coils
from fastmri_recon.errors import ConfigError
from fastmri_recon.training.config import TrainConfig


def _kspace(slices=2, coils=4, height=16, width=12, seed=0):
    rng = np.random.default_rng(seed)
    shape = (slices, coils, height, width)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.mark.parametrize("method", ["svd", "geometric"])
def test_each_slice_is_compressed_from_its_own_samples(method):
    kspace = _kspace()
    compressed = SliceCompression(2, method).apply(kspace)
    assert compressed.shape == (2, 2, 16, 12) and compressed.dtype == np.complex64
    for one, expected in zip(kspace, compressed):
        np.testing.assert_array_equal(compress_coils(one, 2, method, coil_axis=0), expected)
    in_pipeline = compress_slice_coils(tf.constant(kspace[0]), SliceCompression(2, method))
    assert in_pipeline.shape == (2, 16, 12)
    np.testing.assert_array_equal(in_pipeline.numpy(), compressed[0])


def test_all_coils_svd_keeps_the_energy_of_every_slice():
    kspace = _kspace()
    compressed = SliceCompression(4).apply(kspace)
    np.testing.assert_allclose(np.sum(np.abs(compressed) ** 2, axis=(1, 2, 3)), np.sum(np.abs(kspace) ** 2, axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.parametrize(
    "coils, method, message", [(0, "svd", "virtual_coils=0"), (True, "svd", "virtual_coils=True"), (2, "pca", "coil_compression='pca'")]
)
def test_bad_compression_is_refused(coils, method, message):
    with pytest.raises(ConfigError, match=message):
        SliceCompression(coils, method)
    with pytest.raises(ConfigError, match=message):
        MulticoilConfig(virtual_coils=coils, coil_compression=method)


@pytest.mark.slow
def test_multicoil_pipeline_gives_virtual_coils_and_their_maps(demo_dir):
    config = MulticoilConfig(batch_size=2, sensitivity_maps="acs", virtual_coils=2)
    (kspace, mask, smaps), target = next(iter(multicoil_dataset(demo_dir / "multicoil_val", config, training=False)))
    assert kspace.shape[1] == 2 and smaps.shape == kspace.shape
    plain = MulticoilConfig(batch_size=2)
    (full, _), same_target = next(iter(multicoil_dataset(demo_dir / "multicoil_val", plain, training=False)))
    np.testing.assert_array_equal(target.numpy(), same_target.numpy())
    np.testing.assert_array_equal(kspace.numpy(), SliceCompression(2).apply(full.numpy()))  # the undersampled slices compressed


def test_more_virtual_coils_than_the_files_have_is_refused_before_any_work(demo_dir):
    with pytest.raises(ConfigError, match="virtual_coils=9: more than the 4 coils of .*demo_001.h5"):
        multicoil_dataset(demo_dir / "multicoil_val", MulticoilConfig(virtual_coils=9), training=False)
    with pytest.raises(ConfigError, match="virtual_coils=2: the files of .* are single-coil"):
        inference_dataset(demo_dir / "singlecoil_test", InferenceConfig(virtual_coils=2))


def test_inference_pipeline_compresses_the_test_slices(demo_dir):
    _, _, (kspace, mask) = next(iter(inference_dataset(demo_dir / "multicoil_test", InferenceConfig(virtual_coils=3))))
    _, _, (full, _) = next(iter(inference_dataset(demo_dir / "multicoil_test", InferenceConfig())))
    assert kspace.shape[1] == 3
    np.testing.assert_allclose(kspace.numpy(), SliceCompression(3).apply(full.numpy()), rtol=1e-5, atol=1e-3)


def _row(out, label):
    return next(line for line in out.splitlines() if line.startswith(f"| {label} |"))


def test_evaluate_with_virtual_coils(demo_dir, capfd):
    val = str(demo_dir / "multicoil_val")
    status, out, err = run_main(["evaluate", val, "--model", "zero-filled", "--quiet"], capfd)
    assert status == 0, err
    reference = _row(out, "zero-filled")
    # all 4 coils by SVD: a unitary mixing, the root-sum-of-squares image is unchanged
    status, out, err = run_main(["evaluate", val, "--model", "zero-filled", "--virtual-coils", "4", "--quiet"], capfd)
    assert status == 0, err
    row = _row(out, "zero-filled")
    assert "4 virtual coils (svd)" in row and row.split("|")[4:7] == reference.split("|")[4:7]
    status, out, err = run_main(["evaluate", val, "--model", "sense", "--virtual-coils", "2", "--coil-compression", "geometric", "--quiet"], capfd)
    assert status == 0, err
    assert "2 virtual coils (geometric)" in _row(out, "sense")
    status, _, err = run_main(["evaluate", val, "--model", "zero-filled", "--virtual-coils", "5", "--quiet"], capfd)
    assert status == 2 and len(err) == 1 and "virtual_coils=5: more than the 4 coils of" in err[0]


@pytest.mark.slow
def test_training_run_records_its_compression_and_every_command_applies_it(demo_dir, tmp_path, capfd):
    args = ["train", "--model", "cascade-net", "--coils", "multicoil", "--data-dir", str(demo_dir), "--model-config", "n_cascades=1",
            "--model-config", "n_filters=4", "--model-config", "n_convs=2", "--virtual-coils", "2", "--steps-per-epoch", "2",
            "--epochs", "1", "--output-dir", str(tmp_path), "--run-name", "cc", "--quiet"]  # fmt: skip
    status, out, err = run_main(args, capfd)
    assert status == 0, err
    run_dir = tmp_path / "cc"
    stored = json.loads((run_dir / "config.json").read_text())["config"]
    assert stored["virtual_coils"] == 2 and stored["coil_compression"] == "svd"
    status, out, err = run_main(["evaluate", str(demo_dir / "multicoil_val"), "--model", str(run_dir), "--quiet"], capfd)
    assert status == 0, err
    assert "2 virtual coils (svd)" in _row(out, "cc")
    status, out, err = run_main(["reconstruct", str(demo_dir / "multicoil_test"), str(tmp_path / "out"), "--model", str(run_dir), "--quiet"], capfd)
    assert status == 0, err
    with h5py.File(sorted((tmp_path / "out").glob("*.h5"))[0]) as handle:
        assert np.all(np.isfinite(handle["reconstruction"][()]))


def test_train_config_compression_needs_cartesian_multicoil():
    with pytest.raises(ConfigError, match="virtual_coils=2: coil compression needs multi-coil data"):
        TrainConfig(model="cascade-net", virtual_coils=2)
    with pytest.raises(ConfigError, match="coil_compression='svd': give virtual_coils too"):
        TrainConfig(model="cascade-net", coils="multicoil", coil_compression="svd")
    with pytest.raises(ConfigError, match="needs Cartesian data"):
        TrainConfig(model="ncpdnet", coils="multicoil", virtual_coils=2)
    assert TrainConfig(model="cascade-net", coils="multicoil", virtual_coils=2).compression() == SliceCompression(2, "svd")
