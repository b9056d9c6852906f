"""Which data the benchmark runs on: the user's fastMRI folders, or the demo data it builds."""

import pytest

from fastmri_recon.errors import ConfigError
from fastmri_recon.workflows.benchmark import benchmark_tables, prepare_data
from conftest import random_volume

TABLES = benchmark_tables("tiny")


def test_real_fastmri_folders_are_used_as_they_are(tmp_path):
    for coils in ("singlecoil", "multicoil"):
        for split in ("train", "val"):
            (tmp_path / f"{coils}_{split}").mkdir()
            random_volume(tmp_path / f"{coils}_{split}" / "file1000.h5", multicoil=coils == "multicoil")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert prepare_data(tmp_path, TABLES, "tiny", progress=False) == "fastMRI"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_real_data_without_a_needed_split_names_it(tmp_path):
    (tmp_path / "singlecoil_train").mkdir()
    (tmp_path / "singlecoil_val").mkdir()
    with pytest.raises(ConfigError, match="multicoil_train, multicoil_val"):
        prepare_data(tmp_path, TABLES, "tiny", progress=False)


@pytest.mark.e2e
def test_an_absent_folder_gets_the_demo_data(tmp_path):
    assert prepare_data(tmp_path / "demo", TABLES, "tiny", progress=False) == "demo"
    assert (tmp_path / "demo" / "demo_info.json").is_file()
    assert sorted(p.name for p in (tmp_path / "demo").iterdir() if p.is_dir()) == [
        f"{c}_{s}" for c in ("multicoil", "singlecoil") for s in ("test", "train", "val")
    ]


def test_unknown_table_is_refused(tmp_path):
    from fastmri_recon.workflows.benchmark import run_benchmark

    with pytest.raises(ConfigError, match="tables must be among a, b, got c"):
        run_benchmark(tmp_path / "out", tmp_path / "data", "tiny", progress=False, tables=("a", "c"))
    assert not (tmp_path / "data").exists()
