"""Table (c) of the NC-PDNet paper on the demo data: NC-PDNet against the density-compensated adjoint.

For radial and spiral acquisitions at acceleration 4, in three settings — 2D single-coil and 2D
multi-coil (samples simulated from the demo fastMRI files, `data.datasets.noncartesian`) and 3D
single-coil (kooshball for radial, stack of spirals for spiral, simulated from the demo volumes,
`data.datasets.volume3d`) — `run_table_c` trains NC-PDNet (and, in 2D, the adjoint + U-net baseline
``nc-unet``) with `training.run.run_training`, evaluates them and the density-compensated adjoint
``nc-adjoint`` on the validation split with `evaluate.evaluate.evaluate_directory` (one trajectory
for every volume and method, the run's own), and writes

- ``OUTPUT_DIR/table_c_noncartesian.md`` and ``.json``: one row per setting, trajectory and method;
- ``OUTPUT_DIR/<setting>_<trajectory>/results.*`` and ``reconstructions.png`` (`tables.write_results`);
- the training runs under ``OUTPUT_DIR/runs/`` (reused when it runs again).

Budgets, as the benchmark's (`workflows.benchmark.BUDGETS`): ``tiny`` (seconds: the test),
``default`` (about 5 minutes on 2 CPU cores: 64 x 64 demo images, 16 x 32 x 32 volumes, networks
reduced, 400 steps in 2D and 150 in 3D) and ``paper`` (the networks' paper configurations on 128 x 128 images
and 48^3 volumes, 20 times the steps; for a GPU).

The command that makes the table: ``fastmri-recon benchmark --table c`` (into ``OUTPUT_DIR/table_c``).
"""

import dataclasses
import json
from pathlib import Path

from fastmri_recon.data.demo import DemoConfig
from fastmri_recon.errors import ConfigError
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.evaluate.tables import markdown_rows, table_rows, write_results
from fastmri_recon.files import write_text
from fastmri_recon.models.registry import build
from fastmri_recon.training.config import TrainConfig
from fastmri_recon.training.run import run_training
from fastmri_recon.training.rundir import acquisition, demo_split, load_trained_model
from fastmri_recon.workflows.benchmark import BUDGETS, DEMO_CONFIGS, LearnedEntry, prepare_data

ACCELERATION = 4
TRAJECTORIES = {"2D": {"radial": "radial", "spiral": "spiral"}, "3D": {"radial": "kooshball", "spiral": "stack_of_spirals"}}
"""The trajectory of each family (radial / spiral) in 2D and in 3D."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One block of the table: its data and the networks trained for it."""

    name: str
    title: str
    coils: str
    volumetric: bool
    learned: tuple


@dataclasses.dataclass(frozen=True)
class Budget:
    """The data sizes and training budget of a run of the table."""

    demo: DemoConfig
    volume_shape: tuple
    settings: tuple


def budget_settings(budget):
    """The `Budget` of ``budget`` (one of `BUDGETS`)."""
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {', '.join(BUDGETS)}, got '{budget}'")
    tiny, paper = budget == "tiny", budget == "paper"

    def entry(model, reduced, tiny_config, steps):
        # below the paper budget the networks remove the data's global phase, as the benchmark's (`models.base`)
        config = {} if paper else {**(tiny_config if tiny else reduced), "phase_normalization": True}
        return LearnedEntry(model, config, 2 if tiny else (20 * steps if paper else steps))

    ncpdnet = entry("ncpdnet", {"n_iter": 4, "n_primal": 3, "n_filters": 16}, {"n_iter": 1, "n_primal": 2, "n_filters": 4}, 400)
    unet = entry("nc-unet", {"filters": [8, 16, 32]}, {"filters": [4, 8], "n_convs": 1}, 400)
    volumes = entry("ncpdnet-3d", {"n_iter": 3, "n_primal": 2, "n_filters": 8}, {"n_iter": 1, "n_primal": 2, "n_filters": 4}, 150)
    settings = (
        Setting("singlecoil", "2D single-coil", "singlecoil", False, (ncpdnet, unet)),
        Setting("multicoil", "2D multi-coil", "multicoil", False, (ncpdnet, unet)),
        Setting("volumes", "3D single-coil", "singlecoil", True, (volumes,)),
    )
    if tiny:
        return Budget(DEMO_CONFIGS["tiny"], (8, 16, 16), settings)
    if paper:
        return Budget(DemoConfig(), (48, 48, 48), settings)
    return Budget(DemoConfig(image_size=64), (16, 32, 32), settings)


