"""The papers' Keras-2 weights through the manifest: trust on first use, conversion cache, offline paths."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_hub import populate_hf_cache

from fastmri_recon.errors import ChecksumError, DataError
from fastmri_recon.hub.checksum import sha256_file
from fastmri_recon.hub.load import build_model, load_pretrained
from fastmri_recon.hub.manifest import load_manifest
from fastmri_recon.hub.original import TRUST_FILE

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "orig_weights"
REPO_ID = "zaccharieramzi/PDNet-fastmri"
REVISION = "fedcba9876543210fedcba9876543210fedcba98"
SMALL_PDNET = {"n_iter": 2, "n_filters": 4}


def pdnet_entry(sha256="unknown"):
    return {
        "name": "pdnet-small-orig",
        "architecture": "pdnet-benchmark",
        "config": SMALL_PDNET,
        "format": "keras2",
        "acquisition": {"coils": "singlecoil", "trajectory": "cartesian", "dimensions": 2, "mask_type": "random"},
        "accelerations": [4.0],
        "training_data": "random fixture weights",
        "file": "model_weights.h5",
        "sha256": sha256,
        "package_version": "fastmri-reproducible-benchmark (Keras 2)",
        "metrics": [],
        "hub": {"repo_id": REPO_ID, "revision": "main"},
    }


def write_manifest(path, entry):
    path.write_text(json.dumps({"manifest_version": 1, "models": [entry]}) + "\n")
    return path


def hub_with(tmp_path, weights_file):
    """A fake Hugging Face cache holding ``weights_file`` as the repository's model_weights.h5."""
    folder = tmp_path / "repo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(weights_file, folder / "model_weights.h5")
    cache = tmp_path / "hf-cache"
    shutil.rmtree(cache, ignore_errors=True)
    populate_hf_cache(cache, REPO_ID, REVISION, folder)
    return cache


