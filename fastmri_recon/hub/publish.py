"""Publishing a training run: a Hub-ready folder, its upload, and its manifest entry.

The folder holds exactly what the Hub repository will:

- ``NAME.weights.h5``: the run's best (or final) weights;
- ``config.json``: the manifest entry without ``hub`` (architecture, full constructor config,
  training configuration, acquisition, data, sha256, size, package version, metrics): enough for
  `from_pretrained` to rebuild the model from the folder or from the repository;
- ``README.md``: the model card (`card.model_card`);
- ``reconstruction.png``: target, zero-filled and model reconstructions with error maps.

Metrics are measured on the run's validation split (or ``eval_dir``) with
`evaluate.evaluate_directory` (what ``fastmri-recon evaluate`` runs): for each acceleration of a
Cartesian run beside zero-filled, on the run's own trajectory for a non-Cartesian (2D or 3D) run beside
the density-compensated adjoint. Three modes:
``upload`` (``HfApi().upload_folder`` with the token of ``$HF_TOKEN`` or of ``hf auth login``, then
the entry is written with the commit hash as revision), ``no-upload`` (the entry is written marked
``uploaded: false``, for weights kept in the repository's ``weights/`` folder) and ``dry-run``
(folder and manifest diff only; nothing uploaded, the manifest file untouched).
"""

import dataclasses
import json
import math
import os
import re
import shutil
from pathlib import Path

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.files import atomic_path, write_text
from fastmri_recon.hub.card import FIGURE_FILE, model_card
from fastmri_recon.hub.checksum import sha256_file
from fastmri_recon.hub.load import load_pretrained, model_config
from fastmri_recon.hub.locate import FOLDER_CONFIG, WEIGHTS_SUFFIX
from fastmri_recon.hub.manifest import load_manifest, validate_entry

MODES = ("upload", "no-upload", "dry-run")
CARD_FILE = "README.md"
PENDING_REVISION = "<commit hash of the upload>"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
DEMO_VOLUMES_DATA = "fastmri-recon demo volumes (MNI template), {split} split"
"""The ``data`` of a 3D run on ``demo-volumes``."""
_REPO_ID = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclasses.dataclass(frozen=True)
class PublishResult:
    """What `publish` did.

    Attributes:
        folder: the Hub-ready folder.
        entry: the manifest entry.
        diff: unified diff of the manifest file (empty when unchanged).
        revision: the commit hash of the upload, or None.
        manifest_written: whether the manifest file was updated.
    """

    folder: Path
    entry: dict
    diff: str
    revision: str = None
    manifest_written: bool = False


def default_name(run_dir):
    """A manifest name from a run directory's name (lower case, other characters replaced by ``-``)."""
    return re.sub(r"[^a-z0-9_.-]+", "-", Path(run_dir).resolve().name.lower()).strip("-._") or "model"


def describe_data(directory, with_volumes=False):
    """A short description of a data split, e.g. ``"fastmri-recon demo data (seed 0, 128 x 128) singlecoil_val"``."""
    directory = Path(directory)
    info = directory.parent / "demo_info.json"
    if info.is_file():
        config = json.loads(info.read_text()).get("config", {})
        size = config.get("image_size", "?")
        text = f"fastmri-recon demo data (seed {config.get('seed', '?')}, {size} x {size}) {directory.name}"
    else:
        text = f"{directory.parent.name}/{directory.name}"
    if with_volumes:
        text += f", {len(list(directory.glob('*.h5')))} volumes"
    return text


def _metrics(result, data, acceleration, mask_type=None, center_fraction=None):
    means, stds = result.summary.means(), result.summary.stds()
    sampling = {} if mask_type is None else {"mask_type": mask_type}
    fraction = {} if center_fraction is None else {"center_fraction": center_fraction}
    metrics = {"data": data, **sampling, "acceleration": acceleration, **fraction, "volumes": len(result.summary), **means}
    finite = {k: v for k, v in stds.items() if not math.isnan(v)}
    return {**metrics, "std": finite} if finite else metrics


