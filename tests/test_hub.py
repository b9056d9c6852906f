"""Published weights: manifest validation, loading (local, demo weights, Hugging Face cache), checksums, publishing, reconstruct."""

import copy
import json
import os
import shutil
from pathlib import Path

import h5py
import jsonschema
import numpy as np
import pytest

from fastmri_recon.errors import ChecksumError, ConfigError, DataError
from fastmri_recon.hub import from_pretrained, load_manifest, load_pretrained, parse_hf_url, sha256_file, validate_manifest
from fastmri_recon.hub.download import HubFile
from fastmri_recon.hub.publish import PENDING_REVISION, publish
from fastmri_recon.hub.schema import SUPPORTED_KEYWORDS, check, load_schema, schema_keywords

ROOT = Path(__file__).resolve().parents[1]
REPO_MANIFEST = ROOT / "weights_manifest.json"
DEMO_NAME = "unet-demo-singlecoil"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def empty_manifest(path):
    path.write_text(json.dumps({"manifest_version": 1, "models": []}) + "\n")
    return path


def single_coil_inputs(size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    kspace = (rng.standard_normal((batch, 2 * size, size)) + 1j * rng.standard_normal((batch, 2 * size, size))).astype(np.complex64)
    return kspace, (rng.random((batch, size)) > 0.5).astype(np.float32)


def populate_hf_cache(cache, repo_id, revision, folder):
    """Put a folder's files into a Hugging Face cache in huggingface_hub's layout (blobs, snapshots, refs)."""
    from huggingface_hub.file_download import repo_folder_name

    root = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    for path in sorted(folder.iterdir()):
        blob = root / "blobs" / sha256_file(path)
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = root / "snapshots" / revision / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)


@pytest.fixture(scope="module")
def published(tiny_run, tmp_path_factory):
    """``(folder, manifest path, result)`` of a dry-run publication of the tiny run."""
    base = tmp_path_factory.mktemp("published")
    manifest = empty_manifest(base / "weights_manifest.json")
    result = publish(tiny_run, "someone/tiny-unet", output_dir=base / "folder", manifest=manifest, mode="dry-run", progress=False)
    return base / "folder", manifest, result


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- manifest and schema ---------------------------------------------------------------------------

def test_checker_implements_every_keyword_of_the_schema():
    assert schema_keywords(load_schema()) <= SUPPORTED_KEYWORDS
    with pytest.raises(ValueError, match="not supported"):
        check(1, {"maximum": 3})


def test_repository_manifest_is_valid_and_lists_the_demo_weights():
    manifest = load_manifest(REPO_MANIFEST)
    assert DEMO_NAME in manifest.names
    for entry in manifest.entries:
        if entry.get("format") == "keras2":  # the papers' weights on the Hub: tests/test_original_weights.py
            continue
        path = manifest.weights_dir / entry["name"] / entry["file"]
        assert path.stat().st_size == entry["size_bytes"] < 1_000_000
        assert sha256_file(path) == entry["sha256"]
        assert entry["hub"]["uploaded"] is False and entry["metrics"]


def _bad(mutate):
    manifest = copy.deepcopy(json.loads(REPO_MANIFEST.read_text()))
    mutate(manifest["models"][0])
    return manifest


