"""From what a user names (a manifest name, an ``hf://`` URL, a local path) to a weights file and its description.

`resolve` understands:

- a **local path**: a published folder (its ``config.json`` is a manifest entry without ``hub``, as
  ``fastmri-recon weights publish`` writes it), a training run directory (``config.json`` with
  ``config`` and ``crop_size``; ``best`` or ``final`` weights), a ``.weights.h5`` file inside either,
  or either's ``config.json``;
- an **``hf://OWNER/REPO[@REVISION][/FILE]`` URL**: the repository's ``config.json`` describes the
  model (or the manifest entry of that repository and file, if there is one);
- a **manifest name**: the entry's file is looked for in ``$FASTMRI_RECON_WEIGHTS`` (``NAME/FILE`` or
  ``FILE``), then in the ``weights/`` folder beside the manifest (``NAME/FILE`` or ``FILE``), then on
  the Hub at the entry's pinned revision (through the Hugging Face cache) unless the entry says it
  was not uploaded.

An entry of the benchmark code's Keras-2 files (``"format": "keras2"``) resolves to the Keras 3
``.weights.h5`` converted from its original file on first use (`hub.original`: sha256 checked or
trusted on first use); offline, a previous conversion is used when the original is not at hand.
Otherwise nothing is loaded here; `hub.load` verifies the sha256 and builds the model.
"""

import dataclasses
import json
import os
from pathlib import Path

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.hub.download import HF_SCHEME, HubFile, hub_download, parse_hf_url
from fastmri_recon.hub.manifest import is_keras2, load_manifest, validate_entry
from fastmri_recon.hub.original import cached_conversion, prepare

WEIGHTS_ENV = "FASTMRI_RECON_WEIGHTS"
FOLDER_CONFIG = "config.json"
WEIGHTS_SUFFIX = ".weights.h5"


@dataclasses.dataclass(frozen=True)
class Source:
    """A weights file with what is needed to build its model.

    Attributes:
        name: the model's name (manifest name, published name or run directory name).
        weights: the local ``.weights.h5`` file (downloaded if it came from the Hub).
        architecture: registry name of the model class.
        config: constructor configuration.
        coils: ``singlecoil`` or ``multicoil`` (the data it was trained on).
        scale_factor: k-space scaling of the data pipeline it was trained with.
        sha256: the recorded checksum to verify, or None (a training run directory).
        origin: where it was found, for messages.
        entry: the manifest entry or published ``config.json`` (None for a run directory).
        training: the training run's configuration, if known.
    """

    name: str
    weights: Path
    architecture: str
    config: dict
    coils: str
    scale_factor: float
    sha256: str
    origin: str
    entry: dict = None
    training: dict = None


def _default_scale_factor():
    from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR  # imports TensorFlow: only when loading

    return DEFAULT_SCALE_FACTOR


def entry_source(entry, weights, origin, converted=None):
    """A `Source` from a manifest entry (or a published folder's ``config.json``) and its weights file.

    Args:
        entry: the entry.
        weights: its weights file; for a Keras-2 entry the original file, converted here (once).
        origin: where it was found, for messages.
        converted: ``(path, sha256)`` of an existing conversion of a Keras-2 entry to use instead
            of ``weights``.
    """
    sha256 = entry["sha256"]
    if is_keras2(entry):
        weights, sha256 = converted or prepare(entry, Path(weights), origin)
    return Source(
        name=entry["name"],
        weights=Path(weights),
        architecture=entry["architecture"],
        config=entry["config"],
        coils=entry["acquisition"]["coils"],
        scale_factor=entry.get("scale_factor") or _default_scale_factor(),
        sha256=sha256,
        origin=origin,
        entry=entry,
        training=entry.get("training"),
    )


def read_json(path):
    """A JSON object from a file.

    Raises:
        DataError: for invalid JSON or another value than an object.
    """
    try:
        content = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a JSON object")
    return content


def _run_source(run_dir, weights_file):
    from fastmri_recon.training.rundir import RunDirectory

    run = RunDirectory.read(run_dir)
    if run.learned:
        raise ConfigError(
            f"{run_dir}: learned its trajectory ({run.config.trajectory}): its weights hold the trajectory, which published "
            "weights do not describe; use the run directory itself (evaluate / reconstruct --model RUN_DIR)"
        )
    return Source(
        name=run.name,
        weights=weights_file,
        architecture=run.config.model,
        config=run.model_config(),
        coils=run.config.coils,
        scale_factor=run.scale_factor,
        sha256=None,
        origin=f"training run {run_dir}",
        training=run.config.to_json(),
    )


