"""Benchmark of the classical baselines at fastMRI knee size: seconds per slice and error.

Simulates one multi-coil slice at the size of fastMRI's knee k-space (default 640 x 368, 15 coils):
an axial slice of the MNI template that the demo data uses (`fastmri_recon.data.demo.load_template`),
resized into the central half of the read-out (the read-out is oversampled 2x, as fastMRI's raw
data), with a smooth bias field and image phase, seen by birdcage coils (`birdcage_maps`) whose
magnitude and phase are perturbed by smooth random fields, plus complex Gaussian noise of standard
deviation ``mean |x| over the object / snr / sqrt(coils)`` per coil, as the demo data. The target
is the root-sum-of-squares (RSS) image of the noisy fully-sampled k-space, as fastMRI's.

Each mask (``--mask`` kind and ``--acceleration``, fastMRI centre fractions 0.08 at x4 and 0.04 at
x8, `fastmri_recon.data.masks.MaskSampler` seeded by a file name) is reconstructed by zero-filling,
SENSE, GRAPPA (ours, and pygrappa's ``grappa`` with its defaults when pygrappa is importable: it is
a benchmark-only dependency) and CS-wavelet, one slice per call of ``reconstruct_slice`` (the
baselines' NumPy entry point), with their default configurations; SENSE and CS-wavelet get the ACS
sensitivity maps that `fastmri-recon evaluate` gives them (`acs_sensitivity_maps`). Timing: the
median over ``--repeats`` rounds after one warm-up round, every method once per round (interleaved,
so that a change of the machine's load hits them alike), wall time and the process's CPU time.
Error: PSNR and NMSE of the central 320 x 320 crop against the RSS target (fastMRI's crop; smaller
slices: the central half of the read-out), and for
the GRAPPAs the relative error on the missing columns of k-space against the noisy fully-sampled
k-space and against the noiseless one.

    python experiments/benchmarks/baselines.py [--height 640 --width 368 --coils 15 --repeats 3
        --mask equispaced_fraction --mask random --acceleration 4 --acceleration 8]

Prints the load average before and after and a Markdown table; the run is recorded in BENCHMARKS.md.
"""

import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from fastmri_recon.baselines.cs_wavelet import CSWavelet  # noqa: E402
from fastmri_recon.baselines.grappa import Grappa  # noqa: E402
from fastmri_recon.baselines.sense import Sense  # noqa: E402
from fastmri_recon.data.demo import BRAIN_CENTRE_VOXEL, birdcage_maps, load_template  # noqa: E402
from fastmri_recon.data.masks import MaskSampler, acs_bounds, apply_mask, default_center_fraction  # noqa: E402
from fastmri_recon.data.sensitivity import acs_sensitivity_maps  # noqa: E402
from fastmri_recon.evaluate.metrics import nmse, psnr  # noqa: E402
from fastmri_recon.ops.crop import center_crop  # noqa: E402
from fastmri_recon.ops.fourier import np_fftc, np_ifftc  # noqa: E402

try:
    import pygrappa
except ImportError:  # pragma: no cover - benchmark-only dependency
    pygrappa = None

CROP = (320, 320)
"""fastMRI's target crop; smaller slices are cropped to the object's half of the read-out."""
KSPACE_SCALE = 1e-4  # k-space on the order of fastMRI's, as the demo data


def smooth_field(rng, shape, amplitude, grid=(3, 3)):
    """A random smooth real field ``shape``: a coarse Gaussian grid upsampled (cubic), times ``amplitude``."""
    zoom = [s / g for s, g in zip(shape, grid)]
    return amplitude * ndimage.zoom(rng.standard_normal(grid), zoom, order=3, mode="nearest")[: shape[0], : shape[1]]


def simulate_slice(height, width, coils, snr, seed):
    """One knee-size multi-coil slice.

    Returns:
        ``(kspace, clean, target)``: noisy and noiseless complex64 k-space ``(coils, height, width)``
        and the float64 RSS image ``(height, width)`` of the noisy one.
    """
    rng = np.random.default_rng(seed)
    axial = load_template()[:, :, int(BRAIN_CENTRE_VOXEL[2])].T[::-1]  # rows anterior -> posterior
    field = (height // 2, width)  # the object's half of the oversampled read-out
    magnitude = ndimage.zoom(axial, 0.95 * min(field[0] / axial.shape[0], field[1] / axial.shape[1]), order=1)
    image = np.zeros((height, width), complex)
    top, left = (height - magnitude.shape[0]) // 2, (width - magnitude.shape[1]) // 2
    image[top : top + magnitude.shape[0], left : left + magnitude.shape[1]] = magnitude
    image *= np.exp(smooth_field(rng, image.shape, 0.15) + 1j * smooth_field(rng, image.shape, 0.8))
    maps = birdcage_maps(coils, (height, width)) * np.exp(
        np.stack([smooth_field(rng, image.shape, 0.2) + 1j * smooth_field(rng, image.shape, 0.3) for _ in range(coils)])
    )
    clean = np_fftc(maps * image[None])
    sigma = np.abs(image[np.abs(image) > 0.1]).mean() / snr / np.sqrt(coils)
    noise = sigma / np.sqrt(2) * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
    kspace = (KSPACE_SCALE * (clean + noise)).astype(np.complex64)
    target = np.sqrt(np.sum(np.abs(np_ifftc(kspace.astype(np.complex128))) ** 2, axis=0))
    return kspace, (KSPACE_SCALE * clean).astype(np.complex64), target


def missing_error(filled, reference, mask):
    """Relative l2 error of ``filled`` on the columns that ``mask`` leaves out."""
    missing = mask == 0
    return float(np.linalg.norm(filled[:, :, missing] - reference[:, :, missing]) / np.linalg.norm(reference[:, :, missing]))


def rss_image(kspace):
    return np.sqrt(np.sum(np.abs(np_ifftc(kspace)) ** 2, axis=0))


def pygrappa_kspace(kspace, mask):
    start, stop = acs_bounds(mask)
    return pygrappa.grappa(kspace, kspace[:, :, start:stop], coil_axis=0)


def methods(kspace, mask, smaps):
    """name -> reconstruct: () -> ``(image (H, W), filled k-space (coils, H, W) or None)``."""
    grappa = Grappa()

    def ours():
        filled = grappa.interpolate(kspace, mask)
        return rss_image(filled), filled

    def theirs():
        filled = pygrappa_kspace(kspace, mask)
        return rss_image(filled), filled

    table = {
        "zero-filled": lambda: (rss_image(kspace), None),
        "sense": lambda: (Sense().reconstruct_slice(kspace, mask, smaps), None),
        "grappa (ours)": ours,
        "cs-wavelet": lambda: (CSWavelet().reconstruct_slice(kspace, mask, smaps), None),
    }
    if pygrappa is not None:
        table["grappa (pygrappa 0.26.3, defaults)"] = theirs
    return table


def interleaved(table, repeats):
    """Median wall and CPU seconds of every method over ``repeats`` rounds after a warm-up round, and its outputs."""
    outputs = {name: fn() for name, fn in table.items()}
    wall = {name: [] for name in table}
    cpu = {name: [] for name in table}
    for _ in range(repeats):
        for name, fn in table.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            outputs[name] = fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]), wall[name]) for name in table}, outputs


