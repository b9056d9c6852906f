"""Training runs of the non-Cartesian models: configuration, dry run, tiny runs (2D and 3D), resumption, reloading."""

import json

import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.data.acquisition import NonCartesianAcquisition
from fastmri_recon.training.config import TrainConfig, from_dict
from fastmri_recon.training.run import run_training
from fastmri_recon.training.rundir import acquisition, build_model, load_trained_model, split_source

TINY_NCPDNET = {"n_iter": 1, "n_primal": 2, "n_filters": 4}
TINY_3D = (8, 16, 16)


def test_noncartesian_defaults_come_from_the_pipelines():
    config = TrainConfig(model="ncpdnet")
    assert (config.acquisition, config.volumetric) == ("noncartesian", False)
    assert (config.trajectory, config.density_compensation, config.mask_type, config.data_dir) == ("radial", True, None, "demo_data")
    assert config.name == "ncpdnet_singlecoil_radial_x4"
    volumes = TrainConfig(model="ncpdnet-3d")
    assert volumes.volumetric and (volumes.trajectory, volumes.volume_shape) == ("stack_of_spirals", (32, 32, 32))
    assert volumes.data_dir == "demo-volumes" and volumes.name == "ncpdnet-3d_singlecoil_stack_of_spirals_x4"
    cartesian = TrainConfig(model="unet")
    assert (cartesian.mask_type, cartesian.trajectory, cartesian.density_compensation) == ("random", None, None)
    # a stored configuration loads back to the same resolved values
    assert from_dict(json.loads(json.dumps(volumes.to_json()))) == volumes


@pytest.mark.parametrize(
    "values, message",
    [
        ({"model": "unet", "trajectory": "radial"}, "trajectory='radial': a non-Cartesian option, but model 'unet' reconstructs cartesian"),
        ({"model": "pdnet", "density_compensation": False}, "density_compensation=False: a non-Cartesian option"),
        ({"model": "ncpdnet", "mask_type": "equispaced"}, "mask_type='equispaced': a Cartesian option, but model 'ncpdnet'"),
        ({"model": "nc-unet", "center_fractions": [0.08]}, "center_fractions=(0.08,): a Cartesian option"),
        ({"model": "ncpdnet", "trajectory": "kooshball"}, "trajectory='kooshball': expected one of radial, spiral, learned-radial, learned-spiral (2D model"),
        ({"model": "ncpdnet-3d", "trajectory": "spiral"}, "expected one of stack_of_radial, stack_of_spirals, kooshball (3D model"),
        ({"model": "ncpdnet", "accelerations": [4, 8]}, "accelerations=[4, 8]: a non-Cartesian run simulates one acceleration"),
        ({"model": "ncpdnet-3d", "coils": "multicoil"}, "coils='multicoil': the 3D pipeline simulates single-coil volumes"),
        ({"model": "ncpdnet-3d", "phase_augmentation": True}, "phase_augmentation=True: not an option of the 3D model"),
        ({"model": "ncpdnet-3d", "image_shape": [32, 32]}, "image_shape=[32, 32]: not an option of the 3D model 'ncpdnet-3d'"),
        ({"model": "ncpdnet", "volume_shape": [8, 8, 8]}, "volume_shape=[8, 8, 8]: not an option of the 2D model"),
        ({"model": "ncpdnet", "model_config": {"image_shape": [8, 8]}}, "model_config image_shape: the grid of 'ncpdnet' is the data's"),
        ({"model": "ncpdnet", "density_compensation": "yes"}, "density_compensation='yes': expected bool"),
        ({"model": "ncpdnet", "image_shape": [32, 0]}, "image_shape=[32, 0]: expected a list of positive integers"),
        ({"model": "ncpdnet", "trajectory_options": [1]}, "trajectory_options=[1]: expected dict"),
        ({"model": "ncpdnet", "trajectori": "radial"}, "unknown key(s) trajectori"),
    ],
)
def test_configuration_errors(values, message):
    with pytest.raises(ConfigError) as error:
        from_dict(values)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_dry_run_checks_the_pipeline_options(demo_dir, tmp_path):
    config = TrainConfig(model="ncpdnet", model_config=TINY_NCPDNET, data_dir=str(demo_dir), trajectory="spiral", output_dir=str(tmp_path))
    resolved = run_training(config, dry_run=True)
    assert resolved["config"]["trajectory"] == "spiral" and resolved["config"]["density_compensation"] is True
    assert not (tmp_path / config.name).exists()
    with pytest.raises(ConfigError, match="trajectory_options=\\{'n_shots': 0\\} for a spiral trajectory"):
        run_training(config.replace(trajectory_options={"n_shots": 0}), dry_run=True)
    with pytest.raises(ConfigError, match="image_shape=\\(32,\\): expected None or 2 positive integers"):
        run_training(config.replace(image_shape=[32]), dry_run=True)
    with pytest.raises(DataError, match="volumes_train: not a directory of NIfTI volumes"):
        run_training(TrainConfig(model="ncpdnet-3d", data_dir=str(demo_dir)), dry_run=True)


