"""Off-resonant spiral data: NC-PDNet and the density-compensated adjoint with and without the B0-aware encoding.

The script simulates single-coil spiral acquisitions with off-resonance (4 interleaves sampled at the
Nyquist rate, 16 ms read-outs) from the demo images (`data.demo.simulate_subject`: the magnitude of
the noisy single-coil image is the target) and the demo data's field maps (``b0_map``,
`data.field_maps.simulate_field_map` of the noiseless magnitude: a smooth second-order polynomial of
up to 40 Hz plus a 120 Hz Gaussian bump at a random air-tissue boundary point, one map per slice), with
the exact sum of `ops.off_resonance.np_off_resonance_sum` (no NUFFT, no time segmentation: the
reconstructions do not see their own model). It then reconstructs the validation slices by

- the density-compensated adjoint ``A^H D y`` without and with the field map (the B0-aware one is
  the time-segmented conjugate-phase reconstruction);
- NC-PDNet trained without the field map (plain NUFFT encoding) and NC-PDNet trained with it (the
  time-segmented encoding, `ops.off_resonance.OffResonanceEncoding`, ``b0_segments`` from
  `segments_for_accuracy` for the data's largest time-bandwidth product at 1e-3): same seed, same
  initial weights, same slices in the same order, same steps;
- as a reference, the adjoint of the same acquisition simulated without off-resonance;
- the two B0-aware methods given a wrong field map (`MAP_ERRORS`: scaled, noisy, blurred, shifted),
  the data staying those of the true map: how much of their gain survives a measured map's errors;

and writes ``results.md`` / ``results.json`` (PSNR / SSIM / NMSE per validation volume, mean (std),
`evaluate.metrics.evaluate_volume`) and ``reconstructions.png`` (one slice) into the output folder
(by default this folder).

Budgets: ``tiny`` (seconds: a check that the script runs) and ``default`` (64 x 64 demo images,
6 training / 2 validation subjects of 8 slices; NC-PDNet with 4 iterations, 3 buffers, 16 filters).

    python experiments/off_resonance/run.py [--budget tiny|default] [--output-dir DIR] [--quiet]
"""

import dataclasses
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402
from scipy import ndimage  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fastmri_recon.cli import run_command  # noqa: E402
from fastmri_recon.data.demo import INTENSITY_SCALE, DemoConfig, load_template, simulate_subject  # noqa: E402
from fastmri_recon.data.density import pipe_menon_density  # noqa: E402
from fastmri_recon.data.field_maps import spiral_readout_times  # noqa: E402
from fastmri_recon.data.trajectories import spiral_trajectory  # noqa: E402
from fastmri_recon.evaluate.figures import comparison_figure  # noqa: E402
from fastmri_recon.evaluate.metrics import MetricsSummary, evaluate_volume  # noqa: E402
from fastmri_recon.evaluate.tables import markdown_rows  # noqa: E402
from fastmri_recon.files import write_text  # noqa: E402
from fastmri_recon.models.registry import build  # noqa: E402
from fastmri_recon.ops.crop import center_crop  # noqa: E402
from fastmri_recon.ops.fourier import np_ifftc  # noqa: E402
from fastmri_recon.ops.nufft import np_ndft  # noqa: E402
from fastmri_recon.ops.off_resonance import band_error, np_off_resonance_sum, segments_for_accuracy  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0
N_SHOTS = 4
ACCELERATION = 1  # Nyquist-sampled: off-resonance, not aliasing, is the artefact under study
DWELL_TIME = 10e-6  # s: 1613 samples per interleaf at 64 x 64, a 16.1 ms read-out
ECHO_TIME = 1e-3  # s, time of each interleaf's first sample
TOL = 1e-3  # accuracy of the time-segmentation fit
MAP_NOISE_SEED = 1
MAP_ERRORS = {
    "map x 0.8": lambda field, rng: 0.8 * field,  # a mis-scaled map (e.g. a wrong echo-time difference)
    "map + 10 Hz noise": lambda field, rng: field + rng.normal(0.0, 10.0, field.shape),  # white noise per pixel
    "map blurred (2 px)": lambda field, rng: ndimage.gaussian_filter(field, (0, 2, 2)),  # a low-resolution map
    "map shifted 2 px": lambda field, rng: np.roll(field, 2, axis=-1),  # misregistered along the columns
}
"""Errors of a measured field map: each gives the B0-aware methods a wrong map of the same data."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Data sizes and training budget of a run."""

    image_size: int
    train_subjects: int
    val_subjects: int
    slices: int
    epochs: int
    batch: int
    network: dict
    learning_rate: float = 1e-3


BUDGETS = {
    "tiny": Budget(32, 1, 1, 2, 1, 2, {"n_iter": 1, "n_primal": 2, "n_filters": 4}),
    "default": Budget(64, 6, 2, 8, 10, 2, {"n_iter": 4, "n_primal": 3, "n_filters": 16}),
}


