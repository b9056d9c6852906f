"""Table (d) of SHINE (Ramzi et al., ICLR 2022), its MRI experiment: DEQ-XPDNet with SHINE against the unrolled XPDNet.

On multi-coil data at acceleration 4 (equispaced-fraction masks, as table (b)), `run_table_d` trains

- the unrolled XPDNet (``xpdnet``), and
- DEQ-XPDNet (``deq-xpdnet``: the fixed point of one weight-shared XPDNet iteration with the same
  denoiser) three times, with the backward modes ``shine``, ``jacobian-free`` and ``implicit``
  (`implicit.backward`), all with the same forward solver (Broyden), tolerance and iteration limit,

each for the same number of steps (`training.run.run_training`), evaluates them and zero-filled
(the reference) on the validation split (`evaluate.evaluate.evaluate_directory`), and writes

- ``OUTPUT_DIR/table_d_deq.md``, ``.json`` and ``.csv``: one row per method, the fastMRI metrics
  (mean (std) over volumes) plus the training steps, the training seconds per step (mean over the
  second half of the steps: the first half's first step also traces the graph) and, for the DEQs,
  the mean number of forward solver iterations per slice during the evaluation and the fraction of
  slices whose forward solve reached the tolerance (the JSON adds the largest relative residual);
- ``OUTPUT_DIR/table_d_deq_x4/results.*`` and ``reconstructions.png`` (`tables.write_results`);
- the training runs under ``OUTPUT_DIR/runs/BUDGET_NAME/`` (reused when it runs again).

The data is the benchmark's (`workflows.benchmark.prepare_data`): ``data_dir`` (``--data-dir``)
holding fastMRI's ``multicoil_train/`` and ``multicoil_val/`` (and no demo ``demo_info.json``) is
used as it is; otherwise the demo data is built there (if absent or of another configuration).

Budgets, named as the benchmark's (`workflows.benchmark.BUDGETS`):

- ``tiny``: seconds (the test): 2 steps of tiny networks, at most 3 solver iterations;
- ``default``: about 8 minutes on 2 CPU cores for the demo data: 160 steps per network, a small U-net
  denoiser (3 levels of 16, 32, 64 filters, 2 primal buffers), XPDNet unrolled 4 times, the DEQ's
  Broyden solver at most 10 iterations to a relative residual of 1e-3 (the implicit backward solve
  too), and ``phase_normalization`` (as the benchmark's complex networks: see `models.base`);
- ``paper``: the registry's (paper) configurations — XPDNet's 10 iterations and DEQ-XPDNet's
  single iteration, both with the medium MWCNN and 5 primal buffers, Broyden at most 20 iterations
  to 1e-3 forward and backward — with 20 times the default steps; for a GPU and the real data.

The command that makes the table: ``fastmri-recon benchmark --table d`` (into ``OUTPUT_DIR/table_d``).
"""

import csv
import io
import json
import time
from pathlib import Path

from fastmri_recon.data.masks import MaskSampler, default_center_fraction
from fastmri_recon.errors import ConfigError
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.evaluate.tables import markdown_rows, table_rows, write_results
from fastmri_recon.files import write_text
from fastmri_recon.models.registry import build
from fastmri_recon.training.config import DEFAULT_DATA_DIR
from fastmri_recon.training.loop import METRICS_CSV
from fastmri_recon.workflows.benchmark import BUDGETS, LearnedEntry, Table, prepare_data, train_entry

ACCELERATION = 4
BACKWARD_MODES = ("shine", "jacobian-free", "implicit")
"""The DEQ backward modes of the table, in its order (`implicit.backward.MODES`)."""
TABLE_NAME = "table_d_deq"
DEFAULT_STEPS = 160


