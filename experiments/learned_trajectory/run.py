"""Fixed radial / spiral trajectories against learned ones (NC-PDNet through the NUFFT), on the demo data.

Usage:
    python experiments/learned_trajectory/run.py [--output-dir DIR] [--steps N] [--quiet]

Every method is a `models.learned_trajectory.LearnedTrajectoryModel`: the demo images are sampled on the method's
trajectory by the NUFFT, density-compensated by Pipe-Menon and reconstructed by the same small NC-PDNet (same seed,
same batches, same optimiser). The fixed methods keep their initial trajectory (the textbook radial / spiral
projected onto the gradient limits: the spiral's start is too fast for 150 T/m/s); the learned ones train it with
the network, under the limits (40 mT/m, 150 T/m/s, 10 us raster, 220 mm field of view). Written to the output
folder: ``results.md`` / ``results.json`` (PSNR / SSIM per volume on the validation split, largest constraint
violations of the trajectory used), ``trajectories_radial.png`` / ``trajectories_spiral.png`` (initial and learned
trajectories and their gradient / slew-rate waveforms), and the learned trajectories as ``.npy``.
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.data.demo import DemoConfig, build_demo_dataset
from fastmri_recon.data.h5 import list_volumes, read_volume
from fastmri_recon.evaluate.metrics import evaluate_volume
from fastmri_recon.files import write_text
from fastmri_recon.models.learned_trajectory import (
    LearnedTrajectory,
    LearnedTrajectoryModel,
    trajectory_figure,
    trajectory_report,
)
from fastmri_recon.models.ncpdnet import NCPDNet
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_ifftc

DEMO = DemoConfig(train_subjects=4, val_subjects=2, test_subjects=1, slices=6, image_size=64, seed=0)
SCALE = 1e6  # the pipelines' scale factor of samples and targets
ACCELERATION = 4
READOUT = 128  # samples per shot, both kinds (1.28 ms at 10 us)
SPIRAL_SHOTS = 16
NETWORK = {"n_iter": 4, "n_primal": 3, "n_filters": 16}
LEARNING_RATE = 2e-3
PARAMETER_SCALE = 8.0  # the trajectory moves by about 1.6e-2 rad per Adam step
BATCH = 2
SEED = 0
METHODS = (("radial", False), ("radial", True), ("spiral", False), ("spiral", True))


def load_split(directory):
    """Images on the 64 x 64 grid (complex64, scaled) and targets of every volume of a split: two lists."""
    images, targets = [], []
    for path in list_volumes(directory):
        volume = read_volume(path)
        image = center_crop(np_ifftc(volume.kspace), volume.target.shape[-2:])
        images.append((image * SCALE).astype(np.complex64))
        targets.append((volume.target * SCALE).astype(np.float32))
    return images, targets


def build(kind, learned, image_shape):
    keras.utils.set_random_seed(SEED)
    trajectory = LearnedTrajectory(
        kind, image_shape, ACCELERATION, n_shots=SPIRAL_SHOTS if kind == "spiral" else None, readout_length=READOUT,
        parameter_scale=PARAMETER_SCALE, trainable=learned,
    )
    model = LearnedTrajectoryModel(NCPDNet(image_shape=image_shape, **NETWORK), trajectory)
    model(model.dummy_inputs())
    return model


def train(model, images, targets, steps, log):
    """``steps`` Adam steps on random batches (the same for every method): the loss curve (list of floats)."""
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(x, training=True) - y))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    x_all, y_all = np.concatenate(images), np.concatenate(targets)
    rng = np.random.default_rng(SEED)
    losses = []
    for index in range(steps):
        batch = rng.choice(len(x_all), BATCH, replace=False)
        losses.append(float(step(tf.constant(x_all[batch]), tf.constant(y_all[batch]))))
        if (index + 1) % 20 == 0:
            log(f"  step {index + 1}/{steps}: loss {np.mean(losses[-20:]):.4g}")
    return losses


def evaluate(model, images, targets):
    """Mean PSNR / SSIM over the validation volumes (fastMRI's per-volume metrics)."""
    scores = []
    for x, y in zip(images, targets):
        prediction = np.concatenate([model(tf.constant(x[i : i + BATCH])).numpy() for i in range(0, len(x), BATCH)])
        scores.append(evaluate_volume(y, prediction))
    return {name: float(np.mean([s[name] for s in scores])) for name in ("PSNR", "SSIM")}


def table(rows, steps):
    lines = [
        f"Learned vs fixed trajectories, demo data {DEMO.image_size} x {DEMO.image_size} single-coil, acceleration "
        f"{ACCELERATION}, {READOUT} samples per shot; NC-PDNet {NETWORK}, {steps} Adam steps of batch {BATCH}.",
        "",
        "| trajectory | shots | PSNR (dB) | SSIM | max gradient (mT/m) | max slew (T/m/s) | gradient violation | slew violation | k-space violation | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        v = row["violations"]
        lines.append(
            f"| {row['method']} | {row['shots']} | {row['PSNR']:.2f} | {row['SSIM']:.4f} | {v['max_gradient'] * 1e3:.2f} | "
            f"{v['max_slew']:.1f} | {v['gradient']:g} | {v['slew']:g} | {v['kspace']:g} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="experiments/learned_trajectory/output")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else print
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "demo_data"
    if not (data / "singlecoil_val").is_dir():
        build_demo_dataset(data, DEMO, progress=not args.quiet)
    train_images, train_targets = load_split(data / "singlecoil_train")
    val_images, val_targets = load_split(data / "singlecoil_val")
    image_shape = train_images[0].shape[-2:]
    rows, figures = [], {}
    for kind, learned in METHODS:
        name = f"{'learned-' if learned else ''}{kind}"
        log(f"{name}:")
        tic = time.perf_counter()
        model = build(kind, learned, image_shape)
        losses = train(model, train_images, train_targets, args.steps, log)
        metrics = evaluate(model, val_images, val_targets)
        arrays, summary = trajectory_report(model.trajectory_layer)
        used = summary["violations"]["learned"]
        assert used["feasible"], (name, used)
        rows.append({
            "method": name, "shots": model.trajectory_layer.n_shots, **metrics, "violations": used,
            "initial_violations": summary["violations"]["initial"], "final_loss": float(np.mean(losses[-20:])),
            "moved_rad": float(np.abs(arrays["learned"] - arrays["initial"]).max()),
            "seconds": time.perf_counter() - tic,
        })
        log(f"  PSNR {metrics['PSNR']:.2f} SSIM {metrics['SSIM']:.4f}, trajectory moved by up to {rows[-1]['moved_rad']:.3f} rad")
        if learned:
            np.save(out / f"trajectory_{name}.npy", arrays["learned"])
            figures[kind] = (model.trajectory_layer.constraints, arrays)
    for kind, (constraints, arrays) in figures.items():
        trajectory_figure(out / f"trajectories_{kind}.png", constraints, {"initial": arrays["initial"], "learned": arrays["learned"]},
                          shots=(0,), title=f"{kind}: initial (projected) and learned")
    write_text(out / "results.md", table(rows, args.steps))
    write_text(out / "results.json", json.dumps({"steps": args.steps, "rows": rows}, indent=2) + "\n")
    log(table(rows, args.steps))


if __name__ == "__main__":
    main()
