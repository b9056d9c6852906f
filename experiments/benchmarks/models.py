"""Benchmark of our U-net and E2E-VarNet against the PyTorch ``fastmri`` package's ``Unet`` and ``VarNet``.

Times, per model and framework, the median of ``--repeats`` runs after two warm-up runs of

- ``forward``: one forward pass (ours inside ``tf.function``; PyTorch eager under ``torch.no_grad()``);
- ``step``: a training step: forward, the l1 loss against a fixed random target, its gradient and an
  Adam update (ours: the training loop's own step, `training.loop.make_train_step`, with
  ``keras.optimizers.Adam`` under the default strategy, on a batch drawn from a distributed dataset;
  PyTorch: ``zero_grad``, ``backward`` and ``torch.optim.Adam.step`` eager);

and the peak memory: the growth of the process's peak resident set size (``resource.getrusage``'s
``ru_maxrss``, Linux, in MiB) over its value after the model, its weights and its inputs were built,
after the forward runs (``fwd MiB``) and then after the training steps (``step MiB``; the peak is
cumulative, so this is the peak of both). Each framework runs in its own interpreter (``--framework
tf|torch`` worker mode) with 2 intra-op threads (and 1 inter-op thread: one operation at a time, as
PyTorch's eager mode; ``--tf-inter-op 0`` leaves TensorFlow's default, the number of cores, which is how
``fastmri-recon train`` runs its step). Our worker imports ``fastmri_recon`` before TensorFlow, as the command line does,
and reports whether TensorFlow runs oneDNN's CPU kernels (``kernels``; `training.strategy.onednn_enabled`).

Cases (batch of one):

- ``unet-net``: the U-net's network part on a 1 x H x W single-channel float32 image (``--unet-height``,
  ``--unet-width``, default 320 x 320, the fastMRI knee images' size): ours ``build("unet").unet`` (4
  levels of 16, 32, 64 and 128 filters, 2 3x3 convolutions per level, ReLU, biases, no normalisation,
  2x2 max pooling, nearest up-sampling then a 2x2 convolution, final 1x1 convolution; the model's
  residual addition and its zero-filled input are left out) against
  ``fastmri.models.Unet(in_chans=1, out_chans=1, chans=16, num_pool_layers=3, drop_prob=0)``, the same
  16-32-64-128 levels but with instance normalisation, leaky ReLU 0.2, no biases, 2x2 average pooling,
  2x2 transposed convolutions instead of nearest up-sampling and a 2x2 convolution (same kernel sizes:
  the parameter counts differ by the biases only, 481,745 against 480,929).
- ``unet-full`` (ours only, for reference): the whole model ``build("unet", crop_size=(H, W))`` on
  ``(kspace complex64 (1, H, W), mask (1, W))`` (the U-net cases' size): centred inverse FFT,
  magnitude, U-net, residual.
- ``varnet``: ``build("e2e-varnet", n_cascades=N, chans=18, pools=4, sens_chans=8, sens_pools=4)`` on
  ``(kspace complex64 (1, C, H, W), mask (1, W))`` against ``fastmri.models.VarNet(num_cascades=N,
  chans=18, pools=4, sens_chans=8, sens_pools=4)`` on the same k-space as ``(1, C, H, W, 2)`` float32
  and the mask as ``(1, 1, 1, W, 1)`` bool. Equispaced mask at acceleration 4 with 8% of the columns in
  the centre. ``--cascades`` (default 12, the reference configuration), ``--coils``, ``--height``,
  ``--width`` choose the size.

Driver mode (default) runs ``--rounds`` rounds, each running every case once in each framework, the
two frameworks alternating, and prints a Markdown table of the medians over the rounds of the
per-run medians, with the ratios ours / PyTorch computed on the medians, and the 1-minute load average
before and after each worker. ``--load N`` starts N CPU-bound processes (``python -c 'while True:
pass'``) for the whole run, to measure under contention. The PyTorch worker runs with
``--torch-python`` (an interpreter with torch and fastmri installed, e.g. a separate venv).

    OMP_WAIT_POLICY=PASSIVE python experiments/benchmarks/models.py --torch-python /tmp/torchvenv/bin/python \
        [--rounds 3 --repeats 5 --cascades 12 --coils 8 --height 256 --width 128 --unet-height 320 --unet-width 320 --load 1]

On a CPU shared with other processes, PyTorch's OpenMP threads (libgomp, spinning at their barriers by
default) were measured up to 65x slower than in their fastest run; ``OMP_WAIT_POLICY=PASSIVE`` (inherited
by both workers; TensorFlow's thread pool is not OpenMP) removes most of that and is what BENCHMARKS.md
records.
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click
from timing import median_time  # experiments/benchmarks/timing.py

THREADS = 2
CASES = ("unet-net", "unet-full", "varnet")
BUSY_LOOP = "while True: pass"
"""What each of the ``--load`` processes runs."""


def equispaced_mask(width, acceleration=4, center_fraction=0.08):
    import numpy as np

    mask = np.zeros(width, np.float32)
    mask[::acceleration] = 1
    n_center = round(width * center_fraction)
    start = (width - n_center + 1) // 2
    mask[start : start + n_center] = 1
    return mask


def peak_rss_mib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(fn, repeats):
    """Median wall time of ``fn()`` in milliseconds (see `timing.median_time`)."""
    return median_time(fn, repeats) * 1e3


def make_data(case, coils, height, width, unet_size, seed=0):
    """Random inputs and target of ``case`` (numpy; see the module docstring), the same in both workers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if case == "unet-net":
        return {
            "image": rng.standard_normal((1, *unet_size)).astype(np.float32),
            "target": rng.standard_normal((1, *unet_size)).astype(np.float32),
        }
    if case == "unet-full":
        shape, mask_width = (1, *unet_size), unet_size[1]
        target_shape = (1, *unet_size)
    else:
        shape, mask_width = (1, coils, height, width), width
        target_shape = (1, height, width)
    mask = equispaced_mask(mask_width)
    kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(
        np.complex64
    ) * mask
    target = np.abs(rng.standard_normal(target_shape)).astype(np.float32)
    return {"kspace": kspace, "mask": mask[None], "target": target}


