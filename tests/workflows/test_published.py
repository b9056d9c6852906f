"""``benchmark --weights published``: the papers' networks evaluated without training, beside the published PSNR.

The Hub is faked by a Hugging Face cache holding the small original-format fixtures under the
published repositories' names, and a manifest whose entries of the same names have the fixtures'
small configurations.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "orig_weights"
sys.path.insert(0, str(ROOT / "tests"))
from test_hub import populate_hf_cache  # noqa: E402

REVISION = "00112233445566778899aabbccddeeff00112233"
# manifest name -> (Hub repository, architecture, small config, fixture file)
NETWORKS = {
    "unet-fastmri": ("zaccharieramzi/UNet-fastmri", "unet-benchmark", {"filters": [4, 8, 16, 32]}, "unet_small_fullmodel.h5"),
    "kiki-net-fastmri": ("zaccharieramzi/KIKI-net-fastmri", "kiki-net-benchmark", {"n_convs": 3, "n_filters": 4}, "kikinet_small_fullmodel.h5"),
    "cascade-net-fastmri": ("zaccharieramzi/CascadeNet-fastmri", "cascade-net", {"n_cascades": 2, "n_convs": 3, "n_filters": 4}, "cascadenet_small.h5"),
    "pdnet-fastmri": ("zaccharieramzi/PDNet-fastmri", "pdnet-benchmark", {"n_iter": 2, "n_filters": 4}, "pdnet_small.h5"),
}


def fake_hub(tmp_path):
    """(manifest, Hugging Face cache) with the small networks under the published names."""
    repository = json.loads((ROOT / "weights_manifest.json").read_text())
    published = {e["name"]: e for e in repository["models"]}
    entries, cache = [], tmp_path / "hf-cache"
    for name, (repo_id, architecture, config, fixture) in NETWORKS.items():
        folder = tmp_path / "repos" / name
        folder.mkdir(parents=True)
        shutil.copy(FIXTURES / fixture, folder / "model_weights.h5")
        populate_hf_cache(cache, repo_id, REVISION, folder)
        entries.append({**published[name], "architecture": architecture, "config": config})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"manifest_version": 1, "models": entries}) + "\n")
    return manifest, cache


def run(args, env):
    exe = Path(sys.executable).with_name("fastmri-recon")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.e2e
def test_published_table_a_on_the_demo_data(demo_dir, tmp_path):
    manifest, cache = fake_hub(tmp_path)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "FASTMRI_RECON_CACHE": str(tmp_path / "converted"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    args = ["benchmark", "--weights", "published", "--table", "a", "--data-dir", demo_dir, "--manifest", manifest, "--quiet"]
    done = run([*args, "--output-dir", tmp_path / "out"], env)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "out" / "table_a_published.md").read_text()
    for name, published in [("zero-filled", "29.61"), ("unet-fastmri", "31.78"), ("kiki-net-fastmri", "31.38"),
                            ("cascade-net-fastmri", "31.97"), ("pdnet-fastmri", "32.15")]:
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert row.endswith(f" {published} |") and "random x4 (cf 0.08)" in row
    assert (tmp_path / "out" / "table_a_published" / "reconstructions.png").is_file()
    assert done.stderr.count("trust on first use") == 4

    missing = run([*args, "--output-dir", tmp_path / "out2"], {**env, "HF_HUB_CACHE": str(tmp_path / "empty"), "FASTMRI_RECON_CACHE": str(tmp_path / "none")})
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "HF_HUB_OFFLINE" in missing.stderr
    assert not (tmp_path / "out2").exists()  # refused before any evaluation


@pytest.mark.slow
@pytest.mark.e2e
def test_evaluate_and_reconstruct_take_published_names(demo_dir, tmp_path):
    """One resolver for --model: registry names, manifest names (the papers' and the demo weights), run folders."""
    manifest, cache = fake_hub(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "FASTMRI_RECON_CACHE": str(tmp_path / "c"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = run(["evaluate", demo_dir / "singlecoil_val", "--model", "zero-filled", "--model", "pdnet-fastmri", "--manifest", manifest, "--quiet"], env)
    assert done.returncode == 0, done.stderr
    assert "| pdnet-fastmri | random x4 (cf 0.08) |" in done.stdout and "| zero-filled |" in done.stdout
    demo = run(["evaluate", demo_dir / "singlecoil_val", "--model", "unet-demo-singlecoil", "--quiet"], env)
    assert demo.returncode == 0, demo.stderr  # 128 x 128 weights on 32 x 32 data: the output size comes from the data
    assert "| unet-demo-singlecoil |" in demo.stdout
    unknown = run(["evaluate", demo_dir / "singlecoil_val", "--model", "pdnet-fastmr", "--manifest", manifest], env)
    assert unknown.returncode == 2 and "did you mean pdnet-fastmri" in unknown.stderr
    out = tmp_path / "recon"
    rebuilt = run(["reconstruct", "--model", "pdnet-fastmri", "--manifest", manifest, demo_dir / "singlecoil_test", out, "--quiet"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (demo_dir / "singlecoil_test").glob("*.h5"))
    # weights trained at 128 x 128 on 32 x 32 data: the output size comes from the header, before any work
    resized = run(["reconstruct", "--model", "unet-demo-singlecoil", demo_dir / "singlecoil_test", tmp_path / "demo-out", "--quiet"], env)
    assert resized.returncode == 0, resized.stderr
    import h5py

    with h5py.File(next((tmp_path / "demo-out").glob("*.h5"))) as handle:
        assert handle["reconstruction"].shape[1:] == (32, 32)
    baseline = run(["reconstruct", "--model", "zero-filled", demo_dir / "singlecoil_test", tmp_path / "zf-out", "--quiet"], env)
    assert baseline.returncode == 0, baseline.stderr
