"""The run directory as every command reads it: a non-Cartesian run through the hub, `weights publish` and `reconstruct`."""

import json

import h5py
import numpy as np
import pytest

from fastmri_recon.data.h5 import FastMRIFile, list_volumes
from fastmri_recon.errors import ConfigError
from fastmri_recon.data.acquisition import NonCartesianAcquisition
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.evaluate.metrics import evaluate_volume
from fastmri_recon.hub.load import load_pretrained
from fastmri_recon.training.config import TrainConfig
from fastmri_recon.training.run import run_training
from fastmri_recon.training.rundir import RunDirectory, split_dir
from test_cli import run_main

TINY_NCPDNET = {"n_iter": 1, "n_primal": 2, "n_filters": 4}


@pytest.fixture(scope="module")
def nc_run(demo_dir, tmp_path_factory):
    """A finished 2-step single-coil NC-PDNet run on radial samples simulated from the tiny demo data, on a 36 x 36 grid."""
    config = TrainConfig(
        model="ncpdnet", model_config=TINY_NCPDNET, data_dir=str(demo_dir), trajectory="radial", image_shape=[36, 36],
        epochs=1, steps_per_epoch=2, output_dir=str(tmp_path_factory.mktemp("runs")), run_name="tiny-ncpdnet",
    )
    return RunDirectory.read(run_training(config, progress=False)["run_dir"])


def errors(lines):
    """The command's stderr lines without TensorFlow's start-up line (printed once per process, by whichever test starts it)."""
    return [line for line in lines if "cuInit" not in line]


@pytest.mark.slow
def test_a_run_reads_back_with_its_grid_scale_and_acquisition(nc_run):
    assert nc_run.name == "tiny-ncpdnet" and nc_run.crop_size == (32, 32) and nc_run.grid == (36, 36)
    assert nc_run.model_config() == {**TINY_NCPDNET, "crop_size": [32, 32], "image_shape": [36, 36]}
    assert nc_run.scale_factor == 1e6 and nc_run.compression() is None and not nc_run.learned
    acquisition = nc_run.acquisition()
    assert isinstance(acquisition, NonCartesianAcquisition) and acquisition.describe() == "radial x4"
    assert acquisition.pipeline.image_shape == (36, 36)
    with pytest.raises(ConfigError, match="no final.weights.h5|weights='last'"):
        nc_run.weights("last")


@pytest.mark.slow
def test_the_hub_builds_a_noncartesian_run_on_its_grid(nc_run):
    """`from_pretrained(RUN_DIR)` (the hub's reading of the run) gives the run's own model, on its 36 x 36 grid (it used to drop the grid)."""
    pretrained = load_pretrained(nc_run.path)
    assert pretrained.model.image_shape == (36, 36) and pretrained.scale_factor == 1e6
    inputs, _ = next(iter(nc_run.acquisition().dataset(split_dir(nc_run.config, "val"))))
    np.testing.assert_array_equal(pretrained.model(inputs), nc_run.model()(inputs))


def test_a_run_that_learned_its_trajectory_is_refused_by_the_hub_with_one_line(tmp_path):
    run_dir = tmp_path / "learned"
    run_dir.mkdir()
    stored = {"config": {"model": "ncpdnet", "trajectory": "learned-radial"}, "crop_size": [32, 32]}
    (run_dir / "config.json").write_text(json.dumps(stored))
    (run_dir / "best.weights.h5").write_bytes(b"")
    with pytest.raises(ConfigError, match="learned its trajectory \\(learned-radial\\): its weights hold the trajectory"):
        load_pretrained(run_dir)