def run_mask(kind, acceleration, kspace, clean, target, repeats):
    width = kspace.shape[-1]
    mask, _ = MaskSampler(kind, [default_center_fraction(acceleration)], [acceleration])(width, seed="knee_size.h5")
    undersampled = apply_mask(kspace, mask)
    smaps = acs_sensitivity_maps(undersampled[None], mask[None]).numpy()[0]
    table = methods(undersampled, mask, smaps)
    times, outputs = interleaved(table, repeats)
    crop = (min(CROP[0], target.shape[0] // 2), min(CROP[1], target.shape[1]))
    gt = center_crop(target, crop)[None]
    rows = []
    for name in table:
        image, filled = outputs[name]
        pred = center_crop(np.abs(image), crop)[None]
        row = dict(mask=f"{kind} x{acceleration} (cf {default_center_fraction(acceleration)}, ACS {np.diff(acs_bounds(mask))[0]})",
                   method=name, wall=times[name][0], cpu=times[name][1], runs=times[name][2],
                   psnr=psnr(gt, pred), nmse=nmse(gt, pred), k_noisy="-", k_clean="-")
        if filled is not None:
            row.update(k_noisy=f"{missing_error(filled, kspace, mask):.3f}", k_clean=f"{missing_error(filled, clean, mask):.3f}")
        rows.append(row)
        print(f"  {row['mask']} {name}: {row['wall']:.2f} s wall, {row['cpu']:.2f} s CPU, PSNR {row['psnr']:.2f}", flush=True)
    return rows


def markdown(rows):
    lines = [
        "| mask | method | s / slice (wall) | CPU s / slice | wall s of each run | PSNR | NMSE | missing-line error (noisy k) | (noiseless k) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r["runs"])
        lines.append(f"| {r['mask']} | {r['method']} | {r['wall']:.2f} | {r['cpu']:.2f} | {runs} | {r['psnr']:.2f} | {r['nmse']:.5f} | {r['k_noisy']} | {r['k_clean']} |")
    return "\n".join(lines)


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@click.command()
@click.option("--height", default=640, show_default=True, help="Read-out size (k-space rows, oversampled 2x).")
@click.option("--width", default=368, show_default=True, help="Phase-encoding size (k-space columns).")
@click.option("--coils", default=15, show_default=True)
@click.option("--snr", default=40.0, show_default=True, help="Mean object magnitude over the noise std (times sqrt(coils) per coil).")
@click.option("--mask", "kinds", multiple=True, type=click.Choice(["random", "equispaced", "equispaced_fraction"]),
              help="Mask types (default: equispaced_fraction and random).")
@click.option("--acceleration", "accelerations", multiple=True, type=click.Choice(["4", "8"]), help="Default: 4 and 8.")
@click.option("--repeats", default=3, show_default=True, help="Timed rounds (median reported), after one warm-up round.")
@click.option("--seed", default=0, show_default=True)
def main(height, width, coils, snr, kinds, accelerations, repeats, seed):
    """Time and score zero-filled, SENSE, GRAPPA (ours, pygrappa) and CS-wavelet on one knee-size slice."""
    kinds = kinds or ("equispaced_fraction", "random")
    accelerations = [int(a) for a in (accelerations or ("4", "8"))]
    print(f"date {datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU cores, NumPy {np.__version__}, pygrappa "
          f"{'installed' if pygrappa is not None else 'not installed'}; load before: {load()}", flush=True)
    kspace, clean, target = simulate_slice(height, width, coils, snr, seed)
    print(f"slice: k-space {height} x {width}, {coils} coils, snr {snr:g}", flush=True)
    rows = []
    for kind in kinds:
        for acceleration in accelerations:
            rows += run_mask(kind, acceleration, kspace, clean, target, repeats)
    print(f"load after: {load()}")
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
