"""The single-coil and multi-coil train / validation pipelines on the demo data."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_volume
from data.test_h5 import corrupt
from pipeline_helpers import copy_files, identify, scaled_targets, set_acquisition, singlecoil_dir  # noqa: F401

from fastmri_recon.baselines.zero_filled import ZeroFilled
from fastmri_recon.data.datasets import MulticoilConfig, SinglecoilConfig, multicoil_dataset, singlecoil_dataset
from fastmri_recon.data.h5 import FastMRIFile, Header, Volume, read_volume, write_volume
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.evaluate.evaluate import volume_mask


def batches(dataset):
    """Every batch of one pass, as nested NumPy arrays."""
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in dataset]


def test_singlecoil_train_shapes_and_dtypes(singlecoil_dir):
    dataset = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(batch_size=2))
    (kspace_spec, mask_spec), target_spec = dataset.element_spec
    assert kspace_spec == tf.TensorSpec((2, 64, 32), tf.complex64)
    assert mask_spec == tf.TensorSpec((2, 32), tf.float32)
    assert target_spec == tf.TensorSpec((2, 32, 32), tf.float32)
    result = batches(dataset)
    assert len(result) == 4  # 9 slices, incomplete batch dropped in training
    (kspace, mask), target = result[0]
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert np.all(kspace[np.broadcast_to(mask[:, None, :] == 0, kspace.shape)] == 0)
    assert 10 < target.max() < 1e4  # file units (~1e-4) times the scale factor 1e6


def test_multicoil_shapes_and_acs_maps(demo_dir):
    config = MulticoilConfig(batch_size=2, sensitivity_maps="acs")
    (kspace, mask, smaps), target = next(iter(multicoil_dataset(demo_dir / "multicoil_val", config, training=False)))
    assert kspace.shape == smaps.shape == (2, 4, 64, 32) and kspace.dtype == smaps.dtype == tf.complex64
    assert mask.shape == (2, 32) and mask.dtype == tf.float32
    assert target.shape == (2, 32, 32) and target.dtype == tf.float32
    norms = np.linalg.norm(smaps.numpy(), axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    assert 0.3 < (norms > 0).mean() < 0.6  # the object: about half of the read-out-oversampled field of view


def test_multicoil_espirit_maps(demo_dir):
    config = MulticoilConfig(batch_size=3, sensitivity_maps="espirit")
    (kspace, _, smaps), _ = next(iter(multicoil_dataset(demo_dir / "multicoil_val", config, training=False)))
    assert smaps.shape == kspace.shape and smaps.dtype == tf.complex64


def test_validation_scaling_and_masks_match_evaluate(demo_dir):
    directory = demo_dir / "multicoil_val"
    sampler = MaskSampler("random", [0.08, 0.04], [4, 8])
    config = MulticoilConfig(accelerations=(4, 8), batch_size=3, scale_factor=1e5)
    result = batches(multicoil_dataset(directory, config, training=False))
    assert len(result) == 2  # one volume of 3 slices per batch, in file order
    for path, ((kspace, mask), target) in zip(sorted(directory.glob("*.h5")), result):
        with FastMRIFile(path) as handle:
            expected_mask = volume_mask(handle, sampler)
            np.testing.assert_array_equal(mask, np.broadcast_to(expected_mask, mask.shape))
            np.testing.assert_allclose(target, handle.target() * 1e5, rtol=1e-6)
            np.testing.assert_allclose(kspace, handle.kspace() * 1e5 * expected_mask, rtol=1e-6)


@pytest.mark.parametrize("accelerations, fraction", [((4,), 1 / 4), ((8,), 1 / 8), ((4, 8), 3 / 16)])
def test_training_masks_acceleration(singlecoil_dir, accelerations, fraction):
    config = SinglecoilConfig(accelerations=accelerations, batch_size=9)
    masks = np.concatenate([inputs[1] for inputs, _ in batches(singlecoil_dataset(singlecoil_dir, config).repeat(12))])
    assert masks.shape == (108, 32)
    assert abs(masks.mean() - fraction) < 0.03  # random masks keep N / acceleration lines on average
    assert len({m.tobytes() for m in masks}) > 50  # drawn per example


def test_equispaced_training_masks(singlecoil_dir):
    config = SinglecoilConfig(mask_type="equispaced", accelerations=(4,), batch_size=9)
    ((_, masks), _), = batches(singlecoil_dataset(singlecoil_dir, config))
    centre = np.arange(15, 18)  # round(32 * 0.08) = 3 lines from (32 - 3 + 1) // 2
    for mask in masks:
        offset = np.argmax(mask)
        assert set(np.flatnonzero(mask)) == set(range(offset, 32, 4)) | set(centre)


def test_header_padding_columns_are_zero(tmp_path):
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((4, 16, 12)) + 1j * rng.standard_normal((4, 16, 12))).astype(np.complex64)
    header = Header((16, 12, 1), (8, 6, 1), encoding_center=4, encoding_maximum=8)  # acquired columns 2..10
    assert (header.padding_left, header.padding_right) == (2, 11)
    target = rng.random((4, 8, 6)).astype(np.float32)
    write_volume(Volume(tmp_path / "padded.h5", kspace, header, target=target, attrs={"acquisition": "X"}))
    config = SinglecoilConfig(center_fractions=(0.1,), accelerations=(2,), batch_size=4)
    for training in (True, False):
        (_, masks), _ = next(iter(singlecoil_dataset(tmp_path, config, training=training)))
        masks = masks.numpy()
        assert np.all(masks[:, :2] == 0) and np.all(masks[:, 11:] == 0) and masks[:, 2:11].sum() > 0


@pytest.mark.slow
def test_determinism_with_a_seed(singlecoil_dir):
    def two_epochs(seed):
        dataset = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(batch_size=3, seed=seed))
        return batches(dataset), batches(dataset)

    first, second = two_epochs(7), two_epochs(7)
    tf.nest.map_structure(np.testing.assert_array_equal, first, second)
    targets = scaled_targets(singlecoil_dir)
    order = lambda epoch: [identify(t, targets) for _, batch in epoch for t in batch]  # noqa: E731
    assert sorted(order(first[0])) == sorted(order(first[1])) == sorted(targets)  # every slice once per epoch
    masks = lambda epoch: np.concatenate([inputs[1] for inputs, _ in epoch])  # noqa: E731
    assert not np.array_equal(masks(first[0]), masks(first[1]))  # new masks at every pass
    other = two_epochs(8)[0]
    assert order(other) != order(first[0]) or not np.array_equal(masks(other), masks(first[0]))


def test_sharding_by_file_is_disjoint_and_complete(singlecoil_dir):
    targets = scaled_targets(singlecoil_dir)
    parts = []
    for index in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        dataset = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(batch_size=2), False, context)
        assert dataset.element_spec[1].shape[0] is None  # validation keeps incomplete batches
        result = batches(dataset)
        assert all(target.shape[0] == 1 for _, target in result)  # global batch 2 over 2 replicas
        parts.append({identify(target[0], targets)[0] for _, target in result})
    assert parts[0].isdisjoint(parts[1])
    assert parts[0] | parts[1] == {name for name, _ in targets}
    context = tf.distribute.InputContext(num_input_pipelines=4, input_pipeline_id=0, num_replicas_in_sync=4)
    with pytest.raises(ConfigError, match="4 input pipelines but only 3 volumes"):
        singlecoil_dataset(singlecoil_dir, SinglecoilConfig(batch_size=4), True, context)


@pytest.mark.parametrize("kind", ["truncated", "text", "no_kspace", "multicoil"])
def test_bad_file_raises_or_is_skipped(demo_dir, tmp_path, kind):
    copy_files(sorted((demo_dir / "singlecoil_val").glob("*.h5")), tmp_path)
    bad = tmp_path / "bad.h5"
    if kind == "multicoil":  # a multi-coil file in a single-coil directory: non-conforming
        copy_files([demo_dir / "multicoil_train" / "demo_000.h5"], tmp_path / "other")
        (tmp_path / "other" / "demo_000.h5").rename(bad)
        message = "multi-coil k-space"
    else:
        message = corrupt(kind, bad)
    with pytest.raises(DataError, match=f"bad.h5.*{message}"):
        singlecoil_dataset(tmp_path, SinglecoilConfig())  # at build time, before any reading
    with pytest.warns(UserWarning, match=f"skipping a bad file: .*bad.h5.*{message}"):
        dataset = singlecoil_dataset(tmp_path, SinglecoilConfig(skip_bad_files=True), training=False)
    assert sum(target.shape[0] for _, target in dataset) == 6  # the two good volumes, whole


def test_no_usable_file_and_test_files(demo_dir, tmp_path):
    with pytest.raises(DataError, match="demo_003.h5: has no target"):
        singlecoil_dataset(demo_dir / "singlecoil_test", SinglecoilConfig())
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable file"):
        singlecoil_dataset(demo_dir / "singlecoil_test", SinglecoilConfig(skip_bad_files=True))
    with pytest.raises(DataError, match="no such directory"):
        multicoil_dataset(tmp_path / "missing", MulticoilConfig())
    with pytest.raises(ConfigError, match="config: expected a MulticoilConfig, got SinglecoilConfig"):
        multicoil_dataset(demo_dir / "multicoil_val", SinglecoilConfig())
    with pytest.raises(ConfigError, match="config: expected a SinglecoilConfig, got MulticoilConfig"):
        singlecoil_dataset(demo_dir / "singlecoil_val", MulticoilConfig())


def test_nan_values_raise_when_read(tmp_path):
    message = corrupt("nan", tmp_path / "nan.h5")
    dataset = singlecoil_dataset(tmp_path, SinglecoilConfig(), training=False)  # structure is fine
    with pytest.raises(tf.errors.OpError, match=f"nan.h5: kspace slices 1 .*{message}"):
        batches(dataset)


def test_contrast_filter(singlecoil_dir, tmp_path):
    paths = copy_files(sorted(singlecoil_dir.glob("*.h5")), tmp_path)
    set_acquisition(paths[1], "CORPDFS_FBK")
    targets = scaled_targets(tmp_path)
    config = SinglecoilConfig(contrasts="CORPDFS_FBK")
    found = {identify(t[0], targets) for _, t in singlecoil_dataset(tmp_path, config, training=False)}
    assert found == {(paths[1].name, index) for index in range(3)}
    config = SinglecoilConfig(contrasts=("AXT1", "CORPDFS_FBK"))
    assert sum(1 for _ in singlecoil_dataset(tmp_path, config, training=False)) == 9
    with pytest.raises(DataError, match=r"no file with acquisition in \['AXT2'\] \(found \['AXT1', 'CORPDFS_FBK'\]\)"):
        singlecoil_dataset(tmp_path, SinglecoilConfig(contrasts=("AXT2",)))


@pytest.mark.slow
def test_one_random_slice_per_volume(singlecoil_dir):
    targets = scaled_targets(singlecoil_dir)
    dataset = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(slice_selection="random", batch_size=1))
    epochs = [[identify(t[0], targets) for _, t in dataset] for _ in range(6)]
    assert all(sorted(name for name, _ in epoch) == sorted({n for n, _ in targets}) for epoch in epochs)
    assert len({key for epoch in epochs for key in epoch}) > 3  # different slices at different passes
    validation = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(slice_selection="random"), training=False)
    assert len({tuple(identify(t[0], targets) for _, t in validation) for _ in range(3)}) == 1


@pytest.mark.parametrize("edge_slices", [1, 0.34])
def test_inner_slices(singlecoil_dir, edge_slices):
    targets = scaled_targets(singlecoil_dir)
    config = SinglecoilConfig(edge_slices=edge_slices, slice_selection="random")
    for training in (True, False):
        found = [identify(t[0], targets) for _, t in singlecoil_dataset(singlecoil_dir, config, training=training)]
        assert len(found) == 3 and {index for _, index in found} == {1}  # 3 slices minus one at each end
    with pytest.raises(ConfigError, match="edge_slices=2 leaves no slice"):
        singlecoil_dataset(singlecoil_dir, SinglecoilConfig(edge_slices=2))


@pytest.mark.slow
def test_sizes_that_differ_need_a_grid(tmp_path):
    for name, width in (("a.h5", 12), ("b.h5", 14)):
        random_volume(tmp_path / name, slices=2, height=16, width=width)  # targets 8 x 6 and 8 x 7
    with pytest.raises(ConfigError, match="batch_size=2: the volumes' k-space shapes"):
        singlecoil_dataset(tmp_path, SinglecoilConfig(batch_size=2))
    one = singlecoil_dataset(tmp_path, SinglecoilConfig(batch_size=1), training=False)
    assert [inputs[0].shape[-1] for inputs, _ in one] == [12, 12, 14, 14]
    one = singlecoil_dataset(tmp_path, SinglecoilConfig(batch_size=1, accelerations=(2,), center_fractions=(0.2,)))
    assert sorted(inputs[1].shape[-1] for inputs, _ in one) == [12, 12, 14, 14]  # masks of each width
    for name in ("a.h5", "b.h5"):  # same target size, different k-space widths
        volume = read_volume(tmp_path / name)
        volume.target, volume.header = volume.target[..., :6], dataclasses.replace(volume.header, recon_size=(8, 6, 1))
        write_volume(volume)
    with pytest.raises(ConfigError, match=r"grid_shape=\(6, 16\): smaller than the target \(8, 6\)"):
        singlecoil_dataset(tmp_path, SinglecoilConfig(batch_size=2, grid_shape=(6, 16)))
    config = SinglecoilConfig(batch_size=4, grid_shape=(10, 16), accelerations=(2,), center_fractions=(0.2,))
    dataset = singlecoil_dataset(tmp_path, config)
    assert dataset.element_spec[0][0].shape == (4, 10, 16) and dataset.element_spec[1].shape == (4, 8, 6)
    (kspace, mask), target = next(iter(dataset))
    assert kspace.shape == (4, 10, 16) and mask.shape == (4, 16) and target.shape == (4, 8, 6)


@pytest.mark.parametrize("grid_shape", [None, (40, 36), (96, 32)])
def test_fully_sampled_examples_reconstruct_the_target(demo_dir, grid_shape):
    config = MulticoilConfig(batch_size=3, accelerations=(1,), center_fractions=(0.1,), grid_shape=grid_shape)
    (kspace, mask), target = next(iter(multicoil_dataset(demo_dir / "multicoil_val", config)))
    assert np.all(mask.numpy() == 1)  # a regridded fully sampled example stays fully sampled
    image = ZeroFilled(crop_size=(32, 32))((kspace, mask))
    np.testing.assert_allclose(image, target, atol=1e-5 * float(tf.reduce_max(target)))


@pytest.mark.slow
def test_phase_augmentation_rotates_kspace_only(singlecoil_dir):
    """A random global phase per training example: same magnitudes and targets, other phases."""
    plain = batches(singlecoil_dataset(singlecoil_dir, SinglecoilConfig(batch_size=1, seed=3)))
    config = SinglecoilConfig(batch_size=1, seed=3, phase_augmentation=True)
    augmented = batches(singlecoil_dataset(singlecoil_dir, config))
    np.testing.assert_array_equal(batches(singlecoil_dataset(singlecoil_dir, config))[0][0][0], augmented[0][0][0])
    for ((k0, m0), t0), ((k1, m1), t1) in zip(plain, augmented):
        np.testing.assert_array_equal(t0, t1)
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_allclose(np.abs(k1), np.abs(k0), rtol=1e-5, atol=1e-3)
    assert not np.allclose(plain[0][0][0], augmented[0][0][0])
    with pytest.raises(ConfigError, match="phase_augmentation"):
        SinglecoilConfig(phase_augmentation="yes")
