"""The non-Cartesian pipelines: 2D from the demo fastMRI files (radial / spiral, single- / multi-coil), 3D volumes."""

import keras
import nibabel
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.data.datasets.nc_config import NonCartesianConfig, Volume3DConfig
from fastmri_recon.data.datasets.noncartesian import noncartesian_dataset
from fastmri_recon.data.datasets.volume3d import demo_volumes, volume3d_dataset
from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.trajectories import make_trajectory
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.registry import build
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_ifftc
from fastmri_recon.ops.nufft import np_ndft

SHAPE_3D = (16, 16, 16)


def batches(dataset):
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in dataset]


def correlation(a, b):
    return np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]


def adjoint_images(inputs, image_shape):
    """|A^H D y| of a batch (coil-combined with its maps if it has some)."""
    return build("nc-adjoint", image_shape=image_shape)(inputs).numpy()


@pytest.fixture(scope="module")
def volumes_3d():
    return demo_volumes(3, SHAPE_3D, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("trajectory", ["radial", "spiral"])
def test_singlecoil_shapes_dtypes_and_adjoint(demo_dir, trajectory):
    config = NonCartesianConfig(trajectory=trajectory, acceleration=2, batch_size=2)
    dataset = noncartesian_dataset(demo_dir / "singlecoil_val", config, training=False)
    (kspace_spec, traj_spec, density_spec), target_spec = dataset.element_spec
    assert kspace_spec.dtype == tf.complex64 and traj_spec.dtype == density_spec.dtype == tf.float32
    assert traj_spec.shape[1] == 2 and target_spec == tf.TensorSpec((None, 32, 32), tf.float32)
    result = batches(dataset)
    assert [len(target) for _, target in result] == [2, 2, 2]  # 2 volumes of 3 slices, in order, every batch
    (kspace, traj, density), target = result[0]
    n_samples = make_trajectory(trajectory, (32, 32), 2).shape[1]
    assert kspace.shape == density.shape == (2, n_samples) and traj.shape == (2, 2, n_samples)
    np.testing.assert_array_equal(traj[0], make_trajectory(trajectory, (32, 32), 2))
    np.testing.assert_allclose(density[1], pipe_menon_density(traj[0], (32, 32)).numpy(), rtol=1e-6)
    assert 10 < target.max() < 1e4  # file units (~1e-4) times the scale factor 1e6
    assert correlation(adjoint_images((kspace, traj, density), (32, 32)), target) > 0.97


@pytest.mark.slow
@pytest.mark.parametrize("maps", ["acs", "lowres", None])
def test_multicoil_maps_and_adjoint(demo_dir, maps):
    config = NonCartesianConfig(acceleration=4, batch_size=3, sensitivity_maps=maps)
    inputs, target = batches(noncartesian_dataset(demo_dir / "multicoil_val", config, training=False))[0]
    kspace = inputs[0]
    assert kspace.shape[:2] == (3, 4) and kspace.dtype == np.complex64 and target.shape == (3, 32, 32)
    if maps is None:
        assert len(inputs) == 3
    else:
        smaps = inputs[3]
        assert smaps.shape == (3, 4, 32, 32) and smaps.dtype == np.complex64
        norms = np.linalg.norm(smaps, axis=1)
        assert np.allclose(norms[norms > 0], 1.0, atol=1e-4) and (norms > 0).mean() > 0.3
    assert correlation(adjoint_images(inputs, (32, 32)), target) > 0.95


@pytest.mark.slow
def test_determinism_and_shuffling(demo_dir):
    config = NonCartesianConfig(trajectory="spiral", batch_size=1, seed=1)
    directory = demo_dir / "singlecoil_val"
    validation = [batches(noncartesian_dataset(directory, config, training=False)) for _ in range(2)]
    for (inputs_a, target_a), (inputs_b, target_b) in zip(*validation):
        np.testing.assert_array_equal(inputs_a[0], inputs_b[0])
        np.testing.assert_array_equal(target_a, target_b)
    training = [[t for _, t in batches(noncartesian_dataset(directory, config))] for _ in range(2)]
    np.testing.assert_array_equal(np.stack(training[0]), np.stack(training[1]))  # same seed, same order
    order = [np.flatnonzero([np.array_equal(t, v[1]) for v in validation[0]])[0] for t in training[0]]
    assert sorted(order) == list(range(6)) and order != list(range(6))  # shuffled, every slice once


@pytest.mark.slow
def test_phase_augmentation_rotates_the_samples_in_training_only(demo_dir):
    directory = demo_dir / "singlecoil_val"
    plain, rotated = (
        batches(noncartesian_dataset(directory, NonCartesianConfig(batch_size=6, phase_augmentation=aug)))[0]
        for aug in (False, True)
    )
    np.testing.assert_array_equal(plain[1], rotated[1])  # same order, same targets
    factors = rotated[0][0] / plain[0][0]  # (6, M): one unit phase per example
    np.testing.assert_allclose(np.abs(factors), 1.0, rtol=1e-4)
    np.testing.assert_allclose(factors, factors[:, :1] * np.ones_like(factors), atol=1e-4)
    assert np.ptp(np.angle(factors[:, 0])) > 0.5  # drawn per example
    validation = NonCartesianConfig(batch_size=6, phase_augmentation=True)
    (kspace, _, _), _ = batches(noncartesian_dataset(directory, validation, training=False))[0]
    (expected, _, _), _ = batches(noncartesian_dataset(directory, NonCartesianConfig(batch_size=6), training=False))[0]
    np.testing.assert_array_equal(kspace, expected)


@pytest.mark.slow
def test_larger_image_grid_pads_around_the_target(demo_dir):
    config = NonCartesianConfig(acceleration=1, image_shape=(40, 36), batch_size=3)
    inputs, target = batches(noncartesian_dataset(demo_dir / "singlecoil_val", config, training=False))[0]
    model = build("nc-adjoint", image_shape=(40, 36), crop_size=(32, 32))
    assert correlation(model(inputs).numpy(), target) > 0.99


def test_configuration_errors(demo_dir):
    with pytest.raises(ConfigError, match="trajectory='kooshball'"):
        NonCartesianConfig(trajectory="kooshball")
    with pytest.raises(ConfigError, match="trajectory_options"):
        NonCartesianConfig(trajectory="spiral", trajectory_options={"n_shots": 0})
    with pytest.raises(ConfigError, match="trajectory_options"):
        NonCartesianConfig(trajectory_options={"unknown": 1})
    with pytest.raises(ConfigError, match="sensitivity_maps"):
        NonCartesianConfig(sensitivity_maps="espirit")
    with pytest.raises(ConfigError, match="image_shape"):
        NonCartesianConfig(image_shape=(32,))
    with pytest.raises(ConfigError, match="acceleration"):
        NonCartesianConfig(acceleration=0)
    with pytest.raises(ConfigError, match="phase_augmentation"):
        NonCartesianConfig(phase_augmentation=1)
    with pytest.raises(ConfigError, match="volume_shape"):
        Volume3DConfig(volume_shape=(16, 16))
    with pytest.raises(ConfigError, match="trajectory='radial'"):
        Volume3DConfig(trajectory="radial")
    with pytest.raises(ConfigError, match="smaller than the target"):
        noncartesian_dataset(demo_dir / "singlecoil_val", NonCartesianConfig(image_shape=(24, 24)))
    with pytest.raises(ConfigError, match="expected a NonCartesianConfig"):
        noncartesian_dataset(demo_dir / "singlecoil_val", Volume3DConfig())


def test_demo_volumes(volumes_3d):
    assert volumes_3d.shape == (3, *SHAPE_3D) and volumes_3d.dtype == np.float32
    assert np.allclose(volumes_3d.max(axis=(1, 2, 3)), 1.0) and volumes_3d.min() >= 0
    assert 0.1 < (volumes_3d > 0.1).mean() < 0.6  # a head in the field of view
    np.testing.assert_array_equal(volumes_3d[:2], demo_volumes(2, SHAPE_3D, seed=0))
    assert not np.allclose(volumes_3d[0], volumes_3d[1])  # different subjects


@pytest.mark.slow
@pytest.mark.parametrize("trajectory", ["stack_of_spirals", "kooshball"])
def test_volume3d_shapes_and_adjoint(volumes_3d, trajectory):
    config = Volume3DConfig(trajectory=trajectory, volume_shape=SHAPE_3D, batch_size=2)
    result = batches(volume3d_dataset(volumes_3d, config, training=False))
    assert [len(target) for _, target in result] == [2, 1]
    (kspace, traj, density), target = result[0]
    n_samples = make_trajectory(trajectory, SHAPE_3D, 4).shape[1]
    assert kspace.shape == density.shape == (2, n_samples) and traj.shape == (2, 3, n_samples)
    assert kspace.dtype == np.complex64 and traj.dtype == density.dtype == target.dtype == np.float32
    np.testing.assert_array_equal(target, volumes_3d[:2])
    assert correlation(adjoint_images((kspace, traj, density), SHAPE_3D), target) > 0.95
    shuffled = [t for _, t in batches(volume3d_dataset(volumes_3d, config))]
    assert len(shuffled) == 1 and shuffled[0].shape == (2, *SHAPE_3D)  # incomplete batch dropped


def test_volume3d_from_nifti_files(tmp_path, volumes_3d):
    for index in range(2):
        volume = np.repeat(volumes_3d[index], 2, axis=0) * 300.0  # another size and scale than the grid
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / f"subject_{index}.nii.gz")
    (tmp_path / "notes.txt").write_text("not a volume")
    config = Volume3DConfig(trajectory="kooshball", volume_shape=SHAPE_3D, batch_size=2)
    (_, _, _), target = batches(volume3d_dataset(tmp_path, config, training=False))[0]
    assert target.shape == (2, *SHAPE_3D) and np.allclose(target.max(axis=(1, 2, 3)), 1.0)
    assert correlation(target, volumes_3d[:2]) > 0.95
    with pytest.raises(DataError, match="not a directory"):
        volume3d_dataset(tmp_path / "missing", config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no NIfTI volume"):
        volume3d_dataset(tmp_path / "empty", config)


@pytest.mark.slow
@pytest.mark.parametrize(
    "trajectory, multicoil", [("radial", False), ("spiral", True), ("kooshball", False)], ids=["radial", "spiral-mc", "3d"]
)
def test_ncpdnet_loss_falls_on_the_pipelines(demo_dir, volumes_3d, trajectory, multicoil):
    keras.utils.set_random_seed(0)
    if trajectory == "kooshball":
        config = Volume3DConfig(trajectory=trajectory, volume_shape=SHAPE_3D, batch_size=2)
        inputs, target = next(iter(volume3d_dataset(volumes_3d, config)))
        image_shape = SHAPE_3D
    else:
        config = NonCartesianConfig(trajectory=trajectory, batch_size=2)
        inputs, target = next(iter(noncartesian_dataset(demo_dir / f"{'multi' if multicoil else 'single'}coil_train", config)))
        image_shape = (32, 32)
    model = build("ncpdnet", image_shape=image_shape, n_iter=2, n_primal=2, n_filters=4)
    optimizer = keras.optimizers.Adam(1e-3)
    scale = float(tf.reduce_max(target))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(inputs) - target)) / scale
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    losses = [float(step()) for _ in range(15)]
    print(f"{trajectory}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("coils", ["singlecoil", "multicoil"])
def test_off_resonance_samples_use_the_files_field_maps(demo_dir, coils):
    """``off_resonance``: the samples of the file's B0 map, by the time-segmented encoding; "known" gives it to the model."""
    from fastmri_recon.data.field_maps import spiral_readout_times
    from fastmri_recon.data.h5 import FastMRIFile
    from fastmri_recon.ops.off_resonance import np_off_resonance_sum

    options = dict(trajectory="spiral", trajectory_options={"n_shots": 4}, acceleration=2, batch_size=3)
    directory = demo_dir / f"{coils}_val"
    plain = batches(noncartesian_dataset(directory, NonCartesianConfig(**options), training=False))[0][0]
    simulated = batches(noncartesian_dataset(directory, NonCartesianConfig(**options, off_resonance="simulated"), training=False))[0][0]
    known = batches(noncartesian_dataset(directory, NonCartesianConfig(**options, off_resonance="known"), training=False))[0][0]
    assert len(simulated) == len(plain) and len(known) == len(plain) + 2
    np.testing.assert_array_equal(known[0], simulated[0])
    field_map, times = known[-2:]
    with FastMRIFile(sorted(directory.glob("*.h5"))[0]) as handle:
        np.testing.assert_array_equal(field_map, handle.field_map(slice(0, 3)))
    trajectory = plain[1][0]
    np.testing.assert_allclose(times[0], spiral_readout_times(trajectory, 4, 10e-6, 1e-3))
    assert np.abs(field_map).max() > 20  # Hz: the demo maps are not flat
    assert np.linalg.norm(known[0] - plain[0]) > 0.05 * np.linalg.norm(plain[0])
    if coils == "singlecoil":  # against the exact sum over the pixels, on the file's image cropped to the grid
        with FastMRIFile(sorted(directory.glob("*.h5"))[0]) as handle:
            image = center_crop(np_ifftc(handle.kspace(0)), (32, 32)) * 1e6
        np.testing.assert_allclose(plain[0][0], np_ndft(image, trajectory), rtol=0, atol=1e-3 * np.abs(plain[0][0]).max())
        exact = np_off_resonance_sum(image, trajectory, field_map[0], times[0])
        assert np.linalg.norm(known[0][0] - exact) <= 2e-3 * np.linalg.norm(exact)


def test_off_resonance_needs_a_spiral_and_field_maps(demo_dir, tmp_path):
    from fastmri_recon.data.h5 import read_volume, write_volume
    import dataclasses

    with pytest.raises(ConfigError, match="off_resonance='known': expected None with a radial trajectory"):
        NonCartesianConfig(off_resonance="known")
    with pytest.raises(ConfigError, match="off_resonance='maybe'"):
        NonCartesianConfig(trajectory="spiral", off_resonance="maybe")
    (tmp_path / "val").mkdir()
    volume = read_volume(sorted((demo_dir / "singlecoil_val").glob("*.h5"))[0])
    write_volume(dataclasses.replace(volume, path=tmp_path / "val" / "no_map.h5", field_map=None))
    with pytest.raises(DataError, match="no_map.h5: no 'b0_map' dataset"):
        noncartesian_dataset(tmp_path / "val", NonCartesianConfig(trajectory="spiral", off_resonance="simulated"), training=False)