def run_tf(case, cascades, coils, height, width, unet_size, repeats, inter_op=1):
    import fastmri_recon  # noqa: F401  (before TensorFlow, as the command line imports them)
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    if inter_op > 0:  # 0: TensorFlow's default
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    from fastmri_recon.models.registry import build
    from fastmri_recon.training.loop import make_train_step
    from fastmri_recon.training.strategy import onednn_enabled

    data = make_data(case, coils, height, width, unet_size)
    target = tf.constant(data["target"])
    if case == "unet-net":
        model = build("unet", crop_size=unet_size)
        model.build(((None, *unet_size), (None, unet_size[1])))
        net = model.unet
        inputs = tf.constant(data["image"][..., None])
        target = target[..., None]  # the network's output has a channel axis

        def apply(training):
            return net(inputs, training=training)

        trained = net
    else:
        if case == "unet-full":
            model = build("unet", crop_size=unet_size)
        else:
            model = build(
                "e2e-varnet",
                n_cascades=cascades,
                chans=18,
                pools=4,
                sens_chans=8,
                sens_pools=4,
            )
        inputs = (tf.constant(data["kspace"]), tf.constant(data["mask"]))
        model(inputs)  # builds the weights

        def apply(training):
            return model(inputs, training=training)

        trained = model
    weights = trained.trainable_weights
    n_params = int(sum(int(tf.size(w)) for w in weights))
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(weights)
    strategy = tf.distribute.get_strategy()
    batches = tf.data.Dataset.from_tensors((inputs, target)).repeat()
    iterator = iter(strategy.distribute_datasets_from_function(lambda context: batches))
    step = make_train_step(
        strategy, trained, optimizer, keras.losses.MeanAbsoluteError(reduction=None), global_batch_size=1
    )

    @tf.function
    def forward():
        return apply(False)

    base = peak_rss_mib()
    fwd_ms = median_ms(lambda: forward().numpy(), repeats)
    fwd_mem = peak_rss_mib() - base
    step_ms = median_ms(lambda: step(iterator).numpy(), repeats)
    step_mem = peak_rss_mib() - base
    return {
        "params": n_params,
        "fwd_ms": fwd_ms,
        "step_ms": step_ms,
        "fwd_mib": fwd_mem,
        "step_mib": step_mem,
        "version": tf.__version__,
        "kernels": {True: "oneDNN", False: "Eigen", None: "unknown"}[onednn_enabled()],
    }