def _folder_source(directory, weights="best", weights_file=None):
    """A published folder or a run directory (``weights_file``: a given ``.weights.h5`` in it)."""
    config_path = directory / FOLDER_CONFIG
    if not config_path.is_file():
        raise DataError(f"{directory}: neither a published weights folder nor a training run directory (no {FOLDER_CONFIG})")
    content = read_json(config_path)
    if "architecture" in content:
        validate_entry(content, str(config_path), hub_required=False)
        path = weights_file or directory / content["file"]
        if not path.is_file():
            raise DataError(f"{path}: no such weights file (named by {config_path})")
        source = entry_source(content, path, f"published folder {directory}")
        return source if path.name == content["file"] else dataclasses.replace(source, sha256=None)
    if "config" in content and "crop_size" in content:
        path = weights_file or directory / f"{weights}{WEIGHTS_SUFFIX}"
        if not path.is_file():
            raise DataError(f"{directory}: no {path.name} (has the run finished an epoch?)")
        return _run_source(directory, path)
    raise DataError(f"{config_path}: neither a published model's config (no 'architecture') nor a training run's (no 'config')")


def local_source(path, weights="best"):
    """The `Source` of a local folder or file (see the module's description)."""
    path = Path(path)
    if path.is_dir():
        return _folder_source(path, weights)
    if path.name.endswith(WEIGHTS_SUFFIX):
        return _folder_source(path.parent, weights, weights_file=path)
    if path.suffix == ".json":
        return _folder_source(path.parent, weights)
    raise DataError(f"{path}: expected a folder, a {WEIGHTS_SUFFIX} file or a config.json")


def hub_source(hub_file, manifest=None, cache_dir=None):
    """The `Source` of an ``hf://`` URL, downloading (or finding in the cache) the weights and config."""
    entry = manifest.find(hub_file.repo_id, hub_file.filename) if manifest is not None else None
    if entry is not None:
        pinned = hub_file.revision or entry["hub"]["revision"]
        hub_file = dataclasses.replace(hub_file, filename=entry["file"], revision=pinned)
    else:
        config_path = hub_download(dataclasses.replace(hub_file, filename=FOLDER_CONFIG), cache_dir)
        entry = read_json(config_path)
        validate_entry(entry, f"{hub_file.url} ({FOLDER_CONFIG})", hub_required=False)
        hub_file = dataclasses.replace(hub_file, filename=hub_file.filename or entry["file"])
    weights = hub_download(hub_file, cache_dir)
    source = entry_source(entry, weights, hub_file.url)
    return source if hub_file.filename == entry["file"] else dataclasses.replace(source, sha256=None)


def _local_copies(entry, manifest):
    folders = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
    folders.append(manifest.weights_dir)
    subfolders = (entry["name"],) if is_keras2(entry) else (entry["name"], "")  # model_weights.h5 is every original's name
    return [folder / sub / entry["file"] for folder in folders for sub in subfolders]


def manifest_source(name, manifest, cache_dir=None):
    """The `Source` of a manifest entry: a local copy if there is one, else the Hub at the pinned revision."""
    entry = manifest.get(name)
    candidates = _local_copies(entry, manifest)
    for path in candidates:
        if path.is_file():
            return entry_source(entry, path, f"manifest entry '{name}'")
    if not entry["hub"].get("uploaded", True):
        raise DataError(
            f"'{name}': none of {', '.join(str(p) for p in candidates)} exists and the entry was not uploaded to the Hub "
            f"(hub.uploaded is false in {manifest.path})"
        )
    hub_file = HubFile(entry["hub"]["repo_id"], entry["file"], entry["hub"]["revision"])
    origin = f"manifest entry '{name}' ({hub_file.url})"
    try:
        original = hub_download(hub_file, cache_dir)
    except DataError:
        converted = cached_conversion(entry) if is_keras2(entry) else None
        if converted is None:
            raise
        return entry_source(entry, None, f"{origin}, converted earlier", converted)
    return entry_source(entry, original, origin)


def resolve(spec, weights="best", manifest=None, cache_dir=None):
    """Find the weights named by ``spec`` and describe them.

    Args:
        spec: a manifest name, an ``hf://`` URL or a local path (str or Path).
        weights: ``best`` or ``final``, for training run directories.
        manifest: the manifest file (None: the default one, `manifest.default_manifest_path`).
        cache_dir: the Hugging Face cache folder (None: huggingface_hub's).

    Returns:
        `Source`.

    Raises:
        ConfigError: an unknown name (with close matches) or a malformed URL.
        DataError: a missing or malformed file, weights unavailable offline.
    """
    text = str(spec)
    if isinstance(spec, os.PathLike) or Path(text).exists():
        return local_source(Path(spec), weights)
    if text.startswith(HF_SCHEME):
        hub_file = parse_hf_url(text)
        return hub_source(hub_file, _optional_manifest(manifest), cache_dir)
    if "/" in text or os.sep in text or text.endswith((".h5", ".json")):
        raise DataError(f"{text}: no such file or directory")
    try:
        return manifest_source(text, load_manifest(manifest), cache_dir)
    except ConfigError as err:
        if str(err).startswith("unknown pretrained model"):
            raise ConfigError(f"{err}; not a local path or an hf:// URL either") from None
        raise


def _optional_manifest(manifest):
    try:
        return load_manifest(manifest)
    except ConfigError:
        if manifest is not None:
            raise
        return None
