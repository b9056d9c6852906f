"""A tiny, deterministic training run for the training-loop tests (also run as a subprocess).

Usage: python tiny_training.py OUTPUT_DIR [--logical-cpus N] [--strategy KIND] [--epochs E]
       [--kill-at-example K] [--slow SECONDS]

``--kill-at-example K`` SIGKILLs the process when the second epoch's data pipeline reads its K-th
example; ``--slow S`` sleeps S seconds per example read (to leave time for a signal). Prints the
training summary and the final weights as JSON on stdout.
"""

import argparse
import json
import os
import signal
import sys
import time

import numpy as np


def synthetic_data(count=24, height=16, width=8, seed=0):
    """Single-coil k-space of smooth random images, masks and 8 x 8 magnitude targets (NumPy)."""
    from fastmri_recon.ops.crop import center_crop
    from fastmri_recon.ops.fourier import np_fftc

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    images = np.stack([np.exp(-((xx - rng.random()) ** 2 + (yy - rng.random()) ** 2) * 8) for _ in range(count)])
    images = images * np.exp(1j * rng.random((count, 1, 1)))
    kspace = np_fftc(images).astype(np.complex64)
    masks = (rng.random((count, width)) < 0.5).astype(np.float32)
    masks[:, width // 2 - 1 : width // 2 + 1] = 1
    targets = center_crop(np.abs(images), (8, 8)).astype(np.float32)
    return kspace, masks, targets


def dataset_fns(global_batch, kill_at_example=None, slow=0.0):
    import tensorflow as tf

    kspace, masks, targets = synthetic_data()

    def train(context, epoch):
        data = tf.data.Dataset.from_tensor_slices(((kspace, masks), targets))
        data = data.shuffle(len(targets), seed=100 + epoch).shard(context.num_input_pipelines, context.input_pipeline_id)
        if kill_at_example is not None or slow:
            counter = iter(range(10**9))

            def hook(target):
                if next(counter) == kill_at_example and epoch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(slow)
                return target

            data = data.map(lambda inputs, target: (inputs, tf.numpy_function(hook, [target], tf.float32, stateful=True)))
            data = data.map(lambda inputs, target: (inputs, tf.ensure_shape(target, (8, 8))))
        return data.batch(context.get_per_replica_batch_size(global_batch), drop_remainder=True)

    def val(context, epoch):
        data = tf.data.Dataset.from_tensor_slices(((kspace[:8], masks[:8]), targets[:8]))
        return data.shard(context.num_input_pipelines, context.input_pipeline_id).batch(
            context.get_per_replica_batch_size(global_batch)
        )

    return train, val


def run(output_dir, strategy_kind="auto", epochs=2, kill_at_example=None, slow=0.0, checkpoint_every=2):
    import keras
    import tensorflow as tf

    from fastmri_recon.models.registry import build
    from fastmri_recon.training.loop import LoopConfig, Trainer
    from fastmri_recon.training.optimizers import RAdam
    from fastmri_recon.training.strategy import make_strategy

    tf.config.experimental.enable_op_determinism()
    strategy, _ = make_strategy(strategy_kind)
    global_batch = 4
    train, val = dataset_fns(global_batch, kill_at_example, slow)

    def build_model():
        keras.utils.set_random_seed(0)
        return build("cascade-net", crop_size=(8, 8), n_cascades=2, n_convs=2, n_filters=4)

    trainer = Trainer(
        strategy,
        build_model,
        lambda: RAdam(learning_rate=1e-3),
        keras.losses.MeanAbsoluteError(reduction=None),
        train,
        val,
        output_dir,
        LoopConfig(epochs=epochs, global_batch_size=global_batch, checkpoint_every=checkpoint_every, progress=False),
    )
    summary = trainer.fit()
    weights = [w.numpy().tolist() for w in trainer.model.weights]
    return summary, weights


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--kill-at-example", type=int, default=None)
    parser.add_argument("--slow", type=float, default=0.0)
    args = parser.parse_args()
    import tensorflow as tf

    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
    summary, weights = run(args.output_dir, args.strategy, args.epochs, args.kill_at_example, args.slow)
    json.dump({"summary": summary, "weights": weights}, sys.stdout)


if __name__ == "__main__":
    main()
