"""The main job: train the papers' networks briefly on the demo data and tabulate them with the baselines.

``fastmri-recon benchmark`` builds the demo data if needed, trains every learned model of

- table (a), the single-coil benchmark of Ramzi et al. 2020 (U-net, KIKI-net, Cascade-net, PD-net,
  acceleration 4, random masks), and
- table (b), the multi-coil comparison of XPDNet with E2E-VarNet (accelerations 4 and 8,
  equispaced-fraction masks as in fastMRI's brain data),

for a budget of steps, evaluates them and the classical baselines on the held-out validation
split with the fastMRI metrics, and writes each table (Markdown, JSON, CSV) with a figure of
reconstructions and error maps. Runs are resumable: the same command continues where it stopped.

Budgets: ``tiny`` (seconds: tests), ``default`` (about 18 minutes on 2 CPU cores: networks reduced
so that a few hundred steps teach them something) and ``paper`` (the papers' configurations; for
a GPU and the real data). Below ``paper``, the complex-valued networks remove the global phase of
their input (``phase_normalization``, see `models.base`): six demo subjects cover too few image
phases for them to generalise to a held-out subject otherwise.
"""

import dataclasses
import json
from pathlib import Path

from fastmri_recon.data.demo import DemoConfig, build_demo_dataset
from fastmri_recon.data.masks import MaskSampler, default_center_fraction
from fastmri_recon.errors import ConfigError
from fastmri_recon.files import write_text
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.evaluate.tables import markdown_table, with_published_column, write_results
from fastmri_recon.models.registry import build
from fastmri_recon.training.config import TrainConfig
from fastmri_recon.training.run import run_training
from fastmri_recon.training.rundir import load_trained_model
from fastmri_recon.workflows.tuning import choose_parameter

PUBLISHED_SINGLECOIL_PSNR = {"zero-filled": 29.61, "kiki-net": 31.38, "unet": 31.78, "cascade-net": 31.97, "pdnet": 32.15}
"""fastMRI single-coil knee validation PSNR at acceleration 4 (Ramzi et al. 2020, Table 1)."""


@dataclasses.dataclass(frozen=True)
class LearnedEntry:
    """A network of a table: its registry name, its configuration, its training steps and learning rate."""

    model: str
    model_config: dict
    steps: int
    learning_rate: float = 1e-3


@dataclasses.dataclass(frozen=True)
class Table:
    """One table: data, undersampling, baselines and networks."""

    name: str
    title: str
    coils: str
    mask_type: str
    accelerations: tuple
    baselines: tuple
    learned: tuple


def benchmark_tables(budget):
    """The two tables of the main job at a budget (one of `BUDGETS`): ``(table (a), table (b))`` `Table`s."""
    small = budget == "tiny"
    paper = budget == "paper"

    def steps(default, paper_steps):
        return 2 if small else (paper_steps if paper else default)

    def config(reduced, tiny, complex_network=True):
        if paper:
            return {}
        return {**(tiny if small else reduced), **({"phase_normalization": True} if complex_network else {})}

    single = (
        LearnedEntry("unet", config({"filters": [16, 32, 64]}, {"filters": [4, 8]}, complex_network=False), steps(1000, 20000)),
        LearnedEntry("kiki-net", config({"n_convs": 4, "n_filters": 16}, {"n_convs": 2, "n_filters": 4}), steps(600, 16000)),
        LearnedEntry("cascade-net", config({"n_cascades": 5, "n_convs": 3, "n_filters": 16}, {"n_cascades": 2, "n_convs": 2, "n_filters": 4}), steps(600, 16000)),
        LearnedEntry("pdnet", config({"n_iter": 5, "n_filters": 16}, {"n_iter": 2, "n_filters": 4}), steps(500, 16000)),
    )
    multi = (
        LearnedEntry("xpdnet", config({"n_iter": 4, "image_net_size": "small"}, {"n_iter": 1, "image_net_size": "small"}), steps(400, 8000)),
        # fastMRI trains VarNet at 3e-4 for days; its regularisers start far from the data, and in a
        # 400-step budget only a larger rate brings it back (3e-4: 20.1 dB at x4, 1e-3: 21.9, 3e-3: 23.8 on the
        # CPU of 2026-11-25; 3e-3: 23.26 with oneDNN on the AMD EPYC of 2026-12-02)
        LearnedEntry(
            "e2e-varnet",
            config({"n_cascades": 4, "chans": 8, "sens_chans": 4}, {"n_cascades": 1, "chans": 4, "sens_chans": 2, "pools": 2, "sens_pools": 2}),
            steps(400, 8000),
            learning_rate=3e-4 if paper else 3e-3,
        ),
    )
    return (
        Table("table_a_singlecoil", "(a) single-coil, random masks, acceleration 4", "singlecoil", "random", (4,), ("zero-filled", "cs-wavelet"), single),
        Table("table_b_multicoil", "(b) multi-coil, equispaced-fraction masks, accelerations 4 and 8", "multicoil", "equispaced_fraction", (4, 8), ("zero-filled", "grappa", "sense", "cs-wavelet"), multi),
    )


