"""Training runs from a configuration: validation, dry run, a tiny run on the demo data, reloading."""

import json

import numpy as np
import pytest

from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.training.config import TrainConfig, from_dict, load_config
from fastmri_recon.training.rundir import load_trained_model
from fastmri_recon.training.run import run_training

TINY_UNET = {"filters": [4, 8], "n_convs": 1}


def test_config_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown key\\(s\\) learning_rat"):
        from_dict({"learning_rat": 1e-3})
    with pytest.raises(ConfigError, match="epochs='3': expected int"):
        from_dict({"epochs": "3"})
    with pytest.raises(ConfigError, match="accelerations"):
        from_dict({"accelerations": []})
    with pytest.raises(ConfigError, match="coils='dualcoil'"):
        TrainConfig(coils="dualcoil")
    assert TrainConfig(accelerations=8).accelerations == (8,)


def test_load_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("model: pdnet\nepochs: 2\naccelerations: [4, 8]\n")
    (tmp_path / "b.json").write_text(json.dumps({"model": "unet", "model_config": {"n_layers": 2}}))
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    assert from_dict(load_config(tmp_path / "a.yaml")).accelerations == (4, 8)
    assert from_dict(load_config(tmp_path / "b.json")).model_config == {"n_layers": 2}
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.yaml")


def test_run_name_is_derived_from_the_configuration():
    assert TrainConfig(model="pdnet", coils="multicoil", accelerations=(4, 8)).name == "pdnet_multicoil_random_x4-8"


def test_dry_run_and_bad_inputs(demo_dir, tmp_path):
    config = TrainConfig(model="unet", model_config=TINY_UNET, data_dir=str(demo_dir), output_dir=str(tmp_path))
    resolved = run_training(config, dry_run=True)
    assert resolved["strategy"]["strategy"] == "one-device" and resolved["strategy"]["replicas"] == 1
    assert not (tmp_path / config.name).exists()
    with pytest.raises(ConfigError, match="model_config for 'unet'"):
        run_training(config.replace(model_config={"no_such_argument": 1}), dry_run=True)
    with pytest.raises(ConfigError, match="unknown model 'unet3'"):
        run_training(config.replace(model="unet3"), dry_run=True)
    with pytest.raises(DataError, match="no such directory"):
        run_training(config.replace(data_dir=str(tmp_path / "nowhere")), dry_run=True)


@pytest.mark.slow
@pytest.mark.parametrize("coils, model, model_config", [
    ("singlecoil", "unet", TINY_UNET),
    ("multicoil", "pdnet", {"n_iter": 2, "n_filters": 4, "n_primal": 2, "n_dual": 2}),
])
def test_tiny_run_resume_reload_and_evaluate(demo_dir, tmp_path, coils, model, model_config):
    config = TrainConfig(
        model=model, model_config=model_config, data_dir=str(demo_dir), coils=coils, epochs=1,
        steps_per_epoch=2, batch_size=1, output_dir=str(tmp_path),
    )
    result = run_training(config, progress=False)
    run_dir = tmp_path / config.name
    assert result["summary"]["epochs_done"] == 1
    for name in ("config.json", "summary.json", "best.weights.h5", "final.weights.h5", "metrics.csv"):
        assert (run_dir / name).is_file(), name
    # the same command with more epochs resumes; another configuration is refused
    assert run_training(config.replace(epochs=2), progress=False)["summary"]["epochs_done"] == 2
    finished = json.loads((run_dir / "summary.json").read_text())
    assert finished["steps"] == 2 and run_training(config.replace(epochs=2), progress=False)["summary"] == finished
    assert json.loads((run_dir / "summary.json").read_text()) == finished  # nothing trained: kept
    with pytest.raises(ConfigError, match="learning_rate differ"):
        run_training(config.replace(learning_rate=0.1), progress=False)
    model_, loaded_config = load_trained_model(run_dir)
    assert loaded_config.model == model
    sampler = MaskSampler("random", [0.08], [4])
    evaluation = evaluate_directory(model_, model, demo_dir / f"{coils}_val", sampler, progress=False)
    assert np.isfinite(evaluation.summary.means()["PSNR"])


def test_load_trained_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a training run directory"):
        load_trained_model(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path(__file__).resolve().parents[2].glob("experiments/*.yaml")), ids=lambda p: p.name)
def test_experiment_configs_are_valid(path):
    """Every experiment file is a valid configuration whose model builds."""
    from fastmri_recon.training.rundir import build_model

    config = from_dict(load_config(path), str(path))
    assert build_model(config, (32, 32)) is not None


@pytest.mark.slow
def test_cache_dir_feeds_the_same_batches(demo_dir, tmp_path):
    """A run reading TFRecord caches of its splits sees the HDF5 batches; non-Cartesian models refuse it."""
    from fastmri_recon.data.datasets.tfrecord import build_cache
    from fastmri_recon.training.run import data_functions

    for split in ("train", "val"):
        build_cache(demo_dir / f"multicoil_{split}", tmp_path / "cache" / f"multicoil_{split}", progress=False)
    config = TrainConfig(model="xpdnet", data_dir=str(demo_dir), coils="multicoil", batch_size=2)
    cached = config.replace(cache_dir=str(tmp_path / "cache"))
    for plain, from_cache in zip(data_functions(config), data_functions(cached)):
        for (inputs, target), (cached_inputs, cached_target) in zip(plain(None, 0).take(2), from_cache(None, 0).take(2)):
            np.testing.assert_array_equal(target.numpy(), cached_target.numpy())
            for a, b in zip(inputs, cached_inputs):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ConfigError, match="cache_dir=.*a Cartesian option"):
        TrainConfig(model="ncpdnet", data_dir=str(demo_dir), cache_dir=str(tmp_path / "cache"))
