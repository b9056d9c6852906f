"""Benchmark: is the multi-coil training pipeline fast enough to feed XPDNet on this machine?

Measures, in one process on the demo data (``DemoConfig()``: 8 coils, k-space 256 x 128, targets
128 x 128; 6 training volumes of 8 slices):

- the multi-coil training pipeline (``multicoil_dataset(..., training=True)``, batch 1,
  equispaced-fraction masks at accelerations 4 and 8, as table (b) of ``fastmri-recon benchmark``)
  reading the HDF5 files and reading their TFRecord cache (``cache_dir``), with ``"acs"``
  sensitivity maps (what XPDNet is trained with) and without (reading, masking and scaling only):
  one run is one pass over the 48 training slices, reported in examples per second and in CPU
  milliseconds per example (the process's CPU time, all threads: hardly changed by other jobs);
- training steps of XPDNet (registry ``"xpdnet"``) at the main benchmark's configuration
  (``{"n_iter": 4, "image_net_size": "small"}``, see ``fastmri_recon/workflows/benchmark.py``):
  forward, the l1 loss (``get_loss("mae")``), its gradient and a RAdam update in a
  ``tf.function``, as the training loop's step; one run is ``--steps`` steps, reported in steps per
  second, on the pipeline's batches held in memory and fed live by each pipeline (the batch taken
  from the pipeline's iterator at each step, as in training: if the pipeline is not the
  bottleneck, the rates are the same);
- with ``--paper``, training steps of the paper-default XPDNet (10 iterations, medium MWCNN) on
  batches in memory (``--paper-repeats`` runs of one step).

Every measurement is the median of ``--repeats`` runs after two warm-up runs
(`timing.median_time`). The pipelines (``--rounds`` rounds) and the model's three feeds
(``--model-rounds`` rounds) are timed in rounds, every one once per round in alternating order, so
that other jobs on a shared machine slow them alike; the tables give the median over the rounds and
the per-round values. The ratio pipeline examples/s over model steps/s (batch 1: one example per
step) says how many times faster than the model the pipeline produces data; 2 or more means it is
not the bottleneck.

    python experiments/benchmarks/pipelines.py [--data-dir /tmp/bench_demo --rounds 7 --repeats 3 --steps 5 --paper]

The demo data and the cache are built under ``--data-dir`` when absent. Threads are TensorFlow's
defaults (as in training); the script prints the load average before and after.
"""

import itertools
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click
from timing import median_time  # experiments/benchmarks/timing.py

WARMUP = 2
MAIN_CONFIG = {"n_iter": 4, "image_net_size": "small"}


def pipeline_config(sensitivity_maps, cache_dir=None):
    from fastmri_recon.data.datasets import MulticoilConfig

    return MulticoilConfig(
        mask_type="equispaced_fraction", accelerations=(4, 8), batch_size=1, sensitivity_maps=sensitivity_maps,
        cache_dir=cache_dir,
    )


def pipeline_rate(dataset, repeats):
    """``(examples per second, CPU ms per example)`` of a pass over ``dataset`` (medians over ``repeats`` passes).

    The CPU time is the process's (all threads, user and system): unlike the wall time, other jobs
    on the machine barely change it.
    """
    count = sum(int(target.shape[0]) for _, target in dataset)
    cpu = []

    def one_pass():
        start = time.process_time()
        sum(1 for _ in dataset)
        cpu.append(time.process_time() - start)

    wall = median_time(one_pass, repeats, warmup=WARMUP)
    return count / wall, statistics.median(cpu[WARMUP:]) / count * 1e3


