"""Benchmark of the package's TensorFlow NUFFT against finufft (and tfkbnufft when importable).

Times the forward (type 2) and adjoint (type 1) NUFFT, median of ``--repeats`` runs after two warm-up
runs, for:

- ``2d-320``: a 320 x 320 image with 4 coils (one example), 400 golden-angle spokes x 640 samples;
- ``2d-256``: a 256 x 256 image (one coil), 64 golden-angle spokes x 512 samples (the issue's case);
- ``3d-64``: a 64^3 volume (one coil), kooshball at acceleration 8 (805 spokes x 128 samples).

Methods: ours with a precomputed `NUFFTPlan`, eagerly and inside ``tf.function``; ours computing the
interpolation on the fly inside ``tf.function`` (what a model does when the trajectory is an input);
ours through the ``"finufft"`` backend of `NUFFTPlan` (``tf.numpy_function``, plan reused) when finufft
is installed; finufft with a plan (``setpts`` done once) with 1 thread and with all cores (TensorFlow
may use all cores; the ratios are against the faster of the two); tfkbnufft (``tf.function`` as it
ships, its default 6-point Kaiser-Bessel table, its output rescaled to our normalisation) if it can be
imported.

Per-call plans: the "setup" column times, interleaved with the rest, the construction of our plan
inside ``tf.function`` (interpolation matrix: sorting, indices, weights) and finufft's ``setpts``; the
note of the on-the-fly row gives its ratio to a call with a plan and to finufft's ``setpts`` +
execute. "plan MB" is the memory of our plan's tensors (grid indices, weights, sample order, block corners and per-axis kernels).
The runs of all methods of a case are interleaved, so that a change of the machine's load hits them
alike. The note gives the time of the first forward and adjoint calls (tracing and, for ours, the XLA
compilation of the interpolation kernels), and of the eager construction of our plan. Accuracy of
each, as a relative l2 error against the exact NDFT (float64), on 1000 samples drawn from the
trajectory (forward: those outputs of the first coil; adjoint: the adjoint of random values on those
samples). Prints a Markdown table; the run is recorded in BENCHMARKS.md.

    python experiments/benchmarks/nufft.py [--case 2d-320 --case 2d-256 --case 3d-64] [--eps 1e-4 --eps 1e-5] [--stages]
"""

import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fastmri_recon.data.trajectories import kooshball_trajectory, radial_trajectory  # noqa: E402
from fastmri_recon.ops import nufft as nufft_ops  # noqa: E402
from fastmri_recon.ops import nufft_backends  # noqa: E402
from fastmri_recon.ops.nufft import NUFFTPlan, kernel_width, np_ndft, np_ndft_adjoint, nufft  # noqa: E402

try:
    import finufft
except ImportError:  # pragma: no cover - benchmark-only dependency
    finufft = None

try:
    from tfkbnufft import kbnufft_adjoint, kbnufft_forward
    from tfkbnufft.kbnufft import KbNufftModule
except ImportError:  # pragma: no cover - benchmark-only dependency
    KbNufftModule = None

CASES = {
    "2d-320": dict(shape=(320, 320), coils=4, traj=lambda: radial_trajectory(n_spokes=400, n_samples=640)),
    "2d-256": dict(shape=(256, 256), coils=1, traj=lambda: radial_trajectory(n_spokes=64, n_samples=512)),
    "3d-64": dict(shape=(64, 64, 64), coils=1, traj=lambda: kooshball_trajectory(64, acceleration=8)),
}
N_CHECK = 1000
STAGES = ("pad + FFT", "interpolation kernel", "spreading kernel", "iFFT + crop", "plan build")