@dataclasses.dataclass
class Split:
    """Simulated slices of one split: arrays over slices, and the volume (subject) of each slice."""

    kspace: np.ndarray  # complex64 (slices, M), off-resonant
    on_resonance: np.ndarray  # complex64 (slices, M), the same acquisition without off-resonance
    field: np.ndarray  # float32 (slices, n, n), Hz
    target: np.ndarray  # float32 (slices, n, n)
    volume: np.ndarray  # int (slices,)


@dataclasses.dataclass(frozen=True)
class Acquisition:
    """The spiral shared by every slice: trajectory (2, M), density (M,), read-out times (M,)."""

    trajectory: np.ndarray
    density: np.ndarray
    times: np.ndarray


def spiral_acquisition(image_size):
    """The `Acquisition` of the experiment's spiral (N_SHOTS interleaves, acceleration ACCELERATION)."""
    trajectory = spiral_trajectory(image_size, n_shots=N_SHOTS, acceleration=ACCELERATION)
    density = pipe_menon_density(trajectory, (image_size, image_size)).numpy()
    times = spiral_readout_times(trajectory, N_SHOTS, DWELL_TIME, ECHO_TIME)
    return Acquisition(trajectory, density, times)


def simulate_split(template, demo, subjects, acquisition):
    """Off-resonant spiral samples (exact sum), field maps and targets of the slices of ``subjects``."""
    size = demo.image_size
    fields = {"kspace": [], "on_resonance": [], "field": [], "target": [], "volume": []}
    for subject in subjects:
        data = simulate_subject(template, demo, subject)
        images = center_crop(np_ifftc(data["singlecoil"]), (size, size)) / INTENSITY_SCALE
        for image, field in zip(images, data["b0_map"]):
            fields["kspace"].append(np_off_resonance_sum(image, acquisition.trajectory, field, acquisition.times))
            fields["on_resonance"].append(np_ndft(image, acquisition.trajectory))
            fields["field"].append(field)
            fields["target"].append(np.abs(image))
            fields["volume"].append(subject)
    kinds = {"kspace": np.complex64, "on_resonance": np.complex64, "field": np.float32, "target": np.float32,
             "volume": np.int64}
    return Split(**{key: np.asarray(values).astype(kinds[key]) for key, values in fields.items()})


def model_inputs(split, acquisition, index, with_b0, on_resonance=False):
    """The non-Cartesian model inputs of the slices ``index``, with the field map and read-out times when ``with_b0``."""
    count = len(index)
    kspace = (split.on_resonance if on_resonance else split.kspace)[index]
    inputs = (kspace, np.stack([acquisition.trajectory] * count), np.stack([acquisition.density] * count))
    if with_b0:
        inputs += (split.field[index], np.stack([acquisition.times] * count))
    return tuple(tf.constant(x) for x in inputs)