def training_step(model_config, crop_size):
    """``(step, model)``: XPDNet and its compiled training step ``step(inputs, target) -> loss``."""
    import tensorflow as tf

    from fastmri_recon.models.registry import build
    from fastmri_recon.training.losses import get_loss
    from fastmri_recon.training.optimizers import RAdam

    model, loss_fn, optimizer = build("xpdnet", crop_size=crop_size, **model_config), get_loss("mae"), RAdam(1e-3)

    @tf.function
    def step(inputs, target):
        with tf.GradientTape() as tape:
            loss = loss_fn(target, model(inputs, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    return step, model


def steps_per_second(step, batches, steps, repeats, warmup=WARMUP):
    """Training steps per second over ``steps`` steps on ``batches`` (an iterator; median over ``repeats`` runs)."""

    def run():
        for _ in range(steps):
            step(*next(batches)).numpy()

    return steps / median_time(run, repeats, warmup=warmup)


def alternating_rounds(measure, keys, rounds, label):
    """``{key: [measure(key) of each round]}``, the keys measured in order, then in reverse order, and so on."""
    values = {key: [] for key in keys}
    for round_ in range(rounds):
        for key in keys if round_ % 2 == 0 else keys[::-1]:
            values[key].append(measure(key))
        click.echo(f"{label} round {round_}: {', '.join(f'{key}: {v[-1]}' for key, v in values.items())}", err=True)
    return values


def machine():
    """CPU count and model (Linux's ``/proc/cpuinfo``), operating system."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@click.command()
@click.option("--data-dir", default="/tmp/bench_demo", show_default=True, help="Demo data (built when absent) and its cache.")
@click.option("--rounds", default=7, show_default=True, help="Rounds of pipeline measurements.")
@click.option("--model-rounds", default=3, show_default=True, help="Rounds of XPDNet measurements (in memory, fed live).")
@click.option("--repeats", default=3, show_default=True, help="Timed runs per measurement (median).")
@click.option("--steps", default=5, show_default=True, help="Training steps per timed run.")
@click.option("--paper/--no-paper", default=True, show_default=True, help="Also time the paper-default XPDNet.")
@click.option("--paper-repeats", default=3, show_default=True, help="Timed runs (of one step) of the paper-default XPDNet.")
def main(data_dir, rounds, model_rounds, repeats, steps, paper, paper_repeats):
    import tensorflow as tf

    from fastmri_recon.data.datasets import build_cache, multicoil_dataset
    from fastmri_recon.data.demo import DemoConfig, build_demo_dataset

    build_demo_dataset(data_dir, DemoConfig(), progress=False)
    train_dir, cache_dir = os.path.join(data_dir, "multicoil_train"), os.path.join(data_dir, "cache", "multicoil_train")
    build_cache(train_dir, cache_dir, progress=False)
    print(f"machine: {machine()}; TensorFlow {tf.__version__}; load average before: {load_average()}")

    sources = {"HDF5": None, "TFRecord cache": cache_dir}
    datasets = {
        (source, maps): multicoil_dataset(train_dir, pipeline_config(maps, cache))
        for maps in ("acs", None)
        for source, cache in sources.items()
    }
    pipelines = alternating_rounds(lambda key: pipeline_rate(datasets[key], repeats), list(datasets), rounds, "pipelines")
    rates = {key: statistics.median(rate for rate, _ in values) for key, values in pipelines.items()}

    batches = list(itertools.islice(iter(datasets[("HDF5", "acs")]), 8))
    crop_size = tuple(batches[0][1].shape[1:])
    step, model = training_step(MAIN_CONFIG, crop_size)
    feeds = {"batches in memory": itertools.cycle(batches)}
    feeds.update({f"fed live by the {source} pipeline": iter(datasets[(source, "acs")].repeat()) for source in sources})
    models = alternating_rounds(lambda feed: steps_per_second(step, feeds[feed], steps, repeats), list(feeds), model_rounds, "xpdnet")
    model_rows = [(f"xpdnet {MAIN_CONFIG}, {model.count_params():,} parameters, {feed}", values) for feed, values in models.items()]
    if paper:
        step, model = training_step({}, crop_size)
        rate = steps_per_second(step, itertools.cycle(batches), 1, paper_repeats)
        model_rows.append((f"xpdnet paper default (10 iterations, medium MWCNN), {model.count_params():,} parameters, batches in memory", [rate]))

    print(f"load average after: {load_average()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(
        f"median over {rounds} (pipelines) / {model_rounds} (xpdnet) rounds of the median of {repeats} runs after "
        f"{WARMUP} warm-up runs; {steps} steps per xpdnet run"
        + (f"; paper default: median of {paper_repeats} runs of 1 step" if paper else "")
        + "\n"
    )
    print("| pipeline | examples / s | CPU ms / example | examples / s per round |")
    print("|---|---|---|---|")
    for (source, maps), values in pipelines.items():
        cpu = statistics.median(ms for _, ms in values)
        per_round = ", ".join(f"{rate:.0f}" for rate, _ in values)
        print(f"| {source}, {'acs maps' if maps else 'no maps'} | {rates[(source, maps)]:.1f} | {cpu:.1f} | {per_round} |")
    print("\n| model training step | steps / s | pipeline (acs maps) examples/s over steps/s | steps / s per round |")
    print("|---|---|---|---|")
    for name, values in model_rows:
        rate = statistics.median(values)
        ratios = ", ".join(f"{source} {rates[(source, 'acs')] / rate:.0f}x" for source in sources)
        print(f"| {name} | {rate:.3f} | {ratios} | {', '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
