"""Inference of the papers' published networks at the real fastMRI size on the CPU: time and peak memory per slice.

For each published Cartesian network of the weights manifest (``format: keras2``, fastMRI data), this
script runs the public command ``fastmri-recon reconstruct --model NAME IN OUT --batch-size 1`` in a
fresh process, on test files of the real size written here:

- single-coil (table (a) networks): k-space 640 x 368, random mask at acceleration 4, 320 x 320 output;
- multi-coil (XPDNet-brain-af4): 15 coils, k-space 640 x 320, equispaced-fraction mask at acceleration
  4, ACS sensitivity maps, 320 x 320 output.

The Hub is not reachable from the machines this was written on, so the original files are replaced by
files of the same Keras-2 layout holding random weights (written here from the package's model and
its `models.legacy.layouts` order) in ``$FASTMRI_RECON_WEIGHTS/NAME/model_weights.h5``; time and memory
do not depend on the weights' values. Each network first runs once untimed (conversion to the Keras 3
cache, as a user's first call). Then, per round, volumes of 1 and of ``--slices`` slices are
reconstructed; the time per slice is the difference of the two medians divided by the extra slices
(process start, TensorFlow import, model building and tracing cancel out), the fixed cost is the
1-slice median, and the peak memory is the largest peak resident set size of the runs (each command's own
``ru_maxrss``, MiB, read by a wrapper process whose only child it is). NC-PDNet is measured by a Python call (``reconstruct`` takes Cartesian models
only): the model on a 640 x 400 grid and a golden-angle radial acquisition at acceleration 4 (252 spokes of 1280
samples), in a fresh process, its time per call measured the same way.

    OMP_WAIT_POLICY=PASSIVE python experiments/benchmarks/published_inference.py --repeats 3 --slices 3
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SINGLECOIL = ("unet-fastmri", "kiki-net-fastmri", "cascade-net-fastmri", "pdnet-fastmri")
MULTICOIL = ("xpdnet-brain-af4",)
NONCARTESIAN = ("ncpdnet-singlecoil-radial",)


def write_random_original(entry, path):
    """A Keras-2 weights-only file of the entry's network (its layout order) with random float32 values."""
    import h5py

    from fastmri_recon.hub.load import build_model
    from fastmri_recon.models.legacy.layouts import original_layout
    from fastmri_recon.models.weights import input_shapes

    model = build_model(entry["architecture"], entry["config"], entry["name"])
    model.build(input_shapes(model, entry["acquisition"]["coils"] == "multicoil"))
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        groups = original_layout(model)
        names = [f"layer_{i}" for i in range(len(groups))]
        handle.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name, variables in zip(names, groups):
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/w{j}:0".encode() for j in range(len(variables))])
            for j, variable in enumerate(variables):
                group.create_dataset(f"{name}/w{j}:0", data=0.02 * rng.standard_normal(variable.shape, dtype=np.float32))


def write_test_files(folder, multicoil, slices):
    """A fastMRI test file of ``slices`` slices at the real size (undersampled k-space and its mask)."""
    from fastmri_recon.data.h5 import Header, Volume, write_volume
    from fastmri_recon.data.masks import MaskSampler

    coils, width = (15, 320) if multicoil else (None, 368)
    shape = (slices, coils, 640, width) if multicoil else (slices, 640, width)
    rng = np.random.default_rng(slices)
    kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64) * 1e-5
    sampler = MaskSampler("equispaced_fraction" if multicoil else "random", [0.08], [4])
    mask, _ = sampler(width, seed=slices)
    mask = np.asarray(mask, np.float32)
    header = Header((640, width, 1), (320, 320, 1), width // 2, width - 1)
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(Volume(folder / f"test_{slices:02d}.h5", kspace * mask, header, mask=mask, attrs={"acquisition": "CORPD_FBK"}))


PEAK_WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)
"""Runs a command as its only child and prints the child's own peak RSS (its RUSAGE_CHILDREN maximum)."""