BUDGETS = ("tiny", "default", "paper")
TUNED_BASELINES = {"cs-wavelet": ("lam", (0.003, 0.01, 0.03)), "grappa": ("tikhonov", (0.01, 0.1, 1.0))}
"""Baselines whose weight is chosen by PSNR on training volumes, per acceleration: argument, candidates."""
TUNING_VOLUMES = 1
"""Training volumes the baselines are tuned on (the first in file-name order)."""
DEMO_CONFIGS = {"tiny": DemoConfig(train_subjects=2, val_subjects=1, test_subjects=1, slices=2, image_size=32, coils=4)}


def holds_fastmri_data(data_dir, splits=("singlecoil_train", "singlecoil_val", "multicoil_train", "multicoil_val")):
    """Whether ``data_dir`` is real data (fastMRI's split folders, among ``splits``, and no demo build's ``demo_info.json``)."""
    data_dir = Path(data_dir)
    return not (data_dir / "demo_info.json").is_file() and any((data_dir / split).is_dir() for split in splits)


def prepare_data(data_dir, tables, budget, progress, demo_config=None, splits=("train", "val"), keep_demo=False):
    """The data of the benchmark: the user's fastMRI folders if ``data_dir`` holds them, else the demo data.

    A folder with fastMRI's split folders (``singlecoil_train``, ``multicoil_val``, ... as the
    fastMRI archives unpack) and without the demo's ``demo_info.json`` is real data, used as it is;
    otherwise (absent, empty, or a demo build) the demo data is built there if needed.

    Args:
        data_dir: `Path`.
        tables: the tables to run: objects with a ``coils`` attribute (their ``{coils}_train`` /
            ``{coils}_val`` folders are needed).
        budget: one of `BUDGETS` (the tiny budget builds a tiny demo data set).
        progress: progress bar while building.
        demo_config: the demo data's `DemoConfig` (default: the budget's).
        splits: the splits the tables need (``train`` and ``val``; ``val`` only to evaluate
            published weights).
        keep_demo: use an existing demo build as it is, whatever its configuration (the budget's
            is built only where there is none).

    Returns:
        ``"demo"`` or ``"fastMRI"``: what the tables are computed on.

    Raises:
        ConfigError: for real data without a split folder a table needs.
    """
    splits = [f"{table.coils}_{split}" for table in tables for split in splits]
    is_demo = not holds_fastmri_data(data_dir, splits)
    if is_demo and keep_demo and (data_dir / "demo_info.json").is_file():
        return "demo"
    if is_demo:
        build_demo_dataset(data_dir, demo_config or DEMO_CONFIGS.get(budget, DemoConfig()), progress=progress)
        return "demo"
    missing = [split for split in splits if not (data_dir / split).is_dir()]
    if missing:
        raise ConfigError(f"{data_dir}: fastMRI data without the folder(s) {', '.join(missing)} that the tables need")
    return "fastMRI"


def baselines_for(table, sampler, data_dir, progress):
    """The table's baselines for one acceleration, the tuned ones with their chosen weight.

    Args:
        table: a `Table`.
        sampler: the acceleration's `MaskSampler`.
        data_dir: the data folder (tuning reads ``{coils}_train``).
        progress: progress bars.

    Returns:
        ``(models, notes)``: dict name -> baseline, and one ``"name: argument=value"`` per tuned one.
    """
    models, notes = {}, []
    for name in table.baselines:
        if name not in TUNED_BASELINES:
            models[name] = build(name)
            continue
        parameter, values = TUNED_BASELINES[name]
        best, _ = choose_parameter(
            name, parameter, values, data_dir / f"{table.coils}_train", sampler, progress=progress, max_volumes=TUNING_VOLUMES
        )
        models[name] = build(name, **{parameter: best})
        notes.append(f"{name}: {parameter}={best:g}")
    return models, notes