def run_torch(case, cascades, coils, height, width, unet_size, repeats):
    import torch

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    try:
        from fastmri.models import Unet, VarNet
    except (
        ImportError
    ):  # fastmri's package import pulls optional dependencies: import the modules
        from fastmri.models.unet import Unet
        from fastmri.models.varnet import VarNet

    torch.manual_seed(0)
    data = make_data(case, coils, height, width, unet_size)
    target = torch.from_numpy(data["target"])
    if case == "unet-net":
        model = Unet(
            in_chans=1, out_chans=1, chans=16, num_pool_layers=3, drop_prob=0.0
        )
        image = torch.from_numpy(data["image"])[:, None]

        def apply():
            return model(image)[:, 0]
    elif case == "varnet":
        model = VarNet(
            num_cascades=cascades, chans=18, pools=4, sens_chans=8, sens_pools=4
        )
        kspace = torch.view_as_real(torch.from_numpy(data["kspace"])).contiguous()
        mask = torch.from_numpy(data["mask"][0] > 0).reshape(1, 1, 1, -1, 1)

        def apply():
            return model(kspace, mask)
    else:
        return None
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def forward():
        with torch.no_grad():
            return apply()

    def step():
        optimizer.zero_grad()
        loss = torch.mean(torch.abs(apply() - target))
        loss.backward()
        optimizer.step()
        return loss.item()

    base = peak_rss_mib()
    fwd_ms = median_ms(forward, repeats)
    fwd_mem = peak_rss_mib() - base
    step_ms = median_ms(step, repeats)
    step_mem = peak_rss_mib() - base
    import fastmri

    return {
        "params": n_params,
        "fwd_ms": fwd_ms,
        "step_ms": step_ms,
        "fwd_mib": fwd_mem,
        "step_mib": step_mem,
        "version": f"torch {torch.__version__}, fastmri {getattr(fastmri, '__version__', '?')}",
        "kernels": "PyTorch's",
    }


def run_worker(framework, case, cascades, coils, height, width, unet_size, repeats, python, tf_inter_op):
    """Run one worker interpreter; its result dict, with the 1-minute load average before and after."""
    command = [
        python,
        os.path.abspath(__file__),
        "--framework",
        framework,
        "--case",
        case,
        "--cascades",
        str(cascades),
        "--coils",
        str(coils),
        "--height",
        str(height),
        "--width",
        str(width),
        "--unet-height",
        str(unet_size[0]),
        "--unet-width",
        str(unet_size[1]),
        "--repeats",
        str(repeats),
        "--tf-inter-op",
        str(tf_inter_op),
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(THREADS),
        "MKL_NUM_THREADS": str(THREADS),
    }
    load_before = os.getloadavg()[0]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{framework} {case} failed:\n{result.stderr[-3000:]}")
    return {
        **json.loads(result.stdout.strip().splitlines()[-1]),
        "load": (load_before, os.getloadavg()[0]),
    }


