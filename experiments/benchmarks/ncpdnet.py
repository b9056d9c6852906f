"""Benchmark of one NC-PDNet training step (forward and backward) on CPU.

Times, median of ``--repeats`` runs after two warm-up runs, inside ``tf.function``:

- ``forward``: ``model(inputs)``;
- ``step``: forward, the l1 loss, its gradient and an Adam update (a training step);
- ``nufft only``: the same unrolled loop with the CNNs removed (the NUFFT plan, the initial
  density-compensated adjoint and one forward and one adjoint NUFFT per iteration): the share of
  the encoding operator in the forward pass.

for NC-PDNet at its paper configuration (10 iterations, 5 primal buffers, 32 filters) on

- ``2d-256``: one 256 x 256 single-coil image, golden-angle radial trajectory at acceleration 4
  (101 spokes x 512 samples);
- ``2d-256-mc``: the same with 4 coils and sensitivity maps;
- ``3d-32``: one 32^3 volume (Conv3D), stack of spirals at acceleration 4.

Prints a Markdown table; the run is recorded in BENCHMARKS.md.

    python experiments/benchmarks/ncpdnet.py [--case 2d-256 --case 2d-256-mc --case 3d-32] [--repeats 5]
"""

import datetime
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import median_time  # experiments/benchmarks/timing.py

from fastmri_recon.data.density import pipe_menon_density  # noqa: E402
from fastmri_recon.data.trajectories import make_trajectory  # noqa: E402
from fastmri_recon.models.ncpdnet import NCPDNet  # noqa: E402
from fastmri_recon.ops.encoding import NonCartesianEncoding  # noqa: E402

CASES = {
    "2d-256": dict(shape=(256, 256), coils=0, trajectory="radial"),
    "2d-256-mc": dict(shape=(256, 256), coils=4, trajectory="radial"),
    "3d-32": dict(shape=(32, 32, 32), coils=0, trajectory="stack_of_spirals"),
}
ACCELERATION = 4


def make_inputs(shape, coils, trajectory, seed=0):
    """A batch of one example: samples of a random smooth image, the trajectory, its density (and maps)."""
    rng = np.random.default_rng(seed)
    traj = make_trajectory(trajectory, shape, ACCELERATION)
    density = pipe_menon_density(traj, shape).numpy()
    leading = (1, coils) if coils else (1,)
    samples = rng.standard_normal(leading + traj.shape[1:]) + 1j * rng.standard_normal(leading + traj.shape[1:])
    inputs = (samples.astype(np.complex64), traj[None], density[None])
    if coils:
        maps = rng.standard_normal((1, coils, *shape)) + 1j * rng.standard_normal((1, coils, *shape))
        inputs += ((maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=1, keepdims=True))).astype(np.complex64),)
    return tuple(tf.constant(x) for x in inputs)


def nufft_only(model, inputs):
    """The unrolled loop of `NCPDNet.call` without its CNNs."""
    measured, traj, density = inputs[:3]
    encoding = NonCartesianEncoding(traj, model.image_shape, density, inputs[3] if len(inputs) > 3 else None,
                                    model.nufft_eps)
    image = encoding.adjoint(measured)
    for _ in range(model.n_iter):
        image = image - encoding.adjoint(encoding.forward(image) - measured)
    return image


def run_case(name, repeats):
    case = CASES[name]
    inputs = make_inputs(case["shape"], case["coils"], case["trajectory"])
    keras.utils.set_random_seed(0)
    model = NCPDNet(image_shape=case["shape"])
    target = tf.abs(model(inputs))
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def forward():
        return model(inputs)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(inputs) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
        return loss

    operator = tf.function(lambda: nufft_only(model, inputs))
    times = {
        "forward": median_time(lambda: forward().numpy(), repeats),
        "step": median_time(lambda: step().numpy(), repeats),
        "nufft only": median_time(lambda: operator().numpy(), repeats),
    }
    n_samples = inputs[1].shape[-1]
    return name, n_samples, model.count_params(), times


@click.command()
@click.option("--case", "cases", multiple=True, type=click.Choice(sorted(CASES)), help="cases to run (default: all)")
@click.option("--repeats", default=5, show_default=True, help="timed runs per measurement")
def main(cases, repeats):
    """Time a forward pass and a training step of NC-PDNet on CPU."""
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__}, {len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    print("| case | samples | parameters | forward (ms) | training step (ms) | NUFFT only (ms) | NUFFT share of forward |")
    print("|---|---|---|---|---|---|---|")
    for name in cases or CASES:
        name, n_samples, params, t = run_case(name, repeats)
        print(f"| {name} | {n_samples} | {params:,} | {1e3 * t['forward']:.0f} | {1e3 * t['step']:.0f} | "
              f"{1e3 * t['nufft only']:.0f} | {t['nufft only'] / t['forward']:.0%} |")


if __name__ == "__main__":
    main()
