"""The command line: help, the demo-data / evaluate job, and one-line errors with status 2."""

import json
import os
import subprocess
import sys

import pytest
from data.test_h5 import corrupt  # noqa: F401  (shared bad-file factory)

from conftest import random_volume

from fastmri_recon.cli import main


def run_main(argv, capfd):
    """Run the console entry point in-process; return (exit status, stdout, stderr lines)."""
    try:
        main(argv)
        status = 0
    except SystemExit as exit_:
        status = exit_.code or 0
    out, err = capfd.readouterr()
    # progress bars redraw with carriage returns: keep what each line finally shows
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    return status, out, [line for line in lines if line.strip()]


def test_help_lists_commands(capfd):
    status, out, _ = run_main(["--help"], capfd)
    assert status == 0
    for command in ("demo-data", "cache-tfrecords", "evaluate", "models", "train", "benchmark", "weights", "reconstruct"):
        assert command in out


@pytest.mark.parametrize(
    "command",
    ["demo-data", "cache-tfrecords", "evaluate", "models", "train", "benchmark", "reconstruct", "weights", "weights list", "weights fetch",
     "weights publish"],
)
def test_command_help(capfd, command):
    status, out, _ = run_main([*command.split(), "--help"], capfd)
    assert status == 0 and "Usage: fastmri-recon" in out


def test_evaluate_prints_table_and_writes_results(demo_dir, tmp_path, capfd):
    status, out, err = run_main(
        ["evaluate", str(demo_dir / "multicoil_val"), "--acceleration", "4,8", "--output-dir", str(tmp_path), "--quiet"], capfd
    )
    assert status == 0, err
    assert "| zero-filled | random x4 (cf 0.08), x8 (cf 0.04) | 2 |" in out
    assert json.loads((tmp_path / "results.json").read_text())[0]["volumes"] == 2


@pytest.mark.slow
def test_models_lists_every_entry_with_its_parameter_count(capfd):
    from fastmri_recon.models.registry import ENTRIES

    status, out, err = run_main(["models"], capfd)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "| name | kind | parameters | summary |" and len(lines) == 2 + len(ENTRIES)
    for entry in ENTRIES.values():
        assert f"| {entry.name} | {entry.kind} | " in out
    assert "| zero-filled | baseline | 0 |" in out
    assert "| xpdnet | model | 62,179,300 |" in out  # 10 x the benchmark's medium MWCNN (6,217,930)
    assert "| e2e-varnet | model | 29,936,966 |" in out  # as fastMRI's VarNet at its defaults


def bad_directory(kind, tmp_path, demo_dir):
    """A directory to evaluate holding one bad file (or being bad itself)."""
    if kind == "missing_path":
        return tmp_path / "nowhere", "no such directory"
    if kind == "no_h5":
        (tmp_path / "readme.txt").write_text("nothing here")
        return tmp_path, "no .h5 files"
    if kind == "test_split":
        return demo_dir / "singlecoil_test", "has no target"
    message = corrupt(kind, tmp_path / "file1000001.h5")
    return tmp_path, message