def rel_err(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def complex_noise(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def plan_tensors(plan):
    """The tensors a `NUFFTPlan` of the "tensorflow" backend holds (grid indices, weights, sample order, blocks)."""
    interp = plan._engine.interp  # noqa: SLF001 - the benchmark reports the plan's memory
    return interp.columns, interp.weights, interp.order, interp.corners, interp.axis_weights


def plan_megabytes(plan):
    return sum(t.shape.num_elements() * t.dtype.size for t in plan_tensors(plan)) / 1e6


class Ours:
    """Our NUFFT with a precomputed plan (eager or tf.function), on the fly, or through another backend."""

    def __init__(self, traj, shape, eps, mode, backend="tensorflow"):
        self.mode = mode
        self.shape = shape
        self.eps = eps
        self.backend = backend
        self.traj = tf.constant(traj)
        start = time.perf_counter()
        self.plan = NUFFTPlan(self.traj, shape, eps=eps, backend=backend)
        self.plan_seconds = time.perf_counter() - start
        self.setup = None
        if mode == "eager":
            self.forward, self.adjoint = self.plan.forward, self.plan.adjoint
        elif mode == "function":
            self.forward, self.adjoint = tf.function(self.plan.forward), tf.function(self.plan.adjoint)
            if backend == "tensorflow":
                build = tf.function(lambda t: plan_tensors(NUFFTPlan(t, shape, eps=eps)))
                self.setup = lambda: [a.numpy() for a in build(self.traj)]
        else:
            self.forward = tf.function(lambda x: nufft(x, self.traj, eps=eps))
            self.adjoint = tf.function(lambda y: NUFFTPlan(self.traj, shape, eps=eps).adjoint(y))

    def megabytes(self):
        return plan_megabytes(self.plan) if self.backend == "tensorflow" else None

    def check(self, sub_traj, image, values):
        plan = NUFFTPlan(sub_traj, self.shape, eps=self.eps, backend=self.backend)
        return plan.forward(image).numpy(), plan.adjoint(values).numpy()


class Finufft:
    def __init__(self, traj, shape, eps, coils, n_threads):
        self.shape, self.eps, self.coils, self.n_threads = shape, eps, coils, n_threads
        self.scale = 1.0 / np.sqrt(np.prod(shape))
        self.fwd = self._plans(traj, 2, -1, coils)
        self.adj = self._plans(traj, 1, 1, coils)

    def _plans(self, traj, kind, isign, n_trans):
        plan = finufft.Plan(kind, self.shape, n_trans=n_trans, eps=self.eps, isign=isign, dtype="complex64",
                            nthreads=self.n_threads)
        plan.setpts(*[np.ascontiguousarray(t, np.float32) for t in traj])
        return plan

    def forward(self, image):
        return self.fwd.execute(image) * self.scale

    def adjoint(self, values):
        return self.adj.execute(values) * self.scale

    def setup(self, traj):
        """``setpts`` of a trajectory on the forward plan (what an on-the-fly call adds)."""
        self.fwd.setpts(*[np.ascontiguousarray(t, np.float32) for t in traj])

    def check(self, sub_traj, image, values):
        fwd = self._plans(sub_traj, 2, -1, 1)
        adj = self._plans(sub_traj, 1, 1, 1)
        return fwd.execute(image) * self.scale, adj.execute(values) * self.scale


class Tfkbnufft:
    def __init__(self, traj, shape):
        self.shape = shape
        module = KbNufftModule(im_size=shape, grid_size=tuple(2 * n for n in shape), norm="ortho")
        interpob = module._extract_nufft_interpob()  # the package's documented entry point
        self._forward = kbnufft_forward(interpob)
        self._adjoint = kbnufft_adjoint(interpob)
        self.traj = tf.constant(traj[None])

    def forward(self, image):
        return self._forward(image, self.traj)

    def adjoint(self, values):
        return self._adjoint(values, self.traj)

    def check(self, sub_traj, image, values):
        # its "ortho" scaling is that of the oversampled grid: 1 / sqrt(2^ndim prod N), not 1 / sqrt(prod N)
        scale = np.sqrt(2.0 ** len(self.shape))
        t = tf.constant(sub_traj[None])
        return (self._forward(image[None, None], t).numpy()[0, 0] * scale,
                self._adjoint(values[None, None], t).numpy()[0, 0] * scale)


def interleaved_medians(methods, repeats):
    """Median forward and adjoint times of every method, the runs of all methods interleaved.

    Interleaving makes the comparison fair on a machine whose load changes during the run. Sets
    ``method["first"]``, the time of the first forward and adjoint calls (tracing, compilation).
    A method's optional ``"adjoint"`` and ``"setup"`` (plan construction) are timed alike.

    Returns:
        dict ``id(method) -> (forward, adjoint, setup)`` median seconds (``setup`` None without one).
    """
    keys = ("forward", "adjoint", "setup")
    for method in methods:
        start = time.perf_counter()
        method["forward"]()
        if method.get("adjoint"):
            method["adjoint"]()
        method["first"] = time.perf_counter() - start
        for key in keys:  # warm-up (plans, caches, the setup's tracing)
            if method.get(key):
                method[key]()
    times = {id(m): {key: [] for key in keys} for m in methods}
    for _ in range(repeats):
        for method in methods:
            for key in keys:
                if method.get(key):
                    start = time.perf_counter()
                    method[key]()
                    times[id(method)][key].append(time.perf_counter() - start)
    return {id(m): tuple(statistics.median(times[id(m)][k]) if times[id(m)][k] else None for k in keys)
            for m in methods}


def run_case(name, eps_list, repeats, rng, threads):
    case = CASES[name]
    shape, coils = case["shape"], case["coils"]
    traj = case["traj"]()
    n_samples = traj.shape[1]
    image = complex_noise(rng, (1, coils, *shape))
    values = complex_noise(rng, (1, coils, n_samples))
    subset = np.sort(rng.choice(n_samples, N_CHECK, replace=False))
    sub_traj = traj[:, subset]
    sub_values = complex_noise(rng, (N_CHECK,))
    exact_fwd = np_ndft(image[0, 0], sub_traj)
    exact_adj = np_ndft_adjoint(sub_values, sub_traj, shape)
    x_tf, y_tf = tf.constant(image), tf.constant(values)
    img = image[0] if coils > 1 else image[0, 0]
    val = values[0] if coils > 1 else values[0, 0]
    rows = []
    for eps in eps_list:
        width = kernel_width(eps)
        methods = []
        if finufft is not None:
            for n_threads in threads:
                ref = Finufft(traj, shape, eps, coils, n_threads)
                methods.append(dict(method=f"finufft, plan, {n_threads} thread(s)", eps=eps, width="-",
                                    forward=lambda ref=ref: ref.forward(img), adjoint=lambda ref=ref: ref.adjoint(val),
                                    setup=lambda ref=ref: ref.setup(traj), megabytes=None,
                                    check=lambda ref=ref: ref.check(sub_traj, image[0, 0], sub_values), extra=""))
        variants = [("eager", "tensorflow", "ours, plan, eager"), ("function", "tensorflow", "ours, plan, tf.function"),
                    ("on_the_fly", "tensorflow", "ours, on the fly, tf.function")]
        if finufft is not None and nufft_backends.is_available("finufft"):
            variants.append(("function", "finufft", "ours, backend 'finufft', plan, tf.function"))
        for mode, backend, label in variants:
            ours = Ours(traj, shape, eps, mode, backend)
            methods.append(dict(method=label, eps=eps, width=width if backend == "tensorflow" else "-",
                                forward=lambda ours=ours: ours.forward(x_tf).numpy(),
                                adjoint=lambda ours=ours: ours.adjoint(y_tf).numpy(), setup=ours.setup,
                                megabytes=ours.megabytes() if mode != "on_the_fly" else None, mode=mode,
                                check=lambda ours=ours: ours.check(sub_traj, image[0, 0], sub_values),
                                extra=f"plan built in {ours.plan_seconds * 1e3:.0f} ms" if mode == "eager" else ""))
        if KbNufftModule is not None and eps == eps_list[0]:
            kb = Tfkbnufft(traj, shape)
            methods.append(dict(method="tfkbnufft 0.2.5, tf.function", eps="-", width=6,
                                forward=lambda: kb.forward(x_tf).numpy(), adjoint=lambda: kb.adjoint(y_tf).numpy(),
                                check=lambda: kb.check(sub_traj, image[0, 0], sub_values), extra=""))
        medians = interleaved_medians(methods, repeats)
        for method in methods:
            method["extra"] = "; ".join(filter(None, [method["extra"], on_the_fly_note(method, methods, medians)]))
        for method in methods:
            fwd, adj = method["check"]()
            t_fwd, t_adj, t_setup = medians[id(method)]
            note = "; ".join(filter(None, [f"first calls {method['first'] * 1e3:.0f} ms", method["extra"]]))
            rows.append(dict(case=name, eps=method["eps"], width=method["width"], method=method["method"], fwd=t_fwd,
                             adj=t_adj, setup=t_setup, megabytes=method.get("megabytes"),
                             err_fwd=rel_err(fwd, exact_fwd), err_adj=rel_err(adj, exact_adj), extra=note, ref_eps=eps))
            print(f"  {name} eps={eps} {method['method']}: fwd {t_fwd * 1e3:.1f} ms, adj {t_adj * 1e3:.1f} ms",
                  flush=True)
    return rows, n_samples


def stage_times(name, eps, repeats, rng):
    """Where our NUFFT's time goes: each stage of a call with a plan, alone, inside ``tf.function``.

    The stages (``ops.nufft``'s own functions, on the case's data): deapodisation, zero-padding and FFT
    (``pad + FFT``); the interpolation kernel (the forward's block gather); the spreading kernel (the
    adjoint's scatter); inverse FFT, crop and deapodisation (``iFFT + crop``); the plan's construction.
    The runs of all stages are interleaved; returns a dict ``stage -> median ms``.
    """
    case = CASES[name]
    shape, coils = case["shape"], case["coils"]
    traj = tf.constant(case["traj"]()[None])
    plan = NUFFTPlan(traj, shape, eps=eps)
    engine = plan._engine  # noqa: SLF001 - the benchmark times the stages of the plan's engine
    geom, interp = engine.geom, engine.interp
    image = tf.constant(complex_noise(rng, (1, coils, *shape)))
    n_grid_cols = 2 * coils
    grid = tf.constant(rng.standard_normal((geom.grid_size, n_grid_cols)).astype(np.float32))
    samples = tf.constant(rng.standard_normal((int(traj.shape[-1]), n_grid_cols)).astype(np.float32))
    spectrum = tf.constant(complex_noise(rng, (1, coils, *geom.layout_shape)))
    stages = {
        "pad + FFT": tf.function(lambda: nufft_ops._padded_fft(image * geom.forward_scale, geom)),  # noqa: SLF001
        "interpolation kernel": tf.function(lambda: interp.apply(grid)),
        "spreading kernel": tf.function(lambda: interp.apply_adjoint(samples)),
        "iFFT + crop": tf.function(lambda: nufft_ops._cropped_ifft(spectrum, geom) * geom.adjoint_scale),  # noqa: SLF001
        "plan build": tf.function(lambda: plan_tensors(NUFFTPlan(traj, shape, eps=eps))),
    }
    methods = [dict(forward=lambda f=f: tf.nest.map_structure(lambda t: t.numpy(), f()), label=label)
               for label, f in stages.items()]
    medians = interleaved_medians(methods, repeats)
    return {m["label"]: medians[id(m)][0] * 1e3 for m in methods}


def on_the_fly_note(method, methods, medians):
    """For the on-the-fly row: its ratios to a call with our plan and to the fastest finufft's setpts + execute."""
    if method.get("mode") != "on_the_fly":
        return ""
    with_plan = next(m for m in methods if m.get("mode") == "function" and m["method"].startswith("ours, plan"))
    fwd, adj, _ = medians[id(method)]
    plan_fwd, plan_adj, plan_setup = medians[id(with_plan)]
    note = f"on the fly / plan: fwd {fwd / plan_fwd:.2f}, adj {adj / plan_adj:.2f} (plan build {plan_setup * 1e3:.1f} ms)"
    refs = [medians[id(m)] for m in methods if m["method"].startswith("finufft")]
    if refs:
        ref_fwd = min(f + s for f, _, s in refs)
        ref_adj = min(a + s for _, a, s in refs)
        note += f"; / finufft incl. setpts: fwd {fwd / ref_fwd:.2f}, adj {adj / ref_adj:.2f}"
    return note


def table(rows):
    lines = [
        "| case | eps | W | method | forward ms | adjoint ms | setup ms | plan MB | fwd / finufft | adj / finufft "
        "| fwd rel. err | adj rel. err | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    reference = {}
    for r in rows:  # the ratios are against the faster finufft (over the thread counts) at the same eps
        if r["method"].startswith("finufft"):
            best = reference.setdefault((r["case"], r["ref_eps"]), {"fwd": np.inf, "adj": np.inf})
            best["fwd"], best["adj"] = min(best["fwd"], r["fwd"]), min(best["adj"], r["adj"])
    for r in rows:
        ref = reference.get((r["case"], r["ref_eps"]))
        ratio_f = f"{r['fwd'] / ref['fwd']:.2f}" if ref else "-"
        ratio_a = f"{r['adj'] / ref['adj']:.2f}" if ref else "-"
        setup = f"{r['setup'] * 1e3:.1f}" if r.get("setup") is not None else "-"
        megabytes = f"{r['megabytes']:.0f}" if r.get("megabytes") is not None else "-"
        lines.append(
            f"| {r['case']} | {r['eps']} | {r['width']} | {r['method']} | {r['fwd'] * 1e3:.1f} | {r['adj'] * 1e3:.1f} "
            f"| {setup} | {megabytes} | {ratio_f} | {ratio_a} | {r['err_fwd']:.1e} | {r['err_adj']:.1e} | {r['extra']} |"
        )
    return "\n".join(lines)


@click.command()
@click.option("--case", "cases", multiple=True, type=click.Choice(sorted(CASES)), help="Cases (default: all).")
@click.option("--eps", "eps_list", multiple=True, type=float, help="Requested accuracies (default 1e-4, 1e-5).")
@click.option("--repeats", default=10, show_default=True, help="Timed runs per measure (median reported).")
@click.option("--seed", default=0, show_default=True)
@click.option("--stages", is_flag=True, help="Also time each stage of our NUFFT alone (where the time goes).")
@click.option("--finufft-threads", "threads", multiple=True, type=int,
              help="finufft thread counts to time (default: 1 and all cores; ratios use the fastest).")
def main(cases, eps_list, repeats, seed, stages, threads):
    """Time our TensorFlow NUFFT against finufft (and tfkbnufft) and print a Markdown table."""
    cases = cases or tuple(CASES)
    eps_list = eps_list or (1e-4, 1e-5)
    threads = threads or tuple(sorted({1, os.cpu_count()}))
    rng = np.random.default_rng(seed)
    print(f"date {datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, "
          f"finufft {getattr(finufft, '__version__', 'not installed')}, "
          f"tfkbnufft {'0.2.5' if KbNufftModule is not None else 'not installed'}")
    rows = []
    for name in cases:
        case_rows, n_samples = run_case(name, eps_list, repeats, rng, threads)
        print(f"{name}: image {CASES[name]['shape']} x {CASES[name]['coils']} coil(s), {n_samples} samples")
        rows += case_rows
    print()
    print(table(rows))
    if stages:
        print()
        print("| case | eps | W | " + " | ".join(f"{label} ms" for label in STAGES) + " |")
        print("|---|---|---|" + "---|" * len(STAGES))
        for name in cases:
            for eps in eps_list:
                times = stage_times(name, eps, repeats, rng)
                print(f"| {name} | {eps:g} | {kernel_width(eps)} | " + " | ".join(f"{times[s]:.1f}" for s in STAGES) + " |",
                      flush=True)


if __name__ == "__main__":
    main()