def evaluate_run(model, name, run, eval_dir, progress=True):
    """Evaluate a run's model and its acquisition's baseline: zero-filled at each acceleration of a
    Cartesian run (each volume's mask seeded by its file name), the density-compensated adjoint on a
    non-Cartesian run's own acquisition.

    Args:
        model: the loaded model.
        name: its name.
        run: the `training.rundir.RunDirectory`.
        eval_dir: a directory of fastMRI files with targets (3D runs: of NIfTI volumes, or the
            demo validation volumes, float32 ``(n, D, H, W)``).
        progress: progress bars.

    Returns:
        ``(metrics, baseline_metrics, baseline, examples)``: the metrics lists (manifest format) of
        the model and of the baseline, the baseline's name, and the first acceleration's example
        slice of each for the figure.
    """
    from fastmri_recon.data.masks import MaskSampler, default_center_fraction
    from fastmri_recon.evaluate.evaluate import evaluate_directory
    from fastmri_recon.models.registry import build

    config, scale = run.config, run.scale_factor
    data = describe_data(eval_dir) if isinstance(eval_dir, (str, Path)) else DEMO_VOLUMES_DATA.format(split="val")
    metrics, baseline, examples = [], [], {}
    if config.acquisition != "cartesian":
        acquisition = run.acquisition()
        methods = (("nc-adjoint", build("nc-adjoint", image_shape=run.grid), baseline), (name, model, metrics))
        for method, network, out in methods:
            result = evaluate_directory(network, method, eval_dir, acquisition, progress=progress, scale_factor=scale)
            out.append(_metrics(result, data, config.accelerations[0]))
            examples.setdefault(method, result.example)
        return metrics, baseline, "nc-adjoint", examples
    fractions = config.center_fractions or [default_center_fraction(a) for a in config.accelerations]
    zero_filled = build("zero-filled")
    for acceleration, fraction in zip(config.accelerations, fractions):
        sampler = MaskSampler(config.mask_type, [fraction], [acceleration])
        for method, network, out in (("zero-filled", zero_filled, baseline), (name, model, metrics)):
            result = evaluate_directory(network, method, eval_dir, sampler, progress=progress, scale_factor=scale)
            out.append(_metrics(result, data, acceleration, config.mask_type, fraction))
            examples.setdefault(method, result.example)
    return metrics, baseline, "zero-filled", examples


def _prepare_folder(folder, weights_file):
    expected = {FOLDER_CONFIG, CARD_FILE, FIGURE_FILE, weights_file}
    if folder.exists():
        if not folder.is_dir():
            raise ConfigError(f"{folder}: not a folder")
        others = sorted(p.name for p in folder.iterdir() if p.name not in expected)
        if others:
            raise ConfigError(f"{folder}: holds other files ({', '.join(others[:5])}): choose an empty --output-dir")
    folder.mkdir(parents=True, exist_ok=True)


def _figure(folder, examples, title):
    from fastmri_recon.evaluate.figures import comparison_figure

    volume, index, target, _ = next(iter(examples.values()))
    comparison_figure(folder / FIGURE_FILE, target, {k: v[3] for k, v in examples.items()}, f"{volume}, slice {index}, {title}")


def _notes(mode, folder, manifest):
    if mode != "no-upload":
        return None
    try:
        where = folder.resolve().relative_to(manifest.path.parent.resolve())
    except ValueError:
        where = folder.name
    return (
        f"Not uploaded to the Hub: the folder {where}/ holds the files the Hub repository will hold; "
        "'fastmri-recon weights publish' without --no-upload uploads them and pins the revision."
    )


def describe_acquisition(config):
    """A run's acquisition as the manifest records it: ``coils``, ``trajectory`` (``cartesian`` or the
    trajectory kind), ``dimensions`` and, Cartesian, ``mask_type``."""
    if config.acquisition == "cartesian":
        return {"coils": config.coils, "trajectory": "cartesian", "dimensions": 2, "mask_type": config.mask_type}
    return {"coils": config.coils, "trajectory": config.trajectory, "dimensions": 3 if config.volumetric else 2}


def write_folder(folder, name, pretrained, run, metrics, notes):
    """Copy the weights into ``folder`` and write its ``config.json``; return the entry (without ``hub``).

    Args:
        folder: the Hub-ready folder (created; it may hold only a previous publication's files).
        name: the manifest name.
        pretrained: the run's `load.Pretrained`.
        run: the `training.rundir.RunDirectory`.
        metrics: the model's metrics (manifest format).
        notes: the entry's notes, or None.
    """
    from fastmri_recon.training.rundir import DEMO_VOLUMES, split_dir

    source, training = pretrained.source, run.config
    weights_file = f"{name}{WEIGHTS_SUFFIX}"
    _prepare_folder(folder, weights_file)
    with atomic_path(folder / weights_file) as tmp:
        shutil.copyfile(source.weights, tmp)
    demo_volumes = training.volumetric and training.data_dir == DEMO_VOLUMES
    entry = {
        "name": name,
        "architecture": source.architecture,
        "config": model_config(pretrained.model),
        "training": source.training,
        "scale_factor": source.scale_factor,
        "acquisition": describe_acquisition(training),
        "accelerations": list(training.accelerations),
        **({"contrast": ", ".join(training.contrasts)} if training.contrasts else {}),
        "training_data": DEMO_VOLUMES_DATA.format(split="train") if demo_volumes else describe_data(split_dir(training, "train"), with_volumes=True),
        "file": weights_file,
        "sha256": sha256_file(folder / weights_file),
        "size_bytes": (folder / weights_file).stat().st_size,
        "package_version": run.version,
        "metrics": metrics,
        **({"notes": notes} if notes else {}),
    }
    validate_entry(entry, f"{folder / FOLDER_CONFIG}", hub_required=False)
    write_text(folder / FOLDER_CONFIG, json.dumps(entry, indent=2) + "\n")
    return entry