def train_entry(entry, table, data_dir, runs_dir, progress, run_name=None, epochs=1):
    """Train (or reuse) one network of a table.

    Args:
        entry: its `LearnedEntry` (its ``steps`` are split evenly over ``epochs``).
        table: the `Table` (data, masks, accelerations).
        data_dir: the data folder.
        runs_dir: where the runs go.
        progress: progress bars.
        run_name: the run's name (default ``{coils}_{model}``).
        epochs: epochs the steps are split over (the second epoch's time is free of the tracing).

    Returns:
        ``(model, run_dir)``: the run's final model and its `Path`.
    """
    config = TrainConfig(
        model=entry.model,
        model_config=entry.model_config,
        data_dir=str(data_dir),
        coils=table.coils,
        mask_type=table.mask_type,
        accelerations=table.accelerations,
        learning_rate=entry.learning_rate,
        epochs=epochs,
        steps_per_epoch=max(1, entry.steps // epochs),
        checkpoint_every=50,
        output_dir=str(runs_dir),
        run_name=run_name or f"{table.coils}_{entry.model}",
    )
    run_dir = Path(run_training(config, progress=progress)["run_dir"])
    model, _ = load_trained_model(run_dir, weights="final")
    return model, run_dir


TABLE_KEYS = ("a", "b")


def run_benchmark(out_dir, data_dir, budget="default", progress=True, log=print, tables=TABLE_KEYS):
    """Run the benchmark; write the tables and figures under ``out_dir``.

    Args:
        out_dir: output folder (tables, figures, and the training runs under ``runs/``).
        data_dir: the user's fastMRI data folder, or the demo data's (built when absent or
            different): see `prepare_data`.
        budget: one of `BUDGETS`.
        progress: progress bars.
        log: function receiving progress messages and the tables.
        tables: which tables (`TABLE_KEYS`: ``"a"`` single-coil, ``"b"`` multi-coil).

    Returns:
        dict table name -> list of `EvaluationResult`.
    """
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {', '.join(BUDGETS)}, got '{budget}'")
    unknown = sorted(set(tables) - set(TABLE_KEYS))
    if unknown or not tables:
        raise ConfigError(f"tables must be among {', '.join(TABLE_KEYS)}, got {', '.join(unknown) or 'none'}")
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    selected = [table for table, key in zip(benchmark_tables(budget), TABLE_KEYS) if key in tables]
    source = prepare_data(data_dir, selected, budget, progress)
    results = {}
    for table in selected:
        log(f"\n## {table.title} ({source} data, {data_dir})")
        learned = {}
        for entry in table.learned:
            log(f"training {entry.model} ({entry.steps} steps)")
            learned[entry.model], _ = train_entry(entry, table, data_dir, out_dir / "runs", progress)
        rows, tuning = [], []
        for acceleration in table.accelerations:
            sampler = MaskSampler(table.mask_type, [default_center_fraction(acceleration)], [acceleration])
            baselines, notes = baselines_for(table, sampler, data_dir, progress)
            tuning += [f"{note} (x{acceleration})" for note in notes]
            evaluated = [
                evaluate_directory(model, name, data_dir / f"{table.coils}_val", sampler, progress=progress)
                for name, model in {**baselines, **learned}.items()
            ]
            write_results(out_dir / f"{table.name}_x{acceleration}", evaluated)
            rows += evaluated
        results[table.name] = rows
        text = markdown_table(rows)
        if table.coils == "singlecoil":
            published = {r.model: PUBLISHED_SINGLECOIL_PSNR.get(r.model) for r in rows}
            text = with_published_column(text, [r.model for r in rows], published, "published PSNR (fastMRI knee)")
        chosen = f"Baseline weights chosen by PSNR on {TUNING_VOLUMES} training volume(s): {'; '.join(tuning)}."
        write_text(out_dir / f"{table.name}.md", f"# {table.title}\n\nData: {source} ({data_dir}). {chosen}\n\n{text}\n")
        log(f"{chosen}\n{text}")
    write_text(out_dir / "benchmark.json", json.dumps({t: [r.to_json() for r in rows] for t, rows in results.items()}, indent=2) + "\n")
    return results
