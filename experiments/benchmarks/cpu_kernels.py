"""The main job's training steps with TensorFlow's Eigen CPU kernels against oneDNN's.

For each network of `fastmri-recon benchmark`'s tables (`workflows.benchmark.benchmark_tables`, default
budget: its reduced configurations, its data, masks and learning rates), a fresh interpreter trains it
with `workflows.benchmark.train_entry` for two epochs of ``--steps`` steps of batch 1 on the demo data
(built once, `DemoConfig` defaults: 128 x 128 images, 8 coils) with ``TF_ENABLE_ONEDNN_OPTS`` set to
``0`` (Eigen) or ``1`` (oneDNN), and reports the second epoch's seconds per step from the run's
``metrics.csv`` (the first epoch holds the tracing): the whole training step of the package's loop,
input pipeline included. ``--rounds`` rounds run every network once with each kernel set, alternating
which goes first; the table gives per-kernel medians over the rounds and the median of the per-round
ratios Eigen / oneDNN, and the 1-minute load average before and after the rounds.

Usage::

    python experiments/benchmarks/cpu_kernels.py [--rounds 3 --steps 15 --network unet --network kiki-net ...]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import click

KERNELS = {"Eigen": "0", "oneDNN": "1"}


def networks():
    """``name -> (table, LearnedEntry)`` of the main job's networks at the default budget."""
    from fastmri_recon.workflows.benchmark import benchmark_tables

    return {entry.model: (table, entry) for table in benchmark_tables("default") for entry in table.learned}


def train_worker(name, steps, data_dir, runs_dir):
    """Train ``name`` for 2 x ``steps`` steps; print ``{"kernels", "ms_per_step"}`` as JSON."""
    import csv
    import dataclasses

    from fastmri_recon.training.strategy import onednn_enabled
    from fastmri_recon.workflows.benchmark import train_entry

    table, entry = networks()[name]
    _, run_dir = train_entry(dataclasses.replace(entry, steps=2 * steps), table, Path(data_dir), Path(runs_dir), False, epochs=2)
    with open(run_dir / "metrics.csv", newline="") as file:
        second = list(csv.DictReader(file))[1]
    kernels = {True: "oneDNN", False: "Eigen", None: "unknown"}[onednn_enabled()]
    print(json.dumps({"kernels": kernels, "ms_per_step": float(second["seconds"]) / steps * 1e3}))


def run_worker(name, kernels, steps, data_dir, runs_dir):
    """One worker interpreter with ``TF_ENABLE_ONEDNN_OPTS`` for ``kernels``; its result dict."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": KERNELS[kernels], "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, __file__, "--worker", name, "--steps", str(steps), "--data-dir", str(data_dir), "--runs-dir", str(runs_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} ({kernels}) failed:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["kernels"] != kernels:
        raise RuntimeError(f"{name}: asked for {kernels} kernels, TensorFlow ran {report['kernels']}")
    return report["ms_per_step"]


@click.command()
@click.option("--rounds", default=3, show_default=True)
@click.option("--steps", default=15, show_default=True, help="timed steps (the second epoch's)")
@click.option("--network", "names", multiple=True, help="networks of the main job (default: all)")
@click.option("--worker", default=None, hidden=True)
@click.option("--data-dir", default=None, hidden=True)
@click.option("--runs-dir", default=None, hidden=True)
def main(rounds, steps, names, worker, data_dir, runs_dir):
    if worker:
        return train_worker(worker, steps, data_dir, runs_dir)
    from fastmri_recon.data.demo import build_demo_dataset

    known = tuple(networks())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: expected networks of the main job ({', '.join(known)})", param_hint="--network")
    names = names or known
    times = {(name, kernels): [] for name in names for kernels in KERNELS}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "demo"
        build_demo_dataset(data, progress=False)
        load_before = os.getloadavg()[0]
        for round_index in range(rounds):
            order = list(KERNELS) if round_index % 2 == 0 else list(reversed(KERNELS))
            for name in names:
                for kernels in order:
                    runs = Path(scratch) / f"runs-{round_index}-{kernels}"
                    times[name, kernels].append(run_worker(name, kernels, steps, data, runs))
                    print(f"round {round_index + 1} {name} {kernels}: {times[name, kernels][-1]:.1f} ms / step", file=sys.stderr)
        load_after = os.getloadavg()[0]
    print("| network | Eigen ms / step | oneDNN ms / step | Eigen / oneDNN |")
    print("|---|---|---|---|")
    for name in names:
        eigen, onednn = times[name, "Eigen"], times[name, "oneDNN"]
        ratio = statistics.median(e / o for e, o in zip(eigen, onednn))
        print(f"| {name} | {statistics.median(eigen):.1f} | {statistics.median(onednn):.1f} | {ratio:.2f} |")
    print(f"\n{rounds} rounds of {steps} timed steps; 1-minute load average {load_before:.2f} before, {load_after:.2f} after")


if __name__ == "__main__":
    main()