def upload_folder(folder, repo_id, message):
    """Upload a folder to a Hub model repository (created if needed); return the commit hash.

    The token is ``$HF_TOKEN`` or the one stored by ``hf auth login``; it is never printed.

    Raises:
        ConfigError: without a token.
        DataError: when the Hub refuses or cannot be reached.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    token = os.environ.get("HF_TOKEN") or huggingface_hub.get_token()
    if not token:
        raise ConfigError("no Hugging Face token: set HF_TOKEN to a write token (or use --dry-run / --no-upload)")
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message, repo_type="model")
    except (HfHubHTTPError, OSError) as err:
        text = " ".join(str(err).replace(token, "***").split())
        raise DataError(f"upload of {folder} to {repo_id} failed: {text[:300]}") from None
    return commit.oid


def publish(run_dir, repo_id, name=None, weights="best", output_dir=None, eval_dir=None, manifest=None, mode="upload", progress=True):
    """Publish a training run.

    Args:
        run_dir: a training run directory (``fastmri-recon train``).
        repo_id: the Hub repository ``OWNER/NAME``.
        name: the manifest name (None: `default_name` of the run directory).
        weights: ``best`` or ``final``.
        output_dir: the Hub-ready folder (None: ``RUN_DIR/hub/NAME``); it may hold only a previous
            publication's files.
        eval_dir: the data the metrics are measured on (None: the run's validation split).
        manifest: the manifest file (None: the default one).
        mode: one of `MODES`.
        progress: progress bars.

    Returns:
        `PublishResult`.

    Raises:
        ConfigError / DataError: a bad name, repository id, run directory, data or upload.
    """
    from fastmri_recon.training.rundir import RunDirectory, split_source

    if mode not in MODES:
        raise ConfigError(f"mode='{mode}': expected one of {', '.join(MODES)}")
    if not _REPO_ID.match(repo_id):
        raise ConfigError(f"--repo-id '{repo_id}': expected OWNER/NAME (letters, digits, '_', '.', '-')")
    name = name or default_name(run_dir)
    if not _NAME.match(name):
        raise ConfigError(f"--name '{name}': expected lower-case letters, digits, '_', '.', '-' (starting with a letter or digit)")
    book = load_manifest(manifest)
    run = RunDirectory.read(run_dir)
    pretrained = load_pretrained(run_dir, weights)
    if pretrained.source.entry is not None:
        raise ConfigError(f"{run_dir}: a published folder, not a training run directory")
    source = pretrained.source
    eval_source = Path(eval_dir) if eval_dir is not None else split_source(run.config, "val")
    metrics, baseline, baseline_name, examples = evaluate_run(pretrained.model, name, run, eval_source, progress)

    folder = Path(output_dir) if output_dir is not None else Path(run_dir) / "hub" / name
    entry = write_folder(folder, name, pretrained, run, metrics, _notes(mode, folder, book))
    write_text(folder / CARD_FILE, model_card(entry, repo_id, pretrained.model.count_params(), {baseline_name: baseline}))
    config = run.config
    title = f"{config.mask_type} x{config.accelerations[0]:g}" if config.acquisition == "cartesian" else run.acquisition().describe()
    _figure(folder, examples, title)

    revision = None
    if mode == "upload":
        message = f"Publish {name}: {source.architecture}, sha256 {entry['sha256'][:12]} (fastmri-recon)"
        revision = upload_folder(folder, repo_id, message)
    hub = {"repo_id": repo_id, "revision": revision or ("main" if mode == "no-upload" else PENDING_REVISION)}
    if mode == "no-upload":
        hub["uploaded"] = False
    notes = entry.pop("notes", None)
    entry = {**entry, "hub": hub, **({"notes": notes} if notes else {})}
    updated = book.with_entry(entry)
    if mode != "dry-run":
        updated.write()
    return PublishResult(folder, entry, book.diff(updated), revision, mode != "dry-run")