def changed_copy(tmp_path):
    path = tmp_path / "changed.h5"
    shutil.copy(FIXTURES / "pdnet_small.h5", path)
    with h5py.File(path, "r+") as handle:
        handle["conv2d/conv2d/bias:0"][0] += 1.0
    return path


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """Offline, with the package's conversion cache in ``tmp_path / 'cache'``."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FASTMRI_RECON_CACHE", str(tmp_path / "cache"))
    return tmp_path


def expected_output():
    io = np.load(FIXTURES / "pdnet_small_io.npz")
    inputs = (io["kspace"][..., 0], io["mask"][:, 0, :].real.astype(np.float32))
    return inputs, io["output"][..., 0]


@pytest.mark.slow
def test_trust_on_first_use_then_conversion_cache_then_refusal_of_a_changed_file(isolated, capfd):
    manifest = write_manifest(isolated / "manifest.json", pdnet_entry())
    cache = hub_with(isolated, FIXTURES / "pdnet_small.h5")
    inputs, output = expected_output()

    first = load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=cache)
    err = capfd.readouterr().err
    digest = sha256_file(FIXTURES / "pdnet_small.h5")
    assert f"trust on first use: 'pdnet-small-orig'" in err and digest in err
    np.testing.assert_allclose(first.model(inputs).numpy(), output, rtol=1e-5, atol=1e-6)
    record = json.loads((isolated / "cache" / "converted" / "pdnet-small-orig" / TRUST_FILE).read_text())
    assert record["original_sha256"] == digest and record["converted_sha256"] == first.sha256
    assert first.source.weights.name == "pdnet-small-orig.weights.h5"

    again = load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=cache)
    assert "trust on first use" not in capfd.readouterr().err  # the record is reused, nothing converted again
    np.testing.assert_array_equal(again.model(inputs).numpy(), first.model(inputs).numpy())

    cache = hub_with(isolated, changed_copy(isolated))
    with pytest.raises(ChecksumError, match="differs from the file first used for 'pdnet-small-orig'"):
        load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=cache)


@pytest.mark.slow
def test_offline_uses_an_earlier_conversion_and_refuses_without_one(isolated):
    manifest = write_manifest(isolated / "manifest.json", pdnet_entry())
    with pytest.raises(DataError, match="not in the Hugging Face cache .* HF_HUB_OFFLINE is set"):
        load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=isolated / "empty-cache")
    load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=hub_with(isolated, FIXTURES / "pdnet_small.h5"))
    converted = load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=isolated / "empty-cache")
    assert "converted earlier" in converted.source.origin
    inputs, output = expected_output()
    np.testing.assert_allclose(converted.model(inputs).numpy(), output, rtol=1e-5, atol=1e-6)
    converted.source.weights.write_bytes(b"damaged")  # the conversion's own sha256 is verified before loading
    with pytest.raises(ChecksumError):
        load_pretrained("pdnet-small-orig", manifest=manifest, cache_dir=isolated / "empty-cache")


def test_a_recorded_sha256_is_verified_before_opening(isolated):
    cache = hub_with(isolated, FIXTURES / "pdnet_small.h5")
    good = write_manifest(isolated / "good.json", pdnet_entry(sha256_file(FIXTURES / "pdnet_small.h5")))
    assert load_pretrained("pdnet-small-orig", manifest=good, cache_dir=cache).model.n_iter == 2
    bad = write_manifest(isolated / "bad.json", pdnet_entry("0" * 64))
    with pytest.raises(ChecksumError, match="does not match"):
        load_pretrained("pdnet-small-orig", manifest=bad, cache_dir=cache)


def test_hf_url_of_the_repository_finds_the_entry(isolated):
    manifest = write_manifest(isolated / "manifest.json", pdnet_entry())
    pretrained = load_pretrained(f"hf://{REPO_ID}", manifest=manifest, cache_dir=hub_with(isolated, FIXTURES / "pdnet_small.h5"))
    assert pretrained.source.name == "pdnet-small-orig" and pretrained.source.architecture == "pdnet-benchmark"


def run_cli(*args, env):
    exe = Path(sys.executable).with_name("fastmri-recon")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.e2e
def test_weights_fetch_command(isolated):
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FASTMRI_RECON_CACHE": str(isolated / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    manifest = write_manifest(isolated / "manifest.json", pdnet_entry())
    missing = run_cli("weights", "fetch", "pdnet-small-orig", "--manifest", manifest, "--cache-dir", isolated / "none", env=env)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    cache = hub_with(isolated, FIXTURES / "pdnet_small.h5")
    fetched = run_cli("weights", "fetch", "pdnet-small-orig", "--manifest", manifest, "--cache-dir", cache, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert "trust on first use" in fetched.stderr and "pdnet-benchmark, 3,960 weights" in fetched.stdout
    digest = sha256_file(FIXTURES / "pdnet_small.h5")
    assert f"converted from the Keras-2 file of sha256 {digest} (trusted on first use" in fetched.stdout
    wrong = write_manifest(isolated / "wrong.json", {**pdnet_entry(), "architecture": "cascade-net", "config": {}})
    refused = run_cli("weights", "fetch", "pdnet-small-orig", "--manifest", wrong, "--cache-dir", cache, env={**env, "FASTMRI_RECON_CACHE": str(isolated / "c2")})
    assert refused.returncode == 2 and "weighted layer 0 'conv2d'" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2  # the trust notice, then the error


# prefix of a repository manifest entry's name -> the paper layout of its network
LAYOUTS = [
    ("unet", "unet"),
    ("kiki-net", "kikinet"),
    ("cascade-net", "cascadenet"),
    ("pdnet", "pdnet"),
    ("xpdnet", "xpdnet"),
    ("ncpdnet-singlecoil", "ncpdnet"),
    ("ncpdnet-multicoil", "ncpdnet_multicoil"),
    ("ncpdnet-3d", "ncpdnet3d"),
]


@pytest.mark.slow
def test_every_published_original_in_the_manifest_has_the_papers_parameter_count():
    from fastmri_recon.models.weights import input_shapes

    originals = [e for e in load_manifest(ROOT / "weights_manifest.json").entries if e.get("format") == "keras2"]
    assert {e["hub"]["repo_id"].split("/")[1] for e in originals} == {
        *(f"{n}-{d}" for n in ("UNet", "KIKI-net", "CascadeNet", "PDNet") for d in ("fastmri", "OASIS")),
        "XPDNet-brain-af4",
        "NCPDNet-singlecoil-radial",
        "NCPDNet-singlecoil-spiral",
        "NCPDNet-multicoil-radial",
        "NCPDNet-3D",
    }
    for entry in originals:
        assert entry["sha256"] == "unknown" and entry["file"] == "model_weights.h5"
        layout = next(layout for prefix, layout in LAYOUTS if entry["name"].startswith(prefix))
        expected = json.loads((FIXTURES / f"{layout}_paper_layout.json").read_text())["count_params"]
        model = build_model(entry["architecture"], entry["config"], entry["name"])
        model.build(input_shapes(model, entry["acquisition"]["coils"] == "multicoil"))
        assert model.count_params() == expected, entry["name"]