def timed_process(argv, env, what):
    """Run ``argv`` in a fresh wrapper; return its wall time (s), its own peak RSS (MiB) and its stdout."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise click.ClickException(f"{what} failed: {done.stderr.strip()[-500:]}")
    peak = next(line for line in reversed(done.stderr.splitlines()) if line.startswith("PEAK_KIB"))
    return seconds, int(peak.split()[1]) / 1024, done.stdout


def run_reconstruct(name, input_dir, output_dir, env):
    """Wall time (s) and peak RSS (MiB) of one ``reconstruct`` process."""
    exe = Path(sys.executable).with_name("fastmri-recon")
    argv = [str(exe), "reconstruct", "--model", name, str(input_dir), str(output_dir), "--batch-size", "1", "--quiet"]
    seconds, peak, _ = timed_process(argv, env, f"{name}: reconstruct")
    return seconds, peak


NC_WORKER = """
import sys, numpy as np
from fastmri_recon.hub.load import load_pretrained
from fastmri_recon.data.trajectories import radial_trajectory
from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.ops.encoding import NonCartesianEncoding
name, slices = sys.argv[1], int(sys.argv[2])
model = load_pretrained(name).model
traj = radial_trajectory(640, acceleration=4)[None]
density = pipe_menon_density(traj[0], (640, 400)).numpy()[None]
rng = np.random.default_rng(0)
image = (rng.standard_normal((1, 640, 400)) + 1j * rng.standard_normal((1, 640, 400))).astype(np.complex64)
kspace = NonCartesianEncoding(traj, (640, 400)).forward(image).numpy()
for _ in range(slices):
    model((kspace, traj, density))
"""


def run_noncartesian(name, slices, env):
    """Wall time (s) and peak RSS (MiB) of a process calling the model ``slices`` times."""
    seconds, peak, _ = timed_process([sys.executable, "-c", NC_WORKER, name, str(slices)], env, name)
    return seconds, peak


@click.command()
@click.option("--repeats", default=3, show_default=True, help="Runs of each volume size per network.")
@click.option("--slices", default=3, show_default=True, help="Slices of the larger volume.")
@click.option("--network", "networks", multiple=True, help="Only these manifest names (repeatable).")
def main(repeats, slices, networks):
    from fastmri_recon.hub.manifest import load_manifest

    book = load_manifest(ROOT / "weights_manifest.json")
    names = networks or SINGLECOIL + MULTICOIL + NONCARTESIAN
    work = Path(tempfile.mkdtemp(prefix="published-inference-"))
    env = {**os.environ, "FASTMRI_RECON_WEIGHTS": str(work / "weights"), "FASTMRI_RECON_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    for multicoil in (False, True):
        for n in (1, slices):
            write_test_files(work / f"{'multi' if multicoil else 'single'}_{n}", multicoil, n)
    rows = []
    for name in names:
        entry = book.get(name)
        write_random_original(entry, work / "weights" / name / entry["file"])
        multicoil = entry["acquisition"]["coils"] == "multicoil"
        kind = "multi" if multicoil else "single"
        if name in NONCARTESIAN:
            run_noncartesian(name, 1, env)  # conversion
            small = [run_noncartesian(name, 1, env) for _ in range(repeats)]
            large = [run_noncartesian(name, slices, env) for _ in range(repeats)]
        else:
            run_reconstruct(name, work / f"{kind}_1", work / "out", env)  # conversion
            small = [run_reconstruct(name, work / f"{kind}_1", work / "out", env) for _ in range(repeats)]
            large = [run_reconstruct(name, work / f"{kind}_{slices}", work / "out", env) for _ in range(repeats)]
        one = statistics.median(t for t, _ in small)
        per_slice = (statistics.median(t for t, _ in large) - one) / (slices - 1)
        peak = max(m for _, m in small + large)
        size = "640 x 400 grid, radial x4 (252 spokes x 1280)" if name in NONCARTESIAN else ("15 x 640 x 320" if multicoil else "640 x 368")
        rows.append(f"| {name} | {entry['architecture']} | {size} | {per_slice:.2f} | {one:.1f} | {peak:,.0f} |")
        click.echo(rows[-1], err=True)
    click.echo("| network | architecture | k-space | s / slice | 1-slice command s | peak RSS MiB |")
    click.echo("|---|---|---|---|---|---|")
    click.echo("\n".join(rows))


if __name__ == "__main__":
    main()