@contextlib.contextmanager
def busy_processes(count):
    """Run ``count`` CPU-bound processes (`BUSY_LOOP`) inside the block, to load the machine."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait()


@click.command()
@click.option(
    "--framework", type=click.Choice(["tf", "torch"]), default=None, help="worker mode"
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Choice(CASES),
    help="cases (default all)",
)
@click.option("--cascades", default=12, show_default=True)
@click.option("--coils", default=8, show_default=True)
@click.option("--height", default=256, show_default=True)
@click.option("--width", default=128, show_default=True)
@click.option("--unet-height", default=320, show_default=True, help="U-net cases' image height")
@click.option("--unet-width", default=320, show_default=True, help="U-net cases' image width")
@click.option(
    "--load", default=0, show_default=True, help="CPU-bound processes run beside the workers"
)
@click.option("--repeats", default=5, show_default=True)
@click.option("--rounds", default=3, show_default=True)
@click.option("--torch-python", default="/tmp/torchvenv/bin/python", show_default=True)
@click.option("--tf-inter-op", default=1, show_default=True, type=click.IntRange(min=0),
              help="TensorFlow's inter-op threads in its worker (0: TensorFlow's default, as the train command runs)")
def main(
    framework,
    cases,
    cascades,
    coils,
    height,
    width,
    unet_height,
    unet_width,
    load,
    repeats,
    rounds,
    torch_python,
    tf_inter_op,
):
    cases = cases or CASES
    unet_size = (unet_height, unet_width)
    if framework is not None:
        arguments = (cases[0], cascades, coils, height, width, unet_size, repeats)
        result = run_tf(*arguments, inter_op=tf_inter_op) if framework == "tf" else run_torch(*arguments)
        print(json.dumps(result))
        return
    pythons = {"tf": sys.executable, "torch": torch_python}
    results = {}
    with busy_processes(load):
        for round_ in range(rounds):
            for case in cases:
                order = ("tf", "torch") if round_ % 2 == 0 else ("torch", "tf")
                for fw in order:
                    if fw == "torch" and case == "unet-full":
                        continue
                    res = run_worker(
                        fw,
                        case,
                        cascades,
                        coils,
                        height,
                        width,
                        unet_size,
                        repeats,
                        pythons[fw],
                        tf_inter_op,
                    )
                    results.setdefault((case, fw), []).append(res)
                    print(
                        f"round {round_} {case} {fw}: {res}", file=sys.stderr, flush=True
                    )
    keys = ("fwd_ms", "step_ms", "fwd_mib", "step_mib")
    med = {
        k: {key: statistics.median(r[key] for r in v) for key in keys}
        for k, v in results.items()
    }
    loads = [value for runs in results.values() for r in runs for value in r["load"]]
    print(
        f"\nversions: {results[(cases[0], 'tf')][0]['version']} ({results[(cases[0], 'tf')][0]['kernels']} CPU kernels); "
        f"{next((v[0]['version'] for (c, f), v in results.items() if f == 'torch'), '-')}"
    )
    setup = []
    if "varnet" in cases:
        setup.append(f"varnet: {cascades} cascades, 1 x {coils} x {height} x {width}")
    if any(case.startswith("unet") for case in cases):
        setup.append(f"U-net: 1 x {unet_height} x {unet_width}")
    setup += [
        f"{rounds} rounds x {repeats} repeats",
        f"--load {load}",
        f"TensorFlow inter-op threads {tf_inter_op or 'default'}",
        f"1-minute load average {min(loads):.1f} to {max(loads):.1f}",
    ]
    print("; ".join(setup) + "\n")
    print(
        "| case | framework | parameters | forward (ms) | training step (ms) | forward peak RSS growth (MiB) "
        "| step peak RSS growth (MiB) | forward ours / PyTorch | step ours / PyTorch | step per round (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        for fw in ("tf", "torch"):
            if (case, fw) not in med:
                continue
            m, ref = med[(case, fw)], med.get((case, "torch"))
            ratios = ("-", "-")
            if fw == "tf" and ref:
                ratios = (
                    f"{m['fwd_ms'] / ref['fwd_ms']:.2f}",
                    f"{m['step_ms'] / ref['step_ms']:.2f}",
                )
            name = "ours (TF)" if fw == "tf" else "fastmri (PyTorch)"
            per_round = ", ".join(f"{r['step_ms']:.0f}" for r in results[(case, fw)])
            print(
                f"| {case} | {name} | {results[(case, fw)][0]['params']:,} | {m['fwd_ms']:.1f} | "
                f"{m['step_ms']:.1f} | {m['fwd_mib']:.0f} | {m['step_mib']:.0f} | {ratios[0]} | {ratios[1]} | "
                f"{per_round} |"
            )


if __name__ == "__main__":
    main()
