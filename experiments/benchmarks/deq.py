"""Benchmark of DEQ-XPDNet (`fastmri_recon.models.deq`) on CPU: backward modes and memory against XPDNet.

Issue 6. Small demo-like inputs: one single-coil k-space of ``--size`` (default 64 x 64), a random
Cartesian mask (acceleration 4, 8 % central lines), a random smooth image as the target; a small
denoiser (``--image-net unet`` ``small`` with ``--filters 8,16``, ``--n-primal 2``) to keep CPU runs short.

1. ``time``: eager training steps of DEQ-XPDNet for each backward mode (`implicit.backward.MODES`), all
   models with the same weights and inputs, runs of the modes interleaved, medians of ``--repeats`` runs
   after one warm-up run (tracing of the solver). Split in ``forward`` (the model under a
   ``tf.GradientTape`` and the l1 loss), ``backward`` (``tape.gradient``: the custom gradient of the DEQ
   layer, that is the backward solve of the mode, plus the differentiable application of ``f``) and
   ``step`` (forward, backward and an Adam update, timed as one). The forward solve is the same in every
   mode (Broyden, ``--max-iter`` iterations at most, tolerance ``--tol``).
2. ``memory``: the memory of one training step of DEQ-XPDNet (solver ``max_iter`` = depth, tolerance 0
   so that it runs all iterations) and of the unrolled XPDNet (``n_iter`` = depth, the same denoiser
   per iteration), for each depth of ``--depth`` (default 10, 20, 40). ``tf.config.experimental.
   get_memory_info("CPU:0")`` returns zeros on CPU, so memory is the resident set size of a fresh
   subprocess per configuration (glibc told to return freed memory: ``MALLOC_MMAP_THRESHOLD_`` and
   ``MALLOC_TRIM_THRESHOLD_`` = 64 KiB): the model is built and called once (tracing the DEQ solver), then a
   thread samples ``/proc/self/statm`` every millisecond during ``1 + --steps`` training steps; the table gives
   (peak RSS during the step - RSS just before it) for the first step (nothing of an earlier step to reuse:
   the measure to compare) and the median over the later steps (what the allocators did not keep from the
   first step: TensorFlow's CPU allocator keeps some buffers, so this undercounts), and the process's
   ``ru_maxrss`` (the peak of the whole process, TensorFlow's import and the weights included).
   Limits: RSS counts what the allocator keeps, not what TensorFlow uses; memory freed and reused within
   the step is not counted twice; the 1 ms sampling can miss short peaks.

Prints Markdown tables; the run is recorded in BENCHMARKS.md.

    python experiments/benchmarks/deq.py [--part time --part memory] [--repeats 5] [--depth 10 --depth 20 --depth 40]
"""

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import click  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fastmri_recon.implicit.backward import MODES  # noqa: E402
from fastmri_recon.models.deq import DEQXPDNet  # noqa: E402
from fastmri_recon.models.xpdnet import XPDNet  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def make_inputs(size, seed=0):
    """One example: masked single-coil k-space (1, H, W), mask (1, W), target magnitude (1, H, W)."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w] / np.array([h, w])[:, None, None]
    image = sum(
        rng.uniform(0.5, 1) * np.exp(-((y - rng.uniform(0.3, 0.7)) ** 2 + (x - rng.uniform(0.3, 0.7)) ** 2) / 0.02)
        for _ in range(4)
    )
    image = image * np.exp(1j * rng.uniform(-0.5, 0.5))
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    mask = (rng.uniform(size=w) < 0.25 - 0.08).astype(np.float32)
    center = int(round(0.08 * w))
    mask[w // 2 - center // 2 : w // 2 - center // 2 + center] = 1
    kspace = (kspace * mask[None, :]).astype(np.complex64)
    return (
        (tf.constant(kspace[None]), tf.constant(mask[None])),
        tf.constant(np.abs(image)[None].astype(np.float32)),
    )


def denoiser_params(filters):
    return dict(filters=tuple(int(f) for f in filters.split(",")))


def build(kind, depth, options, backward="shine", tol=None):
    common = dict(
        n_primal=options["n_primal"],
        image_net=options["image_net"],
        image_net_size=options["image_net_size"],
        image_net_params=denoiser_params(options["filters"]),
    )
    if kind == "deq":
        model = DEQXPDNet(
            max_iter=depth,
            tol=options["tol"] if tol is None else tol,
            backward=backward,
            backward_max_iter=options["backward_max_iter"],
            backward_tol=options["backward_tol"],
            **common,
        )
    else:
        model = XPDNet(n_iter=depth, **common)
    inputs, _ = make_inputs(options["size"])
    model.build(tuple(t.shape for t in inputs))
    model(inputs)
    return model


def step_parts(model, optimizer, inputs, target):
    """One eager training step; returns (forward s, backward s, update s)."""
    t0 = time.perf_counter()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(inputs) - target))
    loss.numpy()
    t1 = time.perf_counter()
    grads = tape.gradient(loss, model.trainable_variables)
    [g.numpy() for g in grads if g is not None]
    t2 = time.perf_counter()
    optimizer.apply(grads, model.trainable_variables)
    [v.numpy() for v in model.trainable_variables[:1]]
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def run_time(options, repeats):
    inputs, target = make_inputs(options["size"])
    models = {}
    for mode in MODES:
        models[mode] = build("deq", options["max_iter"], options, backward=mode)
    weights = models[MODES[0]].get_weights()
    for model in models.values():
        model.set_weights(weights)
    optimizers = {mode: keras.optimizers.Adam(1e-4) for mode in MODES}
    times = {mode: [] for mode in MODES}
    stats = {mode: [] for mode in MODES}
    for r in range(repeats + 1):
        for mode in MODES:
            # same weights before each step: every mode solves the same problems
            models[mode].set_weights(weights)
            parts = step_parts(models[mode], optimizers[mode], inputs, target)
            if r:
                times[mode].append(parts)
                stats[mode].append(models[mode].deq.solver_stats())
    rows = []
    implicit_bwd = statistics.median(t[1] for t in times["implicit"])
    implicit_step = statistics.median(sum(t) for t in times["implicit"])
    for mode in MODES:
        fwd = statistics.median(t[0] for t in times[mode])
        bwd = statistics.median(t[1] for t in times[mode])
        step = statistics.median(sum(t) for t in times[mode])
        st = stats[mode][-1]
        rows.append(
            f"| {mode} | {1e3 * fwd:.0f} | {1e3 * bwd:.0f} | {bwd / implicit_bwd:.2f} | {1e3 * step:.0f} | "
            f"{step / implicit_step:.2f} | {st['forward_steps']:.0f} | {st['backward_steps']:.0f} | "
            f"{st['fallback_rate']:.2f} |"
        )
    n_params = models[MODES[0]].count_params()
    print(
        f"\n### Backward modes (DEQ-XPDNet, {n_params:,} parameters, max_iter {options['max_iter']}, tol "
        f"{options['tol']}, backward_max_iter {options['backward_max_iter']}, backward_tol "
        f"{options['backward_tol']}; medians of {repeats} runs, ms)\n"
    )
    print(
        "| backward | forward (ms) | backward (ms) | backward / implicit | training step (ms) | step / implicit "
        "| forward steps | backward steps | fallback rate |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def memory_worker(kind, depth, options, steps):
    """Runs in a fresh process: prints a JSON line with the step's RSS increase and ru_maxrss."""
    inputs, target = make_inputs(options["size"])
    model = build("deq" if kind == "deq" else "xpdnet", depth, options, backward=options["backward"], tol=0.0)
    optimizer = keras.optimizers.Adam(1e-4)
    increases, seconds = [], []
    for _ in range(steps + 1):  # the first step is also the warm-up (optimizer slots, gradient functions)
        before = rss()
        peak = [before]
        done = threading.Event()

        def sample(done=done, peak=peak):
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.001)

        thread = threading.Thread(target=sample)
        thread.start()
        start = time.perf_counter()
        step_parts(model, optimizer, inputs, target)
        seconds.append(time.perf_counter() - start)
        done.set()
        thread.join()
        peak[0] = max(peak[0], rss())
        increases.append(peak[0] - before)
    result = dict(
        kind=kind,
        depth=depth,
        params=model.count_params(),
        first_step_mib=increases[0] / MIB,
        step_mib=statistics.median(increases[1:]) / MIB,
        step_s=statistics.median(seconds[1:]),
        maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    if kind == "deq":
        result["forward_steps"] = model.deq.solver_stats()["forward_steps"]
    print("RESULT " + json.dumps(result), flush=True)


def run_memory(options, depths, steps):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    results = []
    for depth in depths:
        for kind in ("deq", "xpdnet"):
            command = [sys.executable, __file__, "--worker", f"{kind}:{depth}", "--steps", str(steps),
                       "--options", json.dumps(options)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                print(out.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"worker {kind}:{depth} failed")
            results.append(json.loads(line[0][7:]))
            print(f"  done {kind}:{depth}", file=sys.stderr, flush=True)
    print(
        f"\n### Memory of a training step (DEQ: backward {options['backward']}, tol 0; fresh process per row; "
        f"first step, and median of the {steps} next steps)\n"
    )
    print(
        "| model | depth | parameters | forward steps | first step RSS increase (MiB) | later steps RSS increase (MiB) "
        "| process peak RSS (MiB) | step (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        name = "DEQ-XPDNet (max_iter)" if r["kind"] == "deq" else "XPDNet (n_iter)"
        steps_done = f"{r['forward_steps']:.0f}" if "forward_steps" in r else "-"
        print(
            f"| {name} | {r['depth']} | {r['params']:,} | {steps_done} | {r['first_step_mib']:.1f} | {r['step_mib']:.1f} | "
            f"{r['maxrss_mib']:.0f} | {1e3 * r['step_s']:.0f} |"
        )


@click.command()
@click.option("--part", "parts", multiple=True, type=click.Choice(["time", "memory"]), default=("time", "memory"))
@click.option("--repeats", default=5, show_default=True)
@click.option("--steps", default=3, show_default=True, help="Measured steps per memory configuration.")
@click.option("--depth", "depths", multiple=True, type=int, default=(10, 20, 40), show_default=True)
@click.option("--size", default="64,64", show_default=True, help="k-space H,W.")
@click.option("--n-primal", default=2, show_default=True)
@click.option("--image-net", default="unet", show_default=True)
@click.option("--image-net-size", default="small", show_default=True)
@click.option("--filters", default="8,16", show_default=True, help="Denoiser filters (image_net_params).")
@click.option("--max-iter", default=20, show_default=True, help="DEQ forward iterations for the time part.")
@click.option("--tol", default=1e-3, show_default=True)
@click.option("--backward-max-iter", default=20, show_default=True)
@click.option("--backward-tol", default=1e-3, show_default=True)
@click.option("--backward", default="shine", show_default=True, help="DEQ backward mode of the memory part.")
@click.option("--worker", default=None, hidden=True)
@click.option("--options", "options_json", default=None, hidden=True)
def main(parts, repeats, steps, depths, size, n_primal, image_net, image_net_size, filters, max_iter, tol,
         backward_max_iter, backward_tol, backward, worker, options_json):
    tf.random.set_seed(0)
    keras.utils.set_random_seed(0)
    if worker:
        options = json.loads(options_json)
        options["size"] = tuple(options["size"])
        kind, depth = worker.split(":")
        memory_worker(kind, int(depth), options, steps)
        return
    options = dict(
        size=tuple(int(s) for s in size.split(",")),
        n_primal=n_primal,
        image_net=image_net,
        image_net_size=image_net_size,
        filters=filters,
        max_iter=max_iter,
        tol=tol,
        backward_max_iter=backward_max_iter,
        backward_tol=backward_tol,
        backward=backward,
    )
    print(
        f"DEQ benchmark, {datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f}, TensorFlow {tf.__version__}; k-space 1 x {options['size'][0]} x "
        f"{options['size'][1]} single-coil, {image_net} {image_net_size} filters {filters}, n_primal {n_primal}"
    )
    if "time" in parts:
        run_time(options, repeats)
    if "memory" in parts:
        run_memory(options, depths, steps)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