def train(entry, setting, trajectory, budget, data_dir, runs_dir, progress):
    """Train (or reuse) one network of the table; return its run's final model and configuration."""
    config = TrainConfig(
        model=entry.model,
        model_config=entry.model_config,
        data_dir="demo-volumes" if setting.volumetric else str(data_dir),
        coils=setting.coils,
        trajectory=trajectory,
        accelerations=(ACCELERATION,),
        volume_shape=budget.volume_shape if setting.volumetric else None,
        epochs=1,
        steps_per_epoch=entry.steps,
        checkpoint_every=50,
        output_dir=str(runs_dir),
        run_name=f"{setting.name}_{trajectory}_{entry.model}",
    )
    result = run_training(config, progress=progress)
    return load_trained_model(result["run_dir"], weights="final")


def run_table_c(out_dir, budget="default", progress=True, log=print, data_dir=None):
    """Train, evaluate and tabulate every setting; write the table and the results under ``out_dir``.

    Args:
        out_dir: output folder (tables, results, demo data under ``data/`` and runs under ``runs/``).
        budget: one of `BUDGETS`.
        data_dir: fastMRI data (``singlecoil_*`` / ``multicoil_*`` split folders) for the 2D
            settings, or None for the demo data under ``out_dir/data`` (see
            `workflows.benchmark.prepare_data`); the 3D setting always uses the demo volumes.
        progress: progress bars.
        log: function receiving progress messages and the table.

    Returns:
        list of ``(setting title, EvaluationResult)``, in table order.
    """
    plan = budget_settings(budget)
    out_dir = Path(out_dir)
    data_dir = Path(data_dir) if data_dir is not None else out_dir / "data"
    planar = [setting for setting in plan.settings if not setting.volumetric]
    source_name = prepare_data(data_dir, planar, budget, progress, demo_config=plan.demo)
    rows = []
    for setting in plan.settings:
        for family, trajectory in TRAJECTORIES["3D" if setting.volumetric else "2D"].items():
            log(f"## {setting.title}, {trajectory} x{ACCELERATION}")
            trained = []
            for entry in setting.learned:
                log(f"training {entry.model} ({entry.steps} steps)")
                trained.append((entry.model, *train(entry, setting, trajectory, plan, data_dir, out_dir / "runs", progress)))
            _, reference, reference_config = trained[0]
            shared = acquisition(reference_config, reference_config.seed)  # every method: the first run's data
            source = demo_split("val", plan.volume_shape) if setting.volumetric else data_dir / f"{setting.coils}_val"
            methods = [("nc-adjoint", build("nc-adjoint", image_shape=reference.image_shape), True)]
            methods += [(name, model, config.density_compensation) for name, model, config in trained]
            results = [
                evaluate_directory(model, name, source, dataclasses.replace(shared, density_compensation=density), progress=progress)
                for name, model, density in methods
            ]
            write_results(out_dir / f"{setting.name}_{family}", results)
            rows += [(setting.title, result) for result in results]
    text = markdown_rows([{"setting": title, **row} for (title, _), row in zip(rows, table_rows([r for _, r in rows]))])
    title = f"(c) non-Cartesian reconstruction, acceleration {ACCELERATION}, 2D: {source_name} data, 3D: demo volumes ({budget} budget)"
    write_text(out_dir / "table_c_noncartesian.md", f"# {title}\n\n{text}\n")
    write_text(
        out_dir / "table_c_noncartesian.json",
        json.dumps({"budget": budget, "rows": [{"setting": t, **r.to_json()} for t, r in rows]}, indent=2) + "\n",
    )
    log(text)
    return rows