@pytest.mark.slow
def test_publish_dry_run_of_a_noncartesian_run(nc_run, tmp_path, capfd):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"manifest_version": 1, "models": []}) + "\n")
    folder = tmp_path / "hub"
    argv = ["weights", "publish", str(nc_run.path), "--repo-id", "someone/tiny-ncpdnet", "--output-dir", str(folder)]
    status, out, err = run_main([*argv, "--manifest", str(manifest), "--dry-run", "--quiet"], capfd)
    assert status == 0, errors(err)
    assert "dry run: nothing uploaded, manifest unchanged" in out
    assert json.loads(manifest.read_text())["models"] == []
    entry = json.loads((folder / "config.json").read_text())
    assert entry["acquisition"] == {"coils": "singlecoil", "trajectory": "radial", "dimensions": 2}
    assert entry["config"]["image_shape"] == [36, 36] and entry["accelerations"] == [4.0]
    assert [m["acceleration"] for m in entry["metrics"]] == [4.0] and "mask_type" not in entry["metrics"][0]
    # the metrics are evaluate's on the run's acquisition
    result = evaluate_directory(nc_run.model(), "tiny", split_dir(nc_run.config, "val"), nc_run.acquisition(), progress=False)
    assert entry["metrics"][0]["PSNR"] == pytest.approx(result.summary.means()["PSNR"], abs=1e-6)
    card = (folder / "README.md").read_text()
    assert "| model | data | trajectory |" in card and "| nc-adjoint |" in card and "model((kspace * 1e6, trajectory, density))" in card
    assert (folder / "reconstruction.png").is_file()
    # the published folder loads back to the same network
    inputs, _ = next(iter(nc_run.acquisition().dataset(split_dir(nc_run.config, "val"))))
    np.testing.assert_array_equal(load_pretrained(folder).model(inputs), nc_run.model()(inputs))


@pytest.mark.slow
def test_reconstruct_a_noncartesian_run_on_its_simulated_acquisition(nc_run, demo_dir, tmp_path, capfd):
    """`reconstruct --model RUN_DIR` writes every validation volume's reconstruction, at the targets' size, in the
    data's units: its metrics against the targets are `evaluate`'s for the run."""
    val = split_dir(nc_run.config, "val")
    status, out, err = run_main(["reconstruct", "--model", str(nc_run.path), str(val), str(tmp_path / "out"), "--quiet"], capfd)
    assert status == 0, errors(err)
    assert out.startswith(f"2 reconstructions written to {tmp_path / 'out'} (tiny-ncpdnet, training run ")
    result = evaluate_directory(nc_run.model(), "tiny", val, nc_run.acquisition(), progress=False)
    for path in list_volumes(val):
        with h5py.File(tmp_path / "out" / path.name, "r") as handle, FastMRIFile(path) as source:
            recon, target = handle["reconstruction"][()], source.target()
        assert recon.dtype == np.float32 and recon.shape == target.shape
        expected = result.summary.per_volume[path.name]
        np.testing.assert_allclose(evaluate_volume(target, recon)["PSNR"], expected["PSNR"], atol=1e-4)
    # test files carry no target: one line, nothing written
    status, _, err = run_main(["reconstruct", "--model", str(nc_run.path), str(demo_dir / "singlecoil_test"), str(tmp_path / "t"), "--quiet"], capfd)
    assert status == 2 and len(errors(err)) == 1 and "target" in errors(err)[0]
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())


@pytest.mark.slow
def test_publish_dry_run_of_a_3d_run_and_reconstruct_refuses_it(demo_dir, tmp_path, capfd):
    """A 3D run on the demo volumes publishes (metrics on its demo validation volumes); reconstruct says it writes 2D slices."""
    config = TrainConfig(
        model="ncpdnet-3d", model_config=TINY_NCPDNET, trajectory="kooshball", volume_shape=[8, 16, 16],
        epochs=1, steps_per_epoch=1, output_dir=str(tmp_path / "runs"),
    )
    run = RunDirectory.read(run_training(config, progress=False)["run_dir"])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"manifest_version": 1, "models": []}) + "\n")
    argv = ["weights", "publish", str(run.path), "--repo-id", "someone/tiny-3d", "--output-dir", str(tmp_path / "hub")]
    status, out, err = run_main([*argv, "--manifest", str(manifest), "--dry-run", "--quiet"], capfd)
    assert status == 0, errors(err)
    entry = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert entry["acquisition"] == {"coils": "singlecoil", "trajectory": "kooshball", "dimensions": 3}
    assert entry["config"]["image_shape"] == [8, 16, 16] and entry["metrics"][0]["volumes"] == 2
    assert entry["training_data"] == entry["metrics"][0]["data"].replace("val", "train")
    status, _, err = run_main(["reconstruct", "--model", str(run.path), str(demo_dir / "singlecoil_val"), str(tmp_path / "out"), "--quiet"], capfd)
    assert status == 2 and len(errors(err)) == 1 and "reconstruct writes 2D slices" in errors(err)[0]
