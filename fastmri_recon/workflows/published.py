"""The papers' tables from the papers' own weights: no training, the published networks evaluated as the papers did.

``fastmri-recon benchmark --weights published`` loads the networks the benchmark papers published
(manifest entries converted from the original Keras-2 files, `hub.original`) and evaluates them with
zero-filled on the validation split:

- table (a): U-net, KIKI-net, Cascade-net and PD-net on ``singlecoil_val``, random masks at
  acceleration 4 (centre fraction 0.08, as the benchmark's ``gen_mask``), k-space x1e6 (each entry's
  ``scale_factor``; the U-net standardises its input per slice), outputs cropped to the targets'
  320 x 320, fastMRI's metrics per volume; beside the published PSNR of Ramzi et al. 2020;
- table (b): XPDNet of the 2020 brain challenge on ``multicoil_val`` at acceleration 4
  (equispaced-fraction masks, maps from the auto-calibration lines).

On the demo data the same command runs (outputs cropped to the demo's 128 x 128 targets); the networks
were trained on knees (table a) and on brains of another contrast and size, so the figures are far below the
published ones: they show that the pipeline runs, not what the networks can do.
"""

import dataclasses
from pathlib import Path

from fastmri_recon.data.h5 import target_shape
from fastmri_recon.data.masks import MaskSampler, default_center_fraction
from fastmri_recon.errors import ConfigError
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.evaluate.tables import markdown_table, with_published_column, write_results
from fastmri_recon.files import write_text
from fastmri_recon.hub.load import load_pretrained
from fastmri_recon.hub.manifest import load_manifest
from fastmri_recon.models.registry import build
from fastmri_recon.workflows.benchmark import PUBLISHED_SINGLECOIL_PSNR, prepare_data


@dataclasses.dataclass(frozen=True)
class PublishedTable:
    """A table of published networks: data, undersampling, manifest names."""

    key: str
    name: str
    title: str
    coils: str
    mask_type: str
    acceleration: float
    networks: tuple
    published_data: str

    @property
    def splits(self):
        return (f"{self.coils}_val",)


TABLES = (
    PublishedTable(
        "a",
        "table_a_published",
        "(a) single-coil, random masks, acceleration 4: the papers' weights",
        "singlecoil",
        "random",
        4.0,
        ("unet-fastmri", "kiki-net-fastmri", "cascade-net-fastmri", "pdnet-fastmri"),
        "fastMRI knee singlecoil_val",
    ),
    PublishedTable(
        "b",
        "table_b_published",
        "(b) multi-coil, equispaced-fraction masks, acceleration 4: the challenge XPDNet's weights",
        "multicoil",
        "equispaced_fraction",
        4.0,
        ("xpdnet-brain-af4",),
        "fastMRI brain multicoil_val",
    ),
)


def published_psnr(entry, table):
    """The published PSNR of a manifest entry on the table's data and acceleration, or None (several or none)."""
    figures = [
        m["PSNR"]
        for m in entry["metrics"]
        if m["data"].startswith(table.published_data) and m["acceleration"] == table.acceleration and "contrast" not in m
    ]
    return figures[0] if len(figures) == 1 else None


def run_published_benchmark(out_dir, data_dir, tables=("a",), progress=True, log=print, manifest=None, cache_dir=None):
    """Evaluate the papers' published networks and zero-filled; write the tables under ``out_dir``.

    Args:
        out_dir: output folder.
        data_dir: the user's fastMRI data folder (its ``{coils}_val`` folders) or the demo data's.
        tables: ``"a"`` and / or ``"b"``.
        progress: progress bars.
        log: receives progress messages and the tables.
        manifest: the weights manifest (None: the default one).
        cache_dir: the Hugging Face cache (None: huggingface_hub's).

    Returns:
        dict table name -> list of `EvaluationResult`.

    Raises:
        ConfigError: unknown tables; DataError / ChecksumError: weights not available or refused
            (checked before any evaluation).
    """
    unknown = sorted(set(tables) - {t.key for t in TABLES})
    if unknown or not tables:
        raise ConfigError(f"tables must be among a, b, got {', '.join(unknown) or 'none'}")
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    selected = [t for t in TABLES if t.key in tables]
    source = prepare_data(data_dir, selected, "default", progress, splits=("val",), keep_demo=True)
    book = load_manifest(manifest)
    networks = {}
    for table in selected:  # every network loaded (downloaded, checked, converted) before any evaluation
        size = target_shape(data_dir / f"{table.coils}_val")
        for name in table.networks:
            networks[name] = load_pretrained(name, manifest=book.path, cache_dir=cache_dir, crop_size=size)
    results = {}
    for table in selected:
        log(f"\n## {table.title} ({source} data, {data_dir})")
        sampler = MaskSampler(table.mask_type, [default_center_fraction(table.acceleration)], [table.acceleration])
        directory = data_dir / f"{table.coils}_val"
        rows = [evaluate_directory(build("zero-filled"), "zero-filled", directory, sampler, progress=progress)]
        for name in table.networks:
            pretrained = networks[name]
            log(f"evaluating {name} ({pretrained.source.origin})")
            rows.append(evaluate_directory(pretrained.model, name, directory, sampler, progress=progress, scale_factor=pretrained.scale_factor))
        write_results(out_dir / table.name, rows)
        published = {name: published_psnr(book.get(name), table) for name in table.networks}
        if table.key == "a":
            published["zero-filled"] = PUBLISHED_SINGLECOIL_PSNR["zero-filled"]
        text = with_published_column(markdown_table(rows), [r.model for r in rows], published, f"published PSNR ({table.published_data})")
        note = (
            f"Data: {source} ({data_dir}). Networks: the papers' weights (weights_manifest.json), not retrained. "
            f"Published figures: {table.published_data}" + (" (see the manifest entries for per-contrast figures)." if table.key == "b" else ".")
        )
        write_text(out_dir / f"{table.name}.md", f"# {table.title}\n\n{note}\n\n{text}\n")
        log(f"{note}\n{text}")
        results[table.name] = rows
    return results