@pytest.mark.slow
def test_density_compensation_off_gives_unit_density(demo_dir):
    config = TrainConfig(model="ncpdnet", data_dir=str(demo_dir), density_compensation=False)
    data = acquisition(config, 0)
    assert isinstance(data, NonCartesianAcquisition) and not data.density_compensation
    (_, _, density), _ = next(iter(data.dataset(split_source(config, "val"))))
    np.testing.assert_array_equal(density.numpy(), 1.0)


def checkpoint_outputs(run_dir, config, crop_size, inputs):
    """The outputs of a fresh model given the weights of the run's last checkpoint (the loop's own state).

    The loop's checkpoint holds the model's trainable variables through its optimizer, in order.
    """
    model = build_model(config, crop_size)
    model(inputs)
    path = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    for index, variable in enumerate(model.trainable_variables):
        variable.assign(tf.train.load_variable(path, f"optimizer/_trainable_variables/{index}/.ATTRIBUTES/VARIABLE_VALUE"))
    return model(inputs).numpy()


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, options",
    [
        ("ncpdnet", {"trajectory": "radial"}),
        ("nc-unet", {"coils": "multicoil", "trajectory": "spiral", "trajectory_options": {"n_shots": 4}}),
        ("ncpdnet-3d", {"trajectory": "kooshball", "volume_shape": list(TINY_3D)}),
    ],
    ids=["ncpdnet-radial", "nc-unet-multicoil-spiral", "ncpdnet-3d-kooshball"],
)
def test_tiny_run_resume_and_reload(demo_dir, tmp_path, model, options):
    model_config = {"filters": [4, 8], "n_convs": 1} if model == "nc-unet" else TINY_NCPDNET
    data_dir = "demo-volumes" if model == "ncpdnet-3d" else str(demo_dir)
    config = TrainConfig(
        model=model, model_config=model_config, data_dir=data_dir, epochs=1, steps_per_epoch=2, output_dir=str(tmp_path), **options
    )
    result = run_training(config, progress=False)
    run_dir = tmp_path / config.name
    assert result["summary"]["epochs_done"] == 1 and result["summary"]["steps"] == 2
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["config"]["trajectory"] == options["trajectory"]
    assert (run_dir / "best.weights.h5").is_file()
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    header, first = metrics[0].split(","), metrics[1].split(",")
    assert 0 < float(first[header.index("val_PSNR")]) < 100 and -1 <= float(first[header.index("val_SSIM")]) <= 1
    # the same configuration with more epochs resumes; another acquisition in the same directory is refused
    assert run_training(config.replace(epochs=2), progress=False)["summary"]["epochs_done"] == 2
    with pytest.raises(ConfigError, match="density_compensation differ"):
        run_training(config.replace(epochs=2, density_compensation=False), progress=False)
    loaded, loaded_config = load_trained_model(run_dir, "final")
    assert loaded_config == config.replace(epochs=2) and loaded.image_shape == (TINY_3D if config.volumetric else (32, 32))
    inputs, target = next(iter(acquisition(config, 0).dataset(split_source(config, "val"))))
    outputs = loaded(inputs).numpy()
    assert outputs.shape == target.shape and np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs, checkpoint_outputs(run_dir, config, stored["crop_size"], inputs), rtol=1e-5, atol=1e-5)
    best, _ = load_trained_model(run_dir)
    assert best(inputs).shape == outputs.shape