def plan(budget):
    """The `Table` of ``budget``: data, mask, the zero-filled reference and the networks to train.

    Every network trains for the same number of steps; the DEQs differ only by their backward mode
    (same denoiser, forward solver, tolerance and iteration limits); the unrolled XPDNet has the
    same denoiser and primal buffers.

    Args:
        budget: one of `BUDGETS`.

    Returns:
        `workflows.benchmark.Table` whose ``learned`` entries are the XPDNet, then one DEQ-XPDNet per
        `BACKWARD_MODES`.

    Raises:
        ConfigError: for an unknown budget.
    """
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be one of {', '.join(BUDGETS)}, got '{budget}'")
    if budget == "paper":  # the registry's defaults are the papers' configurations
        steps, unrolled, deq = 20 * DEFAULT_STEPS, {}, {}
    else:
        tiny = budget == "tiny"
        denoiser = {
            "n_primal": 2,
            "image_net": "unet",
            "image_net_size": "small",
            **({"image_net_params": {"filters": [4, 8]}} if tiny else {}),
            "phase_normalization": True,
        }
        iterations = 3 if tiny else 10
        solver = {"solver": "broyden", "max_iter": iterations, "tol": 1e-3, "backward_max_iter": iterations, "backward_tol": 1e-3}
        steps, unrolled, deq = (2 if tiny else DEFAULT_STEPS), {**denoiser, "n_iter": 1 if tiny else 4}, {**denoiser, **solver}
    learned = (LearnedEntry("xpdnet", unrolled, steps),) + tuple(
        LearnedEntry("deq-xpdnet", {**deq, "backward": mode}, steps) for mode in BACKWARD_MODES
    )
    title = f"(d) DEQ-XPDNet with SHINE vs the unrolled XPDNet, multi-coil, equispaced-fraction masks, acceleration {ACCELERATION}"
    return Table(TABLE_NAME, title, "multicoil", "equispaced_fraction", (ACCELERATION,), ("zero-filled",), learned)


def label(entry):
    """The table's name of a network: ``xpdnet`` or ``deq-xpdnet (MODE)``."""
    backward = entry.model_config.get("backward")
    return entry.model if backward is None else f"{entry.model} ({backward})"


