import json

import numpy as np
import pytest

from fastmri_recon.data.h5 import FastMRIFile
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.errors import DataError
from fastmri_recon.evaluate.evaluate import evaluate_directory, volume_mask
from fastmri_recon.evaluate.tables import markdown_table, write_results
from fastmri_recon.models.registry import build, get_entry
from fastmri_recon.errors import ConfigError


@pytest.mark.parametrize("coil", ["singlecoil", "multicoil"])
def test_zero_filled_on_demo(demo_dir, coil):
    sampler = MaskSampler("random", [0.08], [4])
    result = evaluate_directory(build("zero-filled"), "zero-filled", demo_dir / f"{coil}_val", sampler, progress=False)
    assert len(result.summary) == 2
    means = result.summary.means()
    assert 10 < means["PSNR"] < 40 and 0 < means["SSIM"] < 1 and 0 < means["NMSE"] < 1
    assert result.acquisition == "random x4 (cf 0.08)"
    # a harder undersampling is worse
    harder = evaluate_directory(build("zero-filled"), "zf", demo_dir / f"{coil}_val", MaskSampler("random", [0.04], [8]), progress=False)
    assert harder.summary.means()["PSNR"] < means["PSNR"]


def test_fully_sampled_reproduces_target(demo_dir):
    full = MaskSampler("equispaced", [0.5], [1])
    result = evaluate_directory(build("zero-filled"), "zf", demo_dir / "multicoil_val", full, progress=False)
    assert result.summary.means()["NMSE"] < 1e-10


def test_mask_is_seeded_by_file_name(demo_dir):
    sampler = MaskSampler("random", [0.08], [4])
    paths = sorted((demo_dir / "singlecoil_val").glob("*.h5"))
    with FastMRIFile(paths[0]) as a, FastMRIFile(paths[1]) as b:
        np.testing.assert_array_equal(volume_mask(a, sampler), volume_mask(a, sampler))
        assert not np.array_equal(volume_mask(a, sampler), volume_mask(b, sampler))
    with FastMRIFile(next((demo_dir / "singlecoil_test").glob("*.h5"))) as test_file:
        np.testing.assert_array_equal(volume_mask(test_file, sampler), test_file.mask)


def test_test_files_cannot_be_evaluated(demo_dir):
    with pytest.raises(DataError, match="has no target"):
        evaluate_directory(build("zero-filled"), "zf", demo_dir / "singlecoil_test", MaskSampler("random", [0.08], [4]), progress=False)


def test_results_files(demo_dir, tmp_path):
    result = evaluate_directory(build("zero-filled"), "zero-filled", demo_dir / "singlecoil_val", MaskSampler("random", [0.08], [4]), progress=False)
    table = markdown_table([result])
    assert table.splitlines()[0].startswith("| model | acquisition | volumes | PSNR | SSIM | NMSE")
    assert "| zero-filled | random x4 (cf 0.08) | 2 |" in table
    paths = write_results(tmp_path, [result])
    assert sorted(p.name for p in paths) == ["reconstructions.png", "results.csv", "results.json", "results.md"]
    assert (tmp_path / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored[0]["mean"]["PSNR"] == pytest.approx(result.summary.means()["PSNR"])
    assert set(stored[0]["per_volume"]) == {"demo_001.h5", "demo_002.h5"}


def test_registry_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean zero-filled"):
        get_entry("zero-filed")
