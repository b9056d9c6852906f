"""``train --trajectory learned-radial``: the trajectory trains with the network, within the gradient limits,
is saved with the run, resumes with it, and `evaluate` uses it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from test_cli import NC_TINY, run_main

import pytest

from fastmri_recon.data.gradient_limits import ReadoutConstraints
from fastmri_recon.training.rundir import load_trained_model

LEARNED = ["--trajectory", "learned-radial", "--trajectory-option", "n_shots=8", "--trajectory-option", "parameter_scale=8",
           "--trajectory-option", "projection_iterations=100", "--learning-rate", "0.01"]  # fmt: skip


@pytest.mark.slow
def test_learned_trajectory_run_trains_saves_resumes_and_evaluates(demo_dir, tmp_path, capfd):
    args = ["train", "--model", "ncpdnet", *NC_TINY, *LEARNED, "--data-dir", str(demo_dir), "--steps-per-epoch", "2",
            "--output-dir", str(tmp_path), "--run-name", "learned", "--quiet"]  # fmt: skip
    status, out, err = run_main([*args, "--epochs", "1"], capfd)
    assert status == 0, err
    run_dir = tmp_path / "learned"
    first = np.load(run_dir / "trajectory.npy")
    initial = np.load(run_dir / "trajectory_initial.npy")
    assert first.shape == initial.shape == (2, 8 * initial.shape[1] // 8)
    assert np.abs(first - initial).max() > 1e-4  # the trajectory moved
    summary = json.loads((run_dir / "trajectory.json").read_text())
    constraints = ReadoutConstraints.from_dict(summary["constraints"])
    assert summary["violations"]["learned"]["feasible"] and constraints.violations(first).feasible
    assert (run_dir / "trajectory.png").stat().st_size > 1000
    # run again with one more epoch: it resumes from its checkpoint, trajectory included, and moves on
    status, out, err = run_main([*args, "--epochs", "2"], capfd)
    assert status == 0, err
    assert "training done: 2 epochs" in out
    stored = json.loads((run_dir / "summary.json").read_text())
    assert stored["steps"] == 2  # only the second epoch's steps: the first was not trained again
    second = np.load(run_dir / "trajectory.npy")
    np.testing.assert_array_equal(np.load(run_dir / "trajectory_initial.npy"), initial)
    assert np.abs(second - first).max() > 0 and constraints.violations(second).feasible
    model, _ = load_trained_model(run_dir, "final")
    np.testing.assert_array_equal(model.trajectory_layer.learned(), second)
    # evaluate samples the images on the run's learned trajectory; the adjoint on the radial one it started from
    status, out, err = run_main(["evaluate", str(demo_dir / "singlecoil_val"), "--model", str(run_dir), "--model", "nc-adjoint",
                                 "--weights", "final", "--quiet"], capfd)  # fmt: skip
    assert status == 0, err
    assert "| learned | learned-radial x4 | 2 |" in out and "| nc-adjoint | radial x4 | 2 |" in out



@pytest.mark.slow
def test_multicoil_learned_trajectory_run_trains_and_evaluates(demo_dir, tmp_path, capfd):
    args = ["train", "--model", "ncpdnet", *NC_TINY, *LEARNED, "--coils", "multicoil", "--data-dir", str(demo_dir),
            "--steps-per-epoch", "2", "--epochs", "1", "--output-dir", str(tmp_path), "--run-name", "mc", "--quiet"]  # fmt: skip
    status, _, err = run_main(args, capfd)
    assert status == 0, err
    run_dir = tmp_path / "mc"
    learned, initial = np.load(run_dir / "trajectory.npy"), np.load(run_dir / "trajectory_initial.npy")
    assert np.abs(learned - initial).max() > 1e-4  # the coil images' samples moved the trajectory
    constraints = ReadoutConstraints.from_dict(json.loads((run_dir / "trajectory.json").read_text())["constraints"])
    assert constraints.violations(learned).feasible
    model, _ = load_trained_model(run_dir, "final")
    np.testing.assert_array_equal(model.trajectory_layer.learned(), learned)
    status, out, err = run_main(["evaluate", str(demo_dir / "multicoil_val"), "--model", str(run_dir), "--weights", "final",
                                 "--quiet"], capfd)  # fmt: skip
    assert status == 0, err
    assert "| mc | learned-radial x4 | 2 |" in out

def _errors(err):
    """The command's stderr lines without TensorFlow's start-up log (printed once, by whichever test first starts it)."""
    return [line for line in err if not line.startswith(("E0000", "W0000", "I0000"))]


def test_learned_trajectory_bad_options_one_line_status_2(demo_dir, tmp_path, capfd):
    args = ["train", "--model", "ncpdnet", *NC_TINY, "--trajectory", "learned-spiral", "--trajectory-option", "n_turn=3",
            "--data-dir", str(demo_dir), "--output-dir", str(tmp_path), "--dry-run"]  # fmt: skip
    status, _, err = run_main(args, capfd)
    err = _errors(err)
    assert status == 2 and len(err) == 1 and "for a learned-spiral trajectory" in err[0] and "n_turn" in err[0]
    status, _, err = run_main([*args[:-1], "--no-density-compensation", "--dry-run"], capfd)
    err = _errors(err)
    assert status == 2 and len(err) == 1 and "density_compensation=False" in err[0]


def _train_command(demo_dir, output_dir):
    exe = Path(sys.executable).with_name("fastmri-recon")
    return [str(exe), "train", "--model", "ncpdnet", *NC_TINY, *LEARNED, "--data-dir", str(demo_dir), "--steps-per-epoch", "6",
            "--epochs", "1", "--checkpoint-every", "1", "--deterministic", "--output-dir", str(output_dir), "--run-name", "learned",
            "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_killed_learned_trajectory_run_resumes_to_the_same_trajectory(demo_dir, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    reference = subprocess.run(_train_command(demo_dir, tmp_path / "reference"), capture_output=True, text=True, env=env, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    process = subprocess.Popen(_train_command(demo_dir, tmp_path / "killed"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    index = tmp_path / "killed" / "learned" / "checkpoints" / "checkpoint"
    deadline = time.time() + 600
    while not (index.is_file() and "ckpt-2" in index.read_text()):  # killed after its second step's checkpoint
        assert process.poll() is None and time.time() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (tmp_path / "killed" / "learned" / "trajectory.npy").exists()
    resumed = subprocess.run(_train_command(demo_dir, tmp_path / "killed"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "killed" / "learned" / "trajectory.npy"), np.load(tmp_path / "reference" / "learned" / "trajectory.npy"),
        rtol=1e-5, atol=1e-6,
    )
