"""Table (d) (`workflows.table_d`) and its command, ``fastmri-recon benchmark --table d``: the plan, errors, a tiny end-to-end run."""

import json
import shutil

import pytest
from test_cli import run_main

from fastmri_recon.errors import ConfigError
from fastmri_recon.workflows import table_d

SOLVER_KEYS = ("solver", "max_iter", "tol", "backward_max_iter", "backward_tol")


def run_table_command(capfd, args):
    """``fastmri-recon benchmark --table d ARGS`` in this process: (exit status, stdout, stderr lines)."""
    return run_main(["benchmark", "--table", "d", *map(str, args)], capfd)


def test_unknown_budget():
    with pytest.raises(ConfigError, match="budget must be one of tiny, default, paper, got 'huge'"):
        table_d.plan("huge")


@pytest.mark.parametrize("budget", ["tiny", "default"])
def test_plan_compares_backward_modes_on_equal_terms(budget):
    table = table_d.plan(budget)
    assert (table.coils, table.mask_type, table.accelerations, table.baselines) == ("multicoil", "equispaced_fraction", (4,), ("zero-filled",))
    unrolled, *deqs = table.learned
    assert unrolled.model == "xpdnet" and [d.model for d in deqs] == ["deq-xpdnet"] * 3
    assert [d.model_config["backward"] for d in deqs] == ["shine", "jacobian-free", "implicit"]
    assert len({entry.steps for entry in table.learned}) == 1
    # one solver configuration for every DEQ, the denoiser of the unrolled network
    assert len({tuple(d.model_config[k] for k in SOLVER_KEYS) for d in deqs}) == 1
    assert deqs[0].model_config["solver"] == "broyden"
    without_backward = [{k: v for k, v in d.model_config.items() if k != "backward"} for d in deqs]
    assert without_backward[0] == without_backward[1] == without_backward[2]
    for key in ("n_primal", "image_net", "image_net_size", "phase_normalization"):
        assert unrolled.model_config[key] == deqs[0].model_config[key], key
    assert unrolled.model_config.get("image_net_params") == deqs[0].model_config.get("image_net_params")
    assert [table_d.label(e) for e in table.learned] == ["xpdnet", "deq-xpdnet (shine)", "deq-xpdnet (jacobian-free)", "deq-xpdnet (implicit)"]


def test_paper_plan_is_the_registry_configuration():
    table = table_d.plan("paper")
    assert table.learned[0].model_config == {}
    assert [e.model_config for e in table.learned[1:]] == [{"backward": m} for m in ("shine", "jacobian-free", "implicit")]
    assert {e.steps for e in table.learned} == {20 * table_d.plan("default").learned[0].steps}


def test_real_data_without_the_validation_split_is_one_line_status_2(tmp_path, capfd):
    (tmp_path / "data" / "multicoil_train").mkdir(parents=True)
    status, _, err = run_table_command(capfd, ["--data-dir", tmp_path / "data", "--output-dir", tmp_path / "out"])
    lines = [line for line in err if not line.startswith(("E0000", "W0000", "I0000"))]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "multicoil_val" in lines[0], err
    assert not (tmp_path / "out").exists()


def test_published_weights_are_tables_a_and_b_only(tmp_path, capfd):
    status, _, err = run_main(["benchmark", "--table", "d", "--weights", "published", "--output-dir", str(tmp_path / "out")], capfd)
    lines = [line for line in err if not line.startswith(("E0000", "W0000", "I0000"))]
    assert status == 2 and len(lines) == 1 and "the published weights are those of tables a and b" in lines[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.e2e
def test_table_d_tiny(demo_dir, tmp_path, capfd):
    # the tiny demo set copied without its demo_info.json: read as fastMRI data, used as it is (not rebuilt)
    data = tmp_path / "data"
    for split in ("multicoil_train", "multicoil_val"):
        shutil.copytree(demo_dir / split, data / split)
    out = tmp_path / "out" / "table_d"
    status, stdout, err = run_table_command(capfd, ["--budget", "tiny", "--data-dir", data, "--output-dir", tmp_path / "out", "--quiet"])
    assert status == 0, err
    assert f"table (d) written to {out}" in stdout
    assert not (data / "demo_info.json").exists()

    stored = json.loads((out / "table_d_deq.json").read_text())
    assert (stored["budget"], stored["data"], stored["acceleration"]) == ("tiny", "fastMRI", 4)
    rows = {row["model"]: row for row in stored["rows"]}
    modes = ("shine", "jacobian-free", "implicit")
    assert list(rows) == ["zero-filled", "xpdnet", *(f"deq-xpdnet ({m})" for m in modes)]
    validation_volumes = len(list((demo_dir / "multicoil_val").glob("*.h5")))
    for name, row in rows.items():
        assert row["acquisition"] == "equispaced_fraction x4 (cf 0.08)", name
        assert row["volumes"] == validation_volumes and row["mean"]["PSNR"] > 0 and 0 < row["mean"]["SSIM"] <= 1, name
    for key in ("train_steps", "train_seconds_per_step", "forward_iterations", "forward_converged", "forward_residual"):
        assert rows["zero-filled"][key] is None, key
    assert rows["xpdnet"]["train_steps"] == 2 and rows["xpdnet"]["train_seconds_per_step"] > 0
    assert rows["xpdnet"]["forward_iterations"] is None
    for mode in modes:
        row = rows[f"deq-xpdnet ({mode})"]
        assert row["train_steps"] == 2 and row["train_seconds_per_step"] > 0
        assert 1 <= row["forward_iterations"] <= 3  # the tiny budget's max_iter
        assert 0 <= row["forward_converged"] <= 1 and row["forward_residual"] >= 0
        assert row["num_params"] > 0
    assert len({rows[f"deq-xpdnet ({m})"]["num_params"] for m in modes}) == 1

    table = (out / "table_d_deq.md").read_text()
    header = "| model | acquisition | volumes | PSNR | SSIM | NMSE | s / slice | parameters | train steps | train s / step | solver iterations | converged |"
    assert header in table and header in stdout
    assert "| deq-xpdnet (implicit) | equispaced_fraction x4 (cf 0.08) |" in table
    assert "Data: fastMRI" in table and "tiny budget" in table
    csv_lines = (out / "table_d_deq.csv").read_text().splitlines()
    assert csv_lines[0] == header.strip("| ").replace(" | ", ",") and len(csv_lines) == 1 + len(rows)
    for name in ("results.json", "results.csv", "results.md", "reconstructions.png"):
        assert (out / "table_d_deq_x4" / name).is_file(), name
    runs = sorted(p.name for p in (out / "runs" / "tiny").iterdir())
    assert runs == ["tiny_deq-xpdnet_implicit", "tiny_deq-xpdnet_jacobian-free", "tiny_deq-xpdnet_shine", "tiny_xpdnet"]