BAD = ["missing_path", "no_h5", "text", "truncated", "no_kspace", "rank", "real", "nan", "target_size", "slices", "test_split"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_one_line_status_2(kind, tmp_path, demo_dir, capfd):
    directory, message = bad_directory(kind, tmp_path, demo_dir)
    status, _, err = run_main(["evaluate", str(directory)], capfd)
    assert status == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and message in err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate"], "Missing argument"),
        (["evaluate", ".", "--model", "unet-ish"], "unknown model"),
        (["evaluate", ".", "--model", "ncpdnet"], "--trajectory: needed for non-Cartesian baselines"),
        (["evaluate", ".", "--model", "zero-filled", "--trajectory", "radial"], "no --model is non-Cartesian"),
        (["evaluate", ".", "--model", "nc-adjoint", "--trajectory", "radial", "--mask-type", "random"], "no --model is Cartesian"),
        (["evaluate", ".", "--model", "nc-adjoint", "--trajectory", "radial", "--acceleration", "4,8"], "one acceleration"),
        (["evaluate", ".", "--model", "nc-adjoint", "--trajectory", "helix"], "'helix' is not one of"),
        (["evaluate", ".", "--acceleration", "3"], "no default center fraction"),
        (["evaluate", ".", "--acceleration", "4", "--center-fraction", "0.5"], "center"),
        (["evaluate", ".", "--mask-type", "spiral"], "spiral"),
        (["demo-data", "x", "--coils", "1"], "coils=1"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_options_one_line_status_2(argv, message, capfd):
    status, _, err = run_main(argv, capfd)
    assert status == 2 and len(err) == 1 and message in err[0], err


@pytest.mark.slow
@pytest.mark.e2e
def test_console_script_end_to_end(tmp_path):
    """The README's job as a user types it: build demo data, evaluate the zero-filled baseline."""
    exe = os.path.join(os.path.dirname(sys.executable), "fastmri-recon")
    args = ["--train-subjects", "1", "--val-subjects", "1", "--test-subjects", "1", "--slices", "2", "--image-size", "32"]
    build = subprocess.run([exe, "demo-data", str(tmp_path / "d"), *args], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "demo data built: 6 files" in build.stdout
    result = subprocess.run([exe, "evaluate", str(tmp_path / "d/singlecoil_val")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| zero-filled | random x4 (cf 0.08) | 1 |" in result.stdout
    assert "Traceback" not in result.stderr and "I0000" not in result.stderr
    bad = subprocess.run([exe, "evaluate", str(tmp_path / "missing")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no such directory" in bad.stderr


def test_train_dry_run_prints_strategy_and_config(demo_dir, tmp_path, capfd):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: pdnet\ndata_dir: {demo_dir}\nepochs: 3\nmodel_config:\n  n_iter: 2\n")
    status, out, err = run_main(["train", "--config", str(config), "--epochs", "1", "--model-config", "n_filters=4", "--dry-run"], capfd)
    assert status == 0, err
    resolved = json.loads(out)
    assert resolved["strategy"]["strategy"] == "one-device"
    assert resolved["config"]["epochs"] == 1 and resolved["config"]["model_config"] == {"n_iter": 2, "n_filters": 4}


@pytest.mark.slow
def test_train_then_evaluate_the_run(demo_dir, tmp_path, capfd):
    args = ["--data-dir", str(demo_dir), "--model-config", "filters=[4,8]", "--steps-per-epoch", "2", "--epochs", "1"]
    status, out, err = run_main(["train", *args, "--output-dir", str(tmp_path), "--quiet"], capfd)
    assert status == 0, err
    assert "training done: 1 epochs" in out
    run_dir = tmp_path / "unet_singlecoil_random_x4"
    status, out, err = run_main(["evaluate", str(demo_dir / "singlecoil_val"), "--model", "zero-filled", "--model", str(run_dir), "--quiet"], capfd)
    assert status == 0, err
    assert "| unet_singlecoil_random_x4 | random x4 (cf 0.08) | 2 |" in out


@pytest.mark.parametrize(
    "content, message",
    [
        ("epochs: [1\n", "not valid YAML"),
        ("learning_rat: 0.1\n", "unknown key(s) learning_rat"),
        ("epochs: three\n", "epochs='three'"),
        ("model: unet9\n", "unknown model 'unet9'"),
        ("model: ncpdnet\ndensity_compensation: maybe\n", "density_compensation='maybe': expected bool"),
        ("model: unet\ntrajectory: spiral\n", "a non-Cartesian option, but model 'unet'"),
    ],
)
def test_train_bad_configs_one_line_status_2(tmp_path, demo_dir, capfd, content, message):
    config = tmp_path / "bad.yaml"
    config.write_text(content if "data_dir" in content else content + f"data_dir: {demo_dir}\n")
    status, _, err = run_main(["train", "--config", str(config), "--dry-run"], capfd)
    assert status == 2 and len(err) == 1 and message in err[0], err


NC_TINY = ["--model-config", "n_iter=1", "--model-config", "n_primal=2", "--model-config", "n_filters=4"]


@pytest.mark.slow
def test_train_noncartesian_then_evaluate_the_run_and_the_adjoint(demo_dir, tmp_path, capfd):
    args = ["train", "--model", "ncpdnet", *NC_TINY, "--data-dir", str(demo_dir), "--trajectory", "spiral", "--trajectory-option", "n_shots=4"]
    status, out, err = run_main([*args, "--steps-per-epoch", "2", "--epochs", "1", "--output-dir", str(tmp_path), "--quiet"], capfd)
    assert status == 0, err
    assert "training done: 1 epochs" in out
    run_dir = tmp_path / "ncpdnet_singlecoil_spiral_x4"
    assert json.loads((run_dir / "config.json").read_text())["config"]["trajectory_options"] == {"n_shots": 4}
    argv = ["evaluate", str(demo_dir / "singlecoil_val"), "--model", str(run_dir), "--model", "nc-adjoint", "--output-dir", str(tmp_path / "eval"), "--quiet"]
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    assert "| ncpdnet_singlecoil_spiral_x4 | spiral x4 (n_shots=4) | 2 |" in out and "| nc-adjoint | spiral x4 (n_shots=4) | 2 |" in out
    assert [r["model"] for r in json.loads((tmp_path / "eval" / "results.json").read_text())] == ["ncpdnet_singlecoil_spiral_x4", "nc-adjoint"]
    assert (tmp_path / "eval" / "reconstructions.png").is_file()
    # a run's grid is its training size: larger targets are refused before any work, both sizes named
    (tmp_path / "large").mkdir()
    random_volume(tmp_path / "large" / "large.h5", height=96, width=96)
    status, out, err = run_main(["evaluate", str(tmp_path / "large"), "--model", "nc-adjoint", "--model", str(run_dir), "--quiet"], capfd)
    assert status == 2 and len(err) == 1 and not out
    assert f"'ncpdnet_singlecoil_spiral_x4' works on a 32 x 32 grid; the targets of {tmp_path / 'large'} are 48 x 48" in err[0]


@pytest.mark.slow
def test_evaluate_adjoint_on_a_trajectory(demo_dir, tmp_path, capfd):
    argv = ["evaluate", str(demo_dir / "multicoil_val"), "--model", "nc-adjoint", "--model", "zero-filled", "--trajectory", "radial",
            "--acceleration", "4", "--output-dir", str(tmp_path), "--quiet"]  # fmt: skip
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    assert "| nc-adjoint | radial x4 | 2 |" in out and "| zero-filled | random x4 (cf 0.08) | 2 |" in out
    assert json.loads((tmp_path / "results.json").read_text())[0]["acquisition"] == "radial x4"


@pytest.mark.slow
def test_evaluate_adjoint_on_the_demo_volumes(capfd):
    status, out, err = run_main(["evaluate", "demo-volumes", "--model", "nc-adjoint", "--trajectory", "stack_of_spirals", "--quiet"], capfd)
    assert status == 0, err
    assert "| nc-adjoint | stack_of_spirals x4 | 2 |" in out


def test_train_dry_run_shows_the_noncartesian_options(capfd):
    argv = ["train", "--model", "ncpdnet-3d", "--trajectory", "kooshball", "--volume-shape", "16,16,16", "--no-density-compensation", "--dry-run"]
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    config = json.loads(out)["config"]
    assert (config["trajectory"], config["volume_shape"], config["density_compensation"]) == ("kooshball", [16, 16, 16], False)
    assert config["data_dir"] == "demo-volumes" and config["mask_type"] is None
    assert json.loads(out)["run_dir"].endswith("ncpdnet-3d_singlecoil_kooshball_x4")


@pytest.mark.slow
def test_train_and_evaluate_with_known_off_resonance(demo_dir, tmp_path, capfd):
    """Spiral samples with the demo files' B0 maps, given to NC-PDNet (its encoding B0-aware) and to the adjoint."""
    args = ["train", "--model", "ncpdnet", *NC_TINY, "--data-dir", str(demo_dir), "--trajectory", "spiral",
            "--trajectory-option", "n_shots=4", "--set", "acquisition.off_resonance=known"]  # fmt: skip
    status, out, err = run_main([*args, "--steps-per-epoch", "2", "--epochs", "1", "--output-dir", str(tmp_path), "--quiet"], capfd)
    assert status == 0, err
    run_dir = tmp_path / "ncpdnet_singlecoil_spiral_x4_b0-known"
    assert json.loads((run_dir / "config.json").read_text())["config"]["off_resonance"] == "known"
    argv = ["evaluate", str(demo_dir / "singlecoil_val"), "--model", str(run_dir), "--model", "nc-adjoint", "--quiet"]
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    sampling = "spiral x4 (n_shots=4), off-resonance known"
    assert f"| ncpdnet_singlecoil_spiral_x4_b0-known | {sampling} | 2 |" in out and f"| nc-adjoint | {sampling} | 2 |" in out
    status, _, err = run_main(["train", "--model", "ncpdnet", "--data-dir", str(demo_dir), "--set", "acquisition.off_resonance=known", "--dry-run"], capfd)
    assert status == 2 and "off_resonance='known': expected None with a radial trajectory" in err[-1], err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "unet", "--trajectory", "radial"], "trajectory='radial': a non-Cartesian option, but model 'unet'"),
        (["--model", "ncpdnet", "--mask-type", "equispaced"], "mask_type='equispaced': a Cartesian option"),
        (["--model", "ncpdnet", "--trajectory", "kooshball"], "expected one of radial, spiral"),
        (["--model", "ncpdnet", "--acceleration", "4,8"], "one acceleration"),
        (["--model", "ncpdnet-3d", "--coils", "multicoil"], "single-coil volumes"),
        (["--model", "ncpdnet", "--image-shape", "32,x"], "expected comma-separated integers"),
        (["--model", "ncpdnet", "--trajectory", "spiral", "--trajectory-option", "n_shots=0"], "trajectory_options={'n_shots': 0}"),
        (["--model", "ncpdnet", "--trajectory-option", "n_shots"], "expected KEY=VALUE"),
        (["--model", "pdnet", "--no-density-compensation"], "density_compensation=False: a non-Cartesian option"),
    ],
)
def test_train_bad_noncartesian_options_one_line_status_2(demo_dir, argv, message, capfd):
    status, _, err = run_main(["train", *argv, "--data-dir", str(demo_dir), "--dry-run"], capfd)
    assert status == 2 and len(err) == 1 and message in err[0], err


@pytest.mark.slow
@pytest.mark.e2e
def test_benchmark_tiny(tmp_path, capfd):
    status, out, err = run_main(["benchmark", "--budget", "tiny", "--data-dir", str(tmp_path / "d"), "--output-dir", str(tmp_path / "b"), "--quiet"], capfd)
    assert status == 0, err
    for name in ("table_a_singlecoil.md", "table_b_multicoil.md", "benchmark.json", "table_a_singlecoil_x4/reconstructions.png"):
        assert (tmp_path / "b" / name).is_file(), name
    assert "published PSNR (fastMRI knee)" in out and "cs-wavelet: lam=" in out and "grappa: tikhonov=" in out
    tables = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert {r["model"] for r in tables["table_a_singlecoil"]} == {"zero-filled", "cs-wavelet", "unet", "kiki-net", "cascade-net", "pdnet"}
    assert {r["model"] for r in tables["table_b_multicoil"]} >= {"xpdnet", "e2e-varnet", "grappa", "sense"}


# --- published weights and reconstruct ---------------------------------------------------------------

REPO_MANIFEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights_manifest.json")


def test_weights_list_and_fetch_the_demo_weights(capfd, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, out, err = run_main(["weights", "list", "--manifest", REPO_MANIFEST], capfd)
    assert status == 0, err
    assert "| unet-demo-singlecoil | unet | singlecoil random x4,x8 | x4 " in out and "not uploaded" in out
    status, out, err = run_main(["weights", "fetch", "unet-demo-singlecoil", "--manifest", REPO_MANIFEST], capfd)
    assert status == 0, err
    assert out.startswith("unet-demo-singlecoil: unet, 29,321 weights, sha256 ") and " verified; file " in out


@pytest.mark.slow
def test_weights_publish_dry_run_prints_the_diff(tiny_run, tmp_path, capfd):
    manifest = tmp_path / "weights_manifest.json"
    manifest.write_text(json.dumps({"manifest_version": 1, "models": []}) + "\n")
    before = manifest.read_text()
    argv = ["weights", "publish", str(tiny_run), "--repo-id", "me/tiny", "--output-dir", str(tmp_path / "hub"),
            "--manifest", str(manifest), "--dry-run", "--quiet"]  # fmt: skip
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    assert f"folder written: {tmp_path / 'hub'} (README.md, config.json, reconstruction.png, tiny-unet.weights.h5)" in out
    assert '+      "name": "tiny-unet",' in out and "dry run: nothing uploaded, manifest unchanged" in out
    assert manifest.read_text() == before


def test_reconstruct_writes_submission_files_for_the_test_split(tiny_run, demo_dir, tmp_path, capfd):
    import h5py

    from fastmri_recon.data.h5 import FastMRIFile

    status, out, err = run_main(["reconstruct", "--model", str(tiny_run), str(demo_dir / "singlecoil_test"), str(tmp_path), "--quiet"], capfd)
    assert status == 0, err
    assert out.startswith(f"2 reconstructions written to {tmp_path} (tiny-unet, training run ")
    for source in sorted((demo_dir / "singlecoil_test").glob("*.h5")):
        with FastMRIFile(source) as handle, h5py.File(tmp_path / source.name, "r") as result:
            recon = result["reconstruction"]
            assert recon.shape == (handle.num_slices, *handle.header.target_shape) and recon.dtype == "float32"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["weights", "fetch", "unet-demo-singlecol", "--manifest", REPO_MANIFEST], "did you mean unet-demo-singlecoil"),
        (["weights", "fetch", "hf://no-owner"], "expected hf://OWNER/REPO"),
        (["weights", "fetch", "runs/nowhere"], "no such file or directory"),
        (["weights", "list", "--manifest", "missing.json"], "no weights manifest there"),
        (["weights", "publish", ".", "--repo-id", "me/x", "--dry-run", "--no-upload"], "exclude each other"),
        (["weights", "publish", ".", "--repo-id", "no-owner", "--dry-run"], "expected OWNER/NAME"),
        (["weights", "publish", "."], "Missing option '--repo-id'"),
        (["reconstruct", "in", "out"], "Missing option '--model'"),
        (["reconstruct", "--model", "nothing-like-it", "in", "out", "--manifest", REPO_MANIFEST], "in: no such directory"),  # data first

    ],
)
def test_weights_and_reconstruct_bad_options_one_line_status_2(argv, message, capfd):
    status, _, err = run_main(argv, capfd)
    assert status == 2 and len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("case", ["missing", "same", "no_mask", "not_run"])
def test_reconstruct_and_publish_bad_paths_one_line_status_2(case, tiny_run, demo_dir, tmp_path, capfd):
    argv, message = {
        "missing": (["reconstruct", "--model", str(tiny_run), str(tmp_path / "nowhere"), str(tmp_path / "out")], "no such directory"),
        "same": (["reconstruct", "--model", str(tiny_run), str(demo_dir / "singlecoil_test"), str(demo_dir / "singlecoil_test")], "must differ"),
        "no_mask": (["reconstruct", "--model", str(tiny_run), str(demo_dir / "singlecoil_val"), str(tmp_path / "out")], "has no 'mask'"),
        "not_run": (["weights", "publish", str(demo_dir), "--repo-id", "me/x", "--dry-run", "--manifest", REPO_MANIFEST], "not a training run"),
    }[case]
    status, _, err = run_main(argv, capfd)
    assert status == 2 and len(err) == 1 and message in err[0], err