BAD_ENTRIES = {
    "missing sha256": (lambda e: e.pop("sha256"), "missing required field 'sha256'"),
    "short sha256": (lambda e: e.update(sha256="abc"), "models[0].sha256: 'abc' does not match"),
    "size as text": (lambda e: e.update(size_bytes="12"), "models[0].size_bytes: expected integer"),
    "unknown field": (lambda e: e.update(weights="x"), "unknown field 'weights'"),
    "bad coils": (lambda e: e["acquisition"].update(coils="dualcoil"), "'dualcoil' is not one of"),
    "not a weights file": (lambda e: e.update(file="model.pkl"), "models[0].file: 'model.pkl' does not match"),
    "no accelerations": (lambda e: e.update(accelerations=[]), "expected at least 1 item"),
    "bad repo id": (lambda e: e["hub"].update(repo_id="no-owner"), "models[0].hub.repo_id"),
    "metric as text": (lambda e: e["metrics"][0].update(PSNR="high"), "models[0].metrics[0].PSNR: expected number"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_bad_entries_are_refused_like_jsonschema_does(case):
    mutate, message = BAD_ENTRIES[case]
    manifest = _bad(mutate)
    assert list(jsonschema.Draft202012Validator(load_schema()).iter_errors(manifest))
    with pytest.raises(ConfigError, match="^manifest: ") as error:
        validate_manifest(manifest, "manifest")
    assert message in str(error.value)


def test_good_manifest_passes_both_checkers_and_semantic_checks_apply():
    manifest = json.loads(REPO_MANIFEST.read_text())
    jsonschema.validate(manifest, load_schema())
    validate_manifest(manifest)
    duplicated = {**manifest, "models": manifest["models"] + manifest["models"][:1]}
    with pytest.raises(ConfigError, match=f"duplicate model name\\(s\\) {DEMO_NAME}"):
        validate_manifest(duplicated)
    with pytest.raises(ConfigError, match="architecture: unknown model 'unett' \\(did you mean unet"):
        validate_manifest(_bad(lambda e: e.update(architecture="unett")))


def test_load_manifest_errors(tmp_path):
    with pytest.raises(ConfigError, match="no weights manifest there"):
        load_manifest(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_manifest(tmp_path / "broken.json")


# --- loading -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_from_pretrained_on_a_run_directory_matches_the_trained_model(tiny_run):
    from fastmri_recon.training.rundir import load_trained_model

    inputs = single_coil_inputs()
    pretrained = load_pretrained(tiny_run)
    assert pretrained.source.architecture == "unet" and pretrained.source.sha256 is None
    expected = load_trained_model(tiny_run)[0](inputs)
    np.testing.assert_array_equal(pretrained.model(inputs), expected)
    np.testing.assert_array_equal(from_pretrained(tiny_run / "final.weights.h5")(inputs), load_trained_model(tiny_run, "final")[0](inputs))


@pytest.mark.slow
def test_from_pretrained_demo_weights_by_name(offline):
    pretrained = load_pretrained(DEMO_NAME, manifest=REPO_MANIFEST)
    entry = load_manifest(REPO_MANIFEST).get(DEMO_NAME)
    assert pretrained.sha256 == entry["sha256"] and pretrained.source.weights.parent.name == DEMO_NAME
    kspace, mask = single_coil_inputs(size=128, batch=1)
    assert pretrained.model((kspace, mask)).shape == (1, 128, 128)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match=f"unknown pretrained model 'unet-demo-singlecol' .*did you mean {DEMO_NAME}"):
        from_pretrained("unet-demo-singlecol", manifest=REPO_MANIFEST)
    with pytest.raises(DataError, match="no such file or directory"):
        from_pretrained("runs/missing_run", manifest=REPO_MANIFEST)


def test_tampered_weights_are_refused_before_loading(tmp_path, monkeypatch):
    from fastmri_recon.models import weights

    entry = load_manifest(REPO_MANIFEST).get(DEMO_NAME)
    tampered = tmp_path / DEMO_NAME / entry["file"]
    tampered.parent.mkdir()
    shutil.copyfile(REPO_MANIFEST.parent / "weights" / DEMO_NAME / entry["file"], tampered)
    with h5py.File(tampered, "r+") as handle:
        handle.attrs["tampered"] = 1
    monkeypatch.setenv("FASTMRI_RECON_WEIGHTS", str(tmp_path))  # looked at before the repository's weights/
    monkeypatch.setattr(weights, "load_checked", lambda *args: pytest.fail("a tampered file was loaded"))
    with pytest.raises(ChecksumError, match=f"{tampered}: sha256 .* does not match .* manifest entry '{DEMO_NAME}'; not loaded"):
        from_pretrained(DEMO_NAME, manifest=REPO_MANIFEST)


@pytest.mark.slow
def test_architecture_and_config_mismatches(published, tmp_path):
    folder = tmp_path / "folder"
    shutil.copytree(published[0], folder)
    config = json.loads((folder / "config.json").read_text())

    def load_with(**changes):
        (folder / "config.json").write_text(json.dumps({**config, **changes}))
        return from_pretrained(folder)

    with pytest.raises(ConfigError, match="weights do not match architecture 'unet'"):
        load_with(config={**config["config"], "filters": [4, 8, 16]})
    with pytest.raises(ConfigError, match="weights do not match .* the file holds"):
        load_with(config={**config["config"], "filters": [4]})  # Keras alone would ignore the extra arrays
    with pytest.raises(ConfigError, match="config does not fit architecture 'unet'.*n_filters"):
        load_with(config={**config["config"], "n_filters": 3})
    with pytest.raises(ConfigError, match="architecture: unknown model 'unet2' \\(did you mean unet"):
        load_with(architecture="unet2")
    with pytest.raises(ConfigError, match="weights do not match architecture 'cascade-net'"):
        load_with(architecture="cascade-net", config={"crop_size": [32, 32]})


def test_hf_urls_are_parsed():
    assert parse_hf_url("hf://me/unet-demo") == HubFile("me/unet-demo")
    assert parse_hf_url("hf://me/unet.demo@v1.0/sub/x.weights.h5") == HubFile("me/unet.demo", "sub/x.weights.h5", "v1.0")
    assert parse_hf_url(f"hf://me/r@{REVISION}/x.weights.h5").url == f"hf://me/r@{REVISION}/x.weights.h5"
    for bad in ("hf://no-owner", "hf://a/b/../x.weights.h5", "hf://a b/c", "hf://a/b@/x"):
        with pytest.raises(ConfigError, match="expected hf://OWNER/REPO"):
            parse_hf_url(bad)


def test_offline_without_cache_is_a_clear_error(tmp_path, published, offline):
    entry = {**published[2].entry, "hub": {"repo_id": "someone/tiny-unet", "revision": REVISION}}
    manifest = load_manifest(empty_manifest(tmp_path / "manifest.json")).with_entry(entry)
    manifest.write()
    with pytest.raises(DataError, match="not in the Hugging Face cache .* and HF_HUB_OFFLINE is set"):
        from_pretrained("tiny-unet", manifest=manifest.path, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="hf://someone/other@main/config.json: not in the Hugging Face cache"):
        from_pretrained("hf://someone/other@main/x.weights.h5", manifest=manifest.path, cache_dir=tmp_path / "cache")


def test_not_uploaded_entry_without_its_file(tmp_path, published):
    entry = {**published[2].entry, "hub": {"repo_id": "someone/tiny-unet", "revision": "main", "uploaded": False}}
    manifest = load_manifest(empty_manifest(tmp_path / "manifest.json")).with_entry(entry)
    manifest.write()
    with pytest.raises(DataError, match="exists and the entry was not uploaded to the Hub"):
        from_pretrained("tiny-unet", manifest=manifest.path)


# --- publishing ----------------------------------------------------------------------------------------

def test_publish_dry_run_writes_the_folder_and_a_diff_only(published, tiny_run):
    folder, manifest, result = published
    entry = result.entry
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "reconstruction.png", "tiny-unet.weights.h5"]
    assert json.loads(manifest.read_text())["models"] == []  # unchanged
    assert not result.manifest_written and result.revision is None
    assert entry["sha256"] == sha256_file(folder / "tiny-unet.weights.h5") == sha256_file(tiny_run / "best.weights.h5")
    assert entry["hub"] == {"repo_id": "someone/tiny-unet", "revision": PENDING_REVISION}
    assert entry["config"] == {
        "crop_size": [32, 32],
        "phase_normalization": False,
        "filters": [4, 8],
        "n_convs": 1,
        "residual": True,
        "activation": "relu",
        "standardize": False,
        "penultimate_channels": None,
        "penultimate_activation": "linear",
    }
    assert [m["acceleration"] for m in entry["metrics"]] == [4] and entry["metrics"][0]["volumes"] == 2
    assert entry["metrics"][0]["data"].endswith("singlecoil_val")
    assert f'+      "sha256": "{entry["sha256"]}",' in result.diff and '+      "name": "tiny-unet",' in result.diff
    card = (folder / "README.md").read_text()
    for text in ("# tiny-unet", 'from_pretrained("hf://someone/tiny-unet/tiny-unet.weights.h5")', "| zero-filled |", '"steps_per_epoch": 2'):
        assert text in card
    assert (folder / "reconstruction.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_round_trip_run_to_folder_gives_identical_outputs(published, tiny_run):
    inputs = single_coil_inputs()
    expected = from_pretrained(tiny_run)(inputs)
    for spec in (published[0], published[0] / "tiny-unet.weights.h5", published[0] / "config.json"):
        pretrained = load_pretrained(spec)
        assert pretrained.source.sha256 == published[2].entry["sha256"]
        np.testing.assert_array_equal(pretrained.model(inputs), expected)


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: records the calls, returns a commit."""

    calls: list = []  # noqa: RUF012 (shared on purpose: the instance is made inside publish)

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", kwargs, files, self.token))

        class Commit:
            oid = REVISION

        return Commit()


@pytest.mark.slow
def test_publish_uploads_then_records_sha_and_revision(tiny_run, tmp_path, monkeypatch, capfd):
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    manifest = empty_manifest(tmp_path / "weights_manifest.json")
    result = publish(tiny_run, "someone/tiny-unet", name="tiny", output_dir=tmp_path / "out", manifest=manifest, progress=False)
    (_, repo, create), (_, upload, files, token) = FakeHfApi.calls
    assert repo == "someone/tiny-unet" and create["exist_ok"] and token == "hf_secret_token"
    assert upload["repo_id"] == "someone/tiny-unet" and upload["folder_path"] == str(tmp_path / "out")
    assert upload["commit_message"].startswith(f"Publish tiny: unet, sha256 {result.entry['sha256'][:12]}")
    assert files == ["README.md", "config.json", "reconstruction.png", "tiny.weights.h5"]
    entry = load_manifest(manifest).get("tiny")
    assert entry["hub"] == {"repo_id": "someone/tiny-unet", "revision": REVISION}
    assert entry["sha256"] == sha256_file(tmp_path / "out" / "tiny.weights.h5")
    assert "hf_secret_token" not in "".join(capfd.readouterr())
    # the same entry, loaded offline from a Hugging Face cache holding the uploaded folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    populate_hf_cache(tmp_path / "cache", "someone/tiny-unet", REVISION, tmp_path / "out")
    pretrained = load_pretrained("tiny", manifest=manifest, cache_dir=tmp_path / "cache")
    assert pretrained.source.weights.parent.name == REVISION and pretrained.sha256 == entry["sha256"]
    inputs = single_coil_inputs()
    np.testing.assert_array_equal(pretrained.model(inputs), from_pretrained(tiny_run)(inputs))
    by_url = load_pretrained("hf://someone/tiny-unet", manifest=empty_manifest(tmp_path / "empty.json"), cache_dir=tmp_path / "cache")
    assert by_url.sha256 == entry["sha256"] and by_url.source.origin == "hf://someone/tiny-unet/tiny.weights.h5"  # via config.json
    pinned = load_pretrained("hf://someone/tiny-unet", manifest=manifest, cache_dir=tmp_path / "cache")
    assert pinned.source.origin == f"hf://someone/tiny-unet@{REVISION}/tiny.weights.h5"  # via the manifest entry


@pytest.mark.slow
def test_publish_without_token_or_with_bad_arguments(tiny_run, tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    manifest = empty_manifest(tmp_path / "m.json")
    with pytest.raises(ConfigError, match="no Hugging Face token: set HF_TOKEN"):
        publish(tiny_run, "someone/x", output_dir=tmp_path / "out", manifest=manifest, progress=False)
    assert json.loads(manifest.read_text())["models"] == []
    with pytest.raises(ConfigError, match="--repo-id 'x': expected OWNER/NAME"):
        publish(tiny_run, "x", manifest=manifest)
    with pytest.raises(ConfigError, match="--name 'Bad Name'"):
        publish(tiny_run, "someone/x", name="Bad Name", manifest=manifest)
    with pytest.raises(ConfigError, match="not a training run directory"):
        publish(tmp_path, "someone/x", manifest=manifest)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds other files \\(notes.txt\\)"):
        publish(tiny_run, "someone/x", output_dir=tmp_path / "busy", manifest=manifest, mode="dry-run", progress=False)


# --- reconstruct -----------------------------------------------------------------------------------------

def _submission(path):
    with h5py.File(path, "r") as handle:
        assert list(handle) == ["reconstruction"]
        return handle["reconstruction"][()]


def test_reconstruct_matches_the_evaluation_path(tiny_run, demo_dir, tmp_path):
    """A test file made from a validation file reconstructs exactly as evaluate reconstructs the validation file."""
    from fastmri_recon.data.h5 import FastMRIFile, Volume, read_volume, write_volume
    from fastmri_recon.data.masks import MaskSampler
    from fastmri_recon.evaluate.evaluate import reconstruct_volume, volume_mask
    from fastmri_recon.reconstruct import reconstruct_directory

    pretrained = load_pretrained(tiny_run)
    source = min((demo_dir / "singlecoil_val").glob("*.h5"))
    with FastMRIFile(source) as handle:
        mask = volume_mask(handle, MaskSampler("random", [0.08], [4]))
        expected, _ = reconstruct_volume(pretrained.model, handle, mask, batch_size=2)
    volume = read_volume(source)
    write_volume(Volume(tmp_path / "in" / source.name, volume.kspace * mask, volume.header, mask=mask, attrs=volume.attrs))
    written = reconstruct_directory(pretrained.model, tmp_path / "in", tmp_path / "out", pretrained.scale_factor, 2, False)
    assert written == [tmp_path / "out" / source.name]
    np.testing.assert_allclose(_submission(written[0]), expected, rtol=1e-5, atol=1e-6 * float(np.abs(expected).max()))


@pytest.mark.slow
def test_reconstruct_multicoil_with_sensitivity_maps(demo_dir, tmp_path):
    from fastmri_recon.data.h5 import FastMRIFile
    from fastmri_recon.models.registry import build
    from fastmri_recon.reconstruct import reconstruct_directory

    model = build("cascade-net", crop_size=(32, 32), n_cascades=1, n_convs=2, n_filters=4)
    assert model.needs_smaps
    written = reconstruct_directory(model, demo_dir / "multicoil_test", tmp_path, batch_size=2, progress=False)
    assert [p.name for p in written] == sorted(p.name for p in (demo_dir / "multicoil_test").glob("*.h5"))
    for path in written:
        with FastMRIFile(demo_dir / "multicoil_test" / path.name) as handle:
            shape = (handle.num_slices, *handle.header.target_shape)
        recon = _submission(path)
        assert recon.shape == shape and recon.dtype == np.float32 and np.all(np.isfinite(recon))


def test_reconstruct_refuses_bad_directories(tiny_run, demo_dir, tmp_path):
    from fastmri_recon.reconstruct import reconstruct_directory

    model = from_pretrained(tiny_run)
    with pytest.raises(ConfigError, match="must differ from the input directory"):
        reconstruct_directory(model, demo_dir / "singlecoil_test", demo_dir / "singlecoil_test")
    with pytest.raises(DataError, match="has no 'mask'"):
        reconstruct_directory(model, demo_dir / "singlecoil_val", tmp_path, progress=False)
    assert not list(tmp_path.iterdir())
