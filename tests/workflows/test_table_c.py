"""Table (c) (`workflows.table_c`, run by ``fastmri-recon benchmark --table c``) at the tiny budget."""

import json

import pytest
from test_cli import run_main

from fastmri_recon.errors import ConfigError
from fastmri_recon.workflows import table_c


def test_unknown_budget():
    with pytest.raises(ConfigError, match="budget must be one of tiny, default, paper"):
        table_c.budget_settings("huge")


@pytest.mark.slow
@pytest.mark.e2e
def test_table_c_tiny(tmp_path):
    rows = table_c.run_table_c(tmp_path, "tiny", progress=False, log=lambda *_: None)
    stored = json.loads((tmp_path / "table_c_noncartesian.json").read_text())
    assert stored["budget"] == "tiny" and len(stored["rows"]) == len(rows) == 2 * 2 * 3 + 2 * 2
    methods = {(r["setting"], r["acquisition"], r["model"]) for r in stored["rows"]}
    for setting in ("2D single-coil", "2D multi-coil"):
        for trajectory in ("radial", "spiral"):
            assert {(setting, f"{trajectory} x4", m) for m in ("nc-adjoint", "ncpdnet", "nc-unet")} <= methods
    assert {("3D single-coil", f"{t} x4", m) for t in ("kooshball", "stack_of_spirals") for m in ("nc-adjoint", "ncpdnet-3d")} <= methods
    assert all(r["volumes"] >= 1 and r["mean"]["PSNR"] > 0 for r in stored["rows"])
    table = (tmp_path / "table_c_noncartesian.md").read_text()
    assert "| setting | model | acquisition | volumes | PSNR | SSIM | NMSE |" in table
    assert "| 2D multi-coil | nc-adjoint | spiral x4 | 1 |" in table
    for folder in ("singlecoil_radial", "multicoil_spiral", "volumes_radial"):
        assert (tmp_path / folder / "reconstructions.png").is_file() and (tmp_path / folder / "results.json").is_file()


def test_real_data_without_a_split_is_named(tmp_path):
    (tmp_path / "data" / "singlecoil_train").mkdir(parents=True)
    with pytest.raises(ConfigError, match="singlecoil_val, multicoil_train, multicoil_val"):
        table_c.run_table_c(tmp_path / "out", "tiny", progress=False, log=lambda *_: None, data_dir=tmp_path / "data")


def test_command_gives_table_c_a_fastmri_data_folder(tmp_path, capfd):
    """``benchmark --table c``: a folder of fastMRI data is the 2D settings' data (here incomplete: one line, status 2)."""
    (tmp_path / "data" / "singlecoil_train").mkdir(parents=True)
    status, _, err = run_main(["benchmark", "--table", "c", "--budget", "tiny", "--data-dir", str(tmp_path / "data"),
                               "--output-dir", str(tmp_path / "out")], capfd)  # fmt: skip
    lines = [line for line in err if not line.startswith(("E0000", "W0000", "I0000"))]
    assert status == 2 and len(lines) == 1 and "singlecoil_val, multicoil_train, multicoil_val" in lines[0], err
    assert not (tmp_path / "data" / "demo_info.json").exists()