def train_ncpdnet(split, acquisition, budget, with_b0, b0_segments, log):
    """NC-PDNet trained with an L1 loss on the magnitude, Adam; the same seed and slice order with and without B0."""
    keras.utils.set_random_seed(SEED)
    config = {**budget.network, "phase_normalization": True}
    if with_b0:
        config["b0_segments"] = b0_segments
    size = budget.image_size
    model = build("ncpdnet", image_shape=(size, size), **config)
    optimizer = keras.optimizers.Adam(budget.learning_rate)

    @tf.function
    def step(inputs, target):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(inputs) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    order_rng = np.random.default_rng(SEED)
    start = time.time()
    for epoch in range(budget.epochs):
        order = order_rng.permutation(len(split.target))
        losses = [
            float(step(model_inputs(split, acquisition, batch, with_b0), tf.constant(split.target[batch])))
            for batch in np.array_split(order, max(1, len(order) // budget.batch))
        ]
        log(f"  epoch {epoch + 1}/{budget.epochs}: L1 {np.mean(losses):.4f} ({time.time() - start:.0f} s)")
    return model


def reconstruct(model, split, acquisition, with_b0, batch, on_resonance=False):
    """float32 ``(slices, n, n)`` reconstructions of every slice, and the seconds per slice (after a warm-up call)."""
    batches = np.array_split(np.arange(len(split.target)), max(1, len(split.target) // batch))
    model(model_inputs(split, acquisition, batches[0], with_b0, on_resonance))  # XLA compiles the NUFFT kernels
    start = time.time()
    images = [model(model_inputs(split, acquisition, index, with_b0, on_resonance)).numpy() for index in batches]
    return np.concatenate(images), (time.time() - start) / len(split.target)


def summarise(split, recon):
    """`MetricsSummary` over the split's volumes (fastMRI's metrics per volume)."""
    summary = MetricsSummary()
    for volume in np.unique(split.volume):
        slices = split.volume == volume
        summary.add(f"demo_{volume:03d}", evaluate_volume(split.target[slices], recon[slices]))
    return summary


def result_row(name, summary, seconds):
    """A table row: the method, its volumes, metrics mean (std), seconds per slice and the per-volume metrics."""
    return {"method": name, "volumes": str(len(summary)), **summary.formatted(4), "s / slice": f"{seconds:.3f}",
            "per volume": summary.per_volume}


def run_experiment(out_dir, budget_name="default", log=print):
    """Simulate, train, reconstruct and tabulate; write the results under ``out_dir``; return the table rows."""
    budget = BUDGETS[budget_name]
    start = time.time()
    size = budget.image_size
    demo = DemoConfig(train_subjects=budget.train_subjects, val_subjects=budget.val_subjects, test_subjects=0,
                      slices=budget.slices, image_size=size, coils=2, seed=SEED)
    acquisition = spiral_acquisition(size)
    template = load_template()
    train_ids = range(budget.train_subjects)
    val_ids = range(budget.train_subjects, budget.train_subjects + budget.val_subjects)  # the demo's split order
    train, val = (simulate_split(template, demo, ids, acquisition) for ids in (train_ids, val_ids))
    readout = float(np.ptp(acquisition.times))
    time_bandwidth = max(float(np.ptp(f)) for f in np.concatenate([train.field, val.field])) * readout
    segments = segments_for_accuracy(time_bandwidth, TOL)
    log(f"simulated {len(train.target)} + {len(val.target)} slices, {acquisition.trajectory.shape[1]} samples, "
        f"read-out {readout * 1e3:.2f} ms, W T <= {time_bandwidth:.2f}: {segments} segments "
        f"(fit error {band_error(time_bandwidth, segments):.1e}) ({time.time() - start:.0f} s)")

    adjoint = build("nc-adjoint", image_shape=(size, size))
    adjoint_b0 = build("nc-adjoint", image_shape=(size, size), b0_segments=segments)
    methods = [
        ("nc-adjoint, no off-resonance (reference)", adjoint, False, True),
        ("nc-adjoint", adjoint, False, False),
        ("nc-adjoint, B0-aware", adjoint_b0, True, False),
    ]
    for with_b0 in (False, True):
        log(f"training NC-PDNet {'with' if with_b0 else 'without'} the field map")
        model = train_ncpdnet(train, acquisition, budget, with_b0, segments, log)
        methods.append(("ncpdnet, B0-aware" if with_b0 else "ncpdnet", model, with_b0, False))

    rows, recons = [], {}
    for name, model, with_b0, on_resonance in methods:
        recon, seconds = reconstruct(model, val, acquisition, with_b0, budget.batch, on_resonance)
        recons[name] = recon
        rows.append(result_row(name, summarise(val, recon), seconds))
    aware = [(name, model) for name, model, with_b0, _ in methods if with_b0]
    for error, perturb in MAP_ERRORS.items():
        wrong = dataclasses.replace(val, field=perturb(val.field, np.random.default_rng(MAP_NOISE_SEED)).astype(np.float32))
        for name, model in aware:
            recon, seconds = reconstruct(model, wrong, acquisition, True, budget.batch)
            rows.append(result_row(f"{name}, {error}", summarise(val, recon), seconds))
    write_outputs(out_dir, budget_name, rows, val, recons, {
        "segments": segments, "time_bandwidth": time_bandwidth, "fit_error": band_error(time_bandwidth, segments),
        "readout_s": readout, "samples": int(acquisition.trajectory.shape[1]), "wall_s": time.time() - start,
    })
    return rows


def write_outputs(out_dir, budget_name, rows, val, recons, facts):
    """``results.md`` / ``results.json`` and ``reconstructions.png`` (the middle slice of the first validation volume)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_rows([{k: v for k, v in row.items() if k != "per volume"} for row in rows])
    header = (
        f"# Off-resonant spiral data ({budget_name} budget)\n\n"
        f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs, {facts['wall_s'] / 60:.1f} min; "
        f"{facts['samples']} samples per slice, read-out {facts['readout_s'] * 1e3:.2f} ms, "
        f"W T <= {facts['time_bandwidth']:.2f} cycles: {facts['segments']} segments "
        f"(largest fit error {facts['fit_error']:.1e}).\n\n"
    )
    write_text(out_dir / "results.md", header + table + "\n")
    write_text(out_dir / "results.json", json.dumps({"budget": budget_name, **facts, "rows": rows}, indent=2) + "\n")
    first = np.flatnonzero(val.volume == val.volume[0])
    index = first[len(first) // 2]
    comparison_figure(
        out_dir / "reconstructions.png",
        val.target[index],
        {name: recon[index] for name, recon in recons.items()},
        title=f"validation slice {index}, field map {val.field[index].min():.0f} to {val.field[index].max():.0f} Hz",
    )
    return table


@click.command()
@click.option("--budget", type=click.Choice(list(BUDGETS)), default="default", show_default=True)
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=HERE, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress messages.")
def off_resonance(budget, output_dir, quiet):
    """Train NC-PDNet with and without the B0-aware encoding on off-resonant spiral demo data and tabulate."""
    rows = run_experiment(output_dir, budget, log=(lambda message: None) if quiet else click.echo)
    click.echo(markdown_rows([{k: v for k, v in row.items() if k != "per volume"} for row in rows]))
    click.echo(f"results written to {output_dir}")


def main(argv=None):
    """Run the command; bad input gives one line on stderr and exit status 2."""
    run_command(off_resonance, argv, "run.py")


if __name__ == "__main__":
    main()