def train(entry, table, budget, data_dir, runs_dir, progress):
    """Train (or reuse) one network of the table.

    Two epochs of half the steps each, so that the second epoch's time is free of the graph's
    tracing; the run is named after the budget and the `label`, so budgets and modes do not mix.

    Returns:
        ``(model, seconds_per_step)``: the run's final model and the training seconds per step of
        its second epoch (from the run's ``metrics.csv``, so a reused run reports its own time).
    """
    run_name = f"{budget}_{label(entry).replace(' (', '_').rstrip(')')}"
    model, run_dir = train_entry(entry, table, data_dir, runs_dir, progress, run_name=run_name, epochs=2)
    with open(run_dir / METRICS_CSV, newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    return model, float(last["seconds"]) / max(1, entry.steps // 2)


class SolverStatsRecorder:
    """A model as `evaluate_directory` sees it, recording its DEQ's forward-solve statistics at each call.

    Attributes other than the call are the model's (``needs_smaps``, ``count_params``, ...).

    Args:
        model: a model with a ``deq`` layer that reports ``solver_stats()`` (`implicit.deq.DEQ`).
    """

    def __init__(self, model):
        self.model = model
        self.calls = []  # (examples, the DEQ's solver_stats() after the call)

    def __call__(self, inputs):
        output = self.model(inputs)
        self.calls.append((int(output.shape[0]), self.model.deq.solver_stats()))
        return output

    def __getattr__(self, name):
        if name == "model":  # not set yet (copying): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def _mean(self, name):
        return sum(n * stats[name] for n, stats in self.calls) / sum(n for n, _ in self.calls)

    def summary(self):
        """dict: ``forward_iterations`` (mean per slice), ``forward_converged`` (fraction of the
        slices whose solve reached the tolerance) and ``forward_residual`` (largest relative
        residual ``||z - f(z)|| / ||z||`` of any slice) over the recorded calls."""
        return {
            "forward_iterations": self._mean("forward_steps"),
            "forward_converged": self._mean("forward_converged"),
            "forward_residual": max(stats["forward_residual"] for _, stats in self.calls),
        }


def reports_solver_stats(model):
    """True when ``model`` has a DEQ layer that reports its solver's statistics."""
    return callable(getattr(getattr(model, "deq", None), "solver_stats", None))


def _cell(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def run_table_d(out_dir, data_dir=DEFAULT_DATA_DIR, budget="default", progress=True, log=print):
    """Train, evaluate and tabulate table (d); write it under ``out_dir``.

    Args:
        out_dir: output folder (the table, the results folder and the runs under ``runs/``).
        data_dir: fastMRI data with ``multicoil_train/`` and ``multicoil_val/``, or the demo data's
            folder (built when absent or different): see `workflows.benchmark.prepare_data`.
        budget: one of `BUDGETS`.
        progress: progress bars.
        log: function receiving progress messages and the table.

    Returns:
        list of dicts, one per row in table order: ``result`` (`EvaluationResult`), ``train_steps``,
        ``train_seconds_per_step`` and the DEQs' evaluation solver statistics
        (`SolverStatsRecorder.summary`): None where not applicable.

    Raises:
        ConfigError: for an unknown budget, or fastMRI data without the multi-coil split folders.
        DataError: for bad data files.
    """
    start = time.perf_counter()
    table = plan(budget)
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    source = prepare_data(data_dir, [table], budget, progress)
    log(f"## {table.title} ({source} data, {data_dir}, {budget} budget)")
    methods = [(name, build(name), None, None) for name in table.baselines]
    for entry in table.learned:
        log(f"training {label(entry)} ({entry.steps} steps)")
        model, seconds_per_step = train(entry, table, budget, data_dir, out_dir / "runs" / budget, progress)
        methods.append((label(entry), model, entry.steps, seconds_per_step))
    sampler = MaskSampler(table.mask_type, [default_center_fraction(ACCELERATION)], [ACCELERATION])
    rows = []
    for name, model, steps, seconds_per_step in methods:
        recorder = SolverStatsRecorder(model) if reports_solver_stats(model) else None
        result = evaluate_directory(recorder or model, name, data_dir / f"{table.coils}_val", sampler, progress=progress)
        solver = recorder.summary() if recorder else dict.fromkeys(("forward_iterations", "forward_converged", "forward_residual"))
        rows.append({"result": result, "train_steps": steps, "train_seconds_per_step": seconds_per_step, **solver})
    results = [row["result"] for row in rows]
    write_results(out_dir / f"{TABLE_NAME}_x{ACCELERATION}", results)
    cells = [
        {
            **evaluation,
            "train steps": "-" if row["train_steps"] is None else str(row["train_steps"]),
            "train s / step": _cell(row["train_seconds_per_step"], 3),
            "solver iterations": _cell(row["forward_iterations"], 1),
            "converged": _cell(row["forward_converged"], 2),
        }
        for row, evaluation in zip(rows, table_rows(results))
    ]
    text = markdown_rows(cells)
    wall = time.perf_counter() - start
    write_text(out_dir / f"{TABLE_NAME}.md", f"# {table.title}\n\nData: {source} ({data_dir}); {budget} budget.\n\n{text}\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(cells[0]))
    writer.writeheader()
    writer.writerows(cells)
    write_text(out_dir / f"{TABLE_NAME}.csv", buffer.getvalue())
    stored = {
        "budget": budget,
        "data": source,
        "data_dir": str(data_dir),
        "acceleration": ACCELERATION,
        "seconds": wall,
        "rows": [
            {**row["result"].to_json(), **{key: value for key, value in row.items() if key != "result"}}
            for row in rows
        ],
    }
    write_text(out_dir / f"{TABLE_NAME}.json", json.dumps(stored, indent=2) + "\n")
    log(text)
    log(f"({wall:.0f} s)")
    return rows
