"""The training loop: one loop for every strategy (one device, mirrored, multi-worker).

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
the package trains with its own loop (docs/architecture.md, "Training loop"): ``strategy.run`` on a
``tf.function`` step, datasets from ``distribute_datasets_from_function`` (sharded per input
context by the data pipeline), ``tf.nn.compute_average_loss`` with the global batch size and a
Keras 3 optimizer created under the strategy's scope. Models stay plain Keras models.

Outputs under ``output_dir`` (written by the chief only, files atomically):

- ``checkpoints/``: ``tf.train.CheckpointManager`` checkpoints of the model, the optimizer, the
  epoch, the step within the epoch and the best validation metric, every ``checkpoint_every``
  steps and at each epoch's end; a run started again with the same ``output_dir`` resumes from
  the latest intact one (the data pipeline is deterministic per epoch, so skipping the batches
  already seen restores the data position and an interrupted run ends like an uninterrupted one;
  a corrupt checkpoint is reported on stderr and the one before it used);
- ``best.weights.h5`` (best validation metric) and ``final.weights.h5``;
- ``metrics.csv`` (one row per epoch) and ``logs/`` (TensorBoard: losses, metrics, images).
  ``val_PSNR`` / ``val_SSIM`` are means over the validation slices (``val_loss`` too); the
  ``volume_metrics`` hook adds figures such as fastMRI's means over volumes (``val_PSNR_volumes``).

SIGTERM (what SLURM sends before killing a job) makes the loop save a checkpoint after the
current step and stop; SIGKILL loses at most ``checkpoint_every`` steps, and what it left half-written
(temporary files, ``checkpoints/ckpt-*_temp/``) is removed when a run finishes. A loss or weights
that turn NaN / Inf stop the run with a `DivergenceError`, the latest checkpoint being the last
finite one.
"""

import contextlib
import csv
import dataclasses
import io
import json
import math
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError, DivergenceError
from fastmri_recon.files import remove_temporaries, save_weights, write_text
from fastmri_recon.evaluate.metrics import tf_example_psnr_ssim
from fastmri_recon.training.strategy import cpu_kernels_warning, is_chief

METRICS_CSV = "metrics.csv"
LOSS_FILE = "epoch_loss.json"
"""Beside the checkpoints: the running sum and count of the current epoch's training losses."""


@dataclasses.dataclass
class LoopConfig:
    """How long and how to train.

    Attributes:
        epochs: number of epochs.
        steps_per_epoch: optimisation steps per epoch, repeating the training data as needed (None:
            one pass over the training data).
        global_batch_size: examples per step over all replicas.
        checkpoint_every: steps between checkpoints.
        validation_steps: batches of validation per epoch (None: the whole validation data).
        best_metric: validation metric (``PSNR``, ``SSIM`` (higher is better) or ``loss``) that
            selects ``best.weights.h5``.
        log_every: steps between TensorBoard loss points.
        progress: show a Keras progress bar.
    """

    epochs: int = 1
    steps_per_epoch: int = None
    global_batch_size: int = 1
    checkpoint_every: int = 100
    validation_steps: int = None
    best_metric: str = "PSNR"
    log_every: int = 10
    progress: bool = True


def per_example_loss(loss, target, prediction):
    """A Keras loss (built with ``reduction=None``) averaged per example: float32 ``(batch,)``."""
    values = loss(target, prediction)
    return tf.reduce_mean(tf.reshape(values, [tf.shape(target)[0], -1]), axis=1)


def make_train_step(strategy, model, optimizer, loss, global_batch_size):
    """The loop's training step, compiled once per input signature (``tf.function``, ``reduce_retracing``).

    One call takes the next batch of a distributed iterator, runs on every replica the forward pass
    (``training=True``), the loss (`per_example_loss` of the float32 prediction, averaged with
    ``tf.nn.compute_average_loss`` over ``global_batch_size``), its gradient and the optimizer's
    update, and returns the loss summed over the replicas. On CPU its speed depends on the kernels
    TensorFlow was imported with (`strategy.onednn_enabled`).

    Args:
        strategy: the ``tf.distribute.Strategy`` the model and the optimizer were created under.
        model: a Keras model or layer, built, called as ``model(inputs, training=True)``.
        optimizer: a Keras 3 optimizer, built on ``model.trainable_variables``.
        loss: a Keras loss with ``reduction=None``.
        global_batch_size: examples per step over all replicas.

    Returns:
        ``step(iterator) -> float32 ()``, where ``iterator`` gives ``(inputs, target)`` per-replica batches
        (an iterator of ``strategy.distribute_datasets_from_function``).
    """

    def replica_step(inputs, target):
        with tf.GradientTape() as tape:
            prediction = model(inputs, training=True)
            values = per_example_loss(loss, target, tf.cast(prediction, tf.float32))
            average = tf.nn.compute_average_loss(values, global_batch_size=global_batch_size)
        gradients = tape.gradient(average, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return average

    def step(iterator):
        losses = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return tf.function(step, reduce_retracing=True)


class _StopRequest:
    """Remembers a SIGTERM so that the loop can checkpoint and stop cleanly."""

    def __init__(self):
        self.requested = False

    @contextlib.contextmanager
    def installed(self):
        """Handle SIGTERM inside the block (only possible in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._handle)
            try:
                yield self
            finally:
                signal.signal(signal.SIGTERM, previous)
        else:
            yield self

    def _handle(self, signum, frame):
        self.requested = True


class Trainer:
    """Trains a Keras model with a custom loop under a tf.distribute strategy.

    Args:
        strategy: a ``tf.distribute.Strategy``.
        build_model: ``() -> keras.Model``, called under the strategy's scope.
        build_optimizer: ``() -> keras.optimizers.Optimizer``, called under the strategy's scope.
        loss: a Keras loss with ``reduction=None`` (per-example values).
        train_data: ``(input_context, epoch) -> tf.data.Dataset`` of ``(inputs, target)`` batched
            with ``input_context.get_per_replica_batch_size(global_batch_size)``, deterministic for
            a given epoch.
        val_data: same for validation (the epoch argument is 0), or None.
        output_dir: where checkpoints, weights and logs go.
        config: `LoopConfig`.
        volume_metrics: optional ``(model) -> dict`` of further validation figures (e.g. fastMRI's
            per-volume means, ``val_PSNR_volumes``), computed by the chief after each validation and
            logged beside the per-slice means (the best weights stay chosen by the latter).
    """

    def __init__(self, strategy, build_model, build_optimizer, loss, train_data, val_data, output_dir, config, volume_metrics=None):
        self.strategy, self.loss, self.config = strategy, loss, config
        self.train_data, self.val_data, self.volume_metrics = train_data, val_data, volume_metrics
        self.output_dir = Path(output_dir)
        self.chief = is_chief(strategy)
        self._epoch_loss = [0.0, 0]  # sum and count of the current epoch's training losses
        with strategy.scope():
            self.model = build_model()
            self.optimizer = build_optimizer()
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
            self.best = tf.Variable(-math.inf, dtype=tf.float64, trainable=False, name="best")
        self._built = False

    # ----------------------------------------------------------------- data
    def _distributed(self, data_fn, epoch, skip_steps=0, repeat=False):
        def dataset_fn(context):
            dataset = data_fn(context, epoch)
            if repeat:  # a fixed number of steps per epoch may ask for more than one pass
                dataset = dataset.repeat()
            replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
            return dataset.skip(skip_steps * replicas_per_pipeline)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ----------------------------------------------------------------- steps
    def _build(self, distributed):
        """Create the model's and the optimizer's variables from the first batch's shapes.

        Raises:
            ConfigError: when the training data gives no batch (fewer examples than the batch size).
        """
        try:
            first = next(iter(distributed))
        except (StopIteration, tf.errors.OutOfRangeError):
            raise ConfigError(
                f"batch_size={self.config.global_batch_size}: the training data holds fewer examples than one batch"
            ) from None

        def build_fn(inputs, target):
            self.model(inputs, training=False)

        self.strategy.run(build_fn, args=first)
        with self.strategy.scope():
            self.optimizer.build(self.model.trainable_variables)
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, step_in_epoch=self.step_in_epoch, best=self.best
        )
        directory = self.output_dir / "checkpoints"
        if not self.chief:  # every worker saves (collectively), only the chief keeps the files
            directory = self.output_dir / f".worker-{self.strategy.cluster_resolver.task_id}"
        self.manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
        self._restore(checkpoint)
        self._train_step = make_train_step(self.strategy, self.model, self.optimizer, self.loss, self.config.global_batch_size)
        warning = cpu_kernels_warning() if self.chief else None
        if warning is not None:
            print(warning, file=sys.stderr)
        self._val_step = tf.function(self._val_step_fn, reduce_retracing=True)
        self._built = True

    def _restore(self, checkpoint):
        """Restore the latest intact checkpoint, if any: a corrupt one is reported on stderr and the one before it used.

        Raises:
            DataError: when every checkpoint is corrupt.
        """
        candidates = list(reversed(self.manager.checkpoints))
        for path in candidates:
            try:
                checkpoint.restore(path).assert_existing_objects_matched()
                return
            except (tf.errors.OpError, AssertionError, ValueError) as err:
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                print(f"warning: {path}: corrupt checkpoint, not used ({reason})", file=sys.stderr)
        if candidates:
            raise DataError(f"{self.manager.directory}: every checkpoint is corrupt; remove the folder to train the run from the start")

    def _val_step_fn(self, inputs, target):
        def step(inputs, target):
            prediction = tf.cast(self.model(inputs, training=False), tf.float32)
            psnr, ssim = tf_example_psnr_ssim(target, prediction)
            sums = tf.stack(
                [
                    tf.reduce_sum(per_example_loss(self.loss, target, prediction)),
                    tf.reduce_sum(psnr),
                    tf.reduce_sum(ssim),
                    tf.cast(tf.shape(target)[0], tf.float32),
                ]
            )
            return sums, prediction

        sums, prediction = self.strategy.run(step, args=(inputs, target))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None), prediction

    # ----------------------------------------------------------------- epochs
    def _resumed_loss(self, epoch, step):
        """``[sum, count]`` of the epoch's training losses before ``step``, as recorded with the checkpoint
        this run resumed from (`LOSS_FILE`); ``[0.0, 0]`` at an epoch's start or without a matching record."""
        if step == 0 or not self.chief:
            return [0.0, 0]
        try:
            record = json.loads((self.output_dir / "checkpoints" / LOSS_FILE).read_text())
        except (OSError, ValueError):
            return [0.0, 0]
        if isinstance(record, dict) and record.get("epoch") == epoch and record.get("step") == step:
            return [float(record.get("sum", 0.0)), int(record.get("count", 0))]
        return [0.0, 0]

    def _train_epoch(self, epoch, progbar, stop, writer):
        skip = int(self.step_in_epoch.numpy())
        steps = self.config.steps_per_epoch
        iterator = iter(self._distributed(self.train_data, epoch, skip, repeat=steps is not None))
        losses, tic = [], time.perf_counter()
        self._epoch_loss = self._resumed_loss(epoch, skip)
        step = skip
        while steps is None or step < steps:
            try:
                loss = float(self._train_step(iterator))
            except (StopIteration, tf.errors.OutOfRangeError):
                break
            if not math.isfinite(loss):
                raise self._diverged(f"the training loss became {loss} at epoch {epoch + 1}, step {step + 1}")
            step += 1
            losses.append(loss)
            self._epoch_loss = [self._epoch_loss[0] + loss, self._epoch_loss[1] + 1]
            self.step_in_epoch.assign(step)
            if progbar is not None:
                progbar.update(step, [("loss", loss)])
            if step % self.config.log_every == 0:
                with writer.as_default(step=self.optimizer.iterations):
                    tf.summary.scalar("train/loss", loss)
            if step % self.config.checkpoint_every == 0 or stop.requested:
                self._checkpoint()
            if stop.requested:
                return losses, time.perf_counter() - tic, True
        return losses, time.perf_counter() - tic, False

    def _validate(self, writer, epoch):
        if self.val_data is None:
            return {}
        totals = np.zeros(4)
        sample = None
        for index, (inputs, target) in enumerate(self._distributed(self.val_data, 0)):
            if self.config.validation_steps is not None and index >= self.config.validation_steps:
                break
            sums, prediction = self._val_step(inputs, target)
            totals += sums.numpy()
            if sample is None:
                sample = (self.strategy.experimental_local_results(target)[0], self.strategy.experimental_local_results(prediction)[0])
        count = max(totals[3], 1.0)
        metrics = {"val_loss": totals[0] / count, "val_PSNR": totals[1] / count, "val_SSIM": totals[2] / count}
        if self.volume_metrics is not None and self.chief:
            metrics.update(self.volume_metrics(self.model))
        with writer.as_default(step=epoch + 1):
            for name, value in metrics.items():
                tf.summary.scalar(name.replace("_", "/", 1), value)
            if sample is not None:
                target, prediction = sample
                if target.shape.rank == 4:  # volumes: their middle slice
                    target, prediction = target[:, target.shape[1] // 2], prediction[:, prediction.shape[1] // 2]
                scale = tf.reduce_max(target[:1]) + 1e-12
                tf.summary.image("val/target_vs_reconstruction", tf.concat([target[:1], prediction[:1]], axis=2)[..., None] / scale)
        return metrics

    def _diverged(self, what):
        kept = self.manager.latest_checkpoint
        where = f"the latest checkpoint, {Path(kept).name}, holds finite weights" if kept else "no checkpoint was written"
        return DivergenceError(f"{self.output_dir}: {what}; training stopped (learning rate too high? bad data?), {where}")

    def _checkpoint(self):
        """Save a checkpoint of finite weights.

        Raises:
            DivergenceError: when a weight is NaN / Inf (nothing saved: the latest checkpoint stays the last finite one).
        """
        if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.model.trainable_variables):
            raise self._diverged(f"weights became NaN or Inf by step {int(self.step_in_epoch.numpy())} of epoch {int(self.epoch.numpy()) + 1}")
        self.manager.save()
        if self.chief:  # the epoch's losses so far, so that a resumed epoch's row averages all its steps
            total, count = self._epoch_loss
            record = {"epoch": int(self.epoch.numpy()), "step": int(self.step_in_epoch.numpy()), "sum": total, "count": count}
            write_text(self.output_dir / "checkpoints" / LOSS_FILE, json.dumps(record) + "\n")

    def _metric_value(self, metrics):
        name = self.config.best_metric
        value = metrics[f"val_{name}"]
        return -value if name == "loss" else value

    def _save_weights(self, name):
        save_weights(self.model, self.output_dir / name)

    def _write_csv(self, rows):
        buffer = io.StringIO()
        columns = list(dict.fromkeys(key for row in rows for key in row))  # rows of a resumed older run may lack some
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.output_dir / METRICS_CSV, buffer.getvalue())

    def _previous_rows(self):
        path = self.output_dir / METRICS_CSV
        if not path.is_file():
            return []
        try:
            with open(path, newline="") as handle:
                return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= int(self.epoch.numpy())]
        except (KeyError, TypeError, ValueError, csv.Error) as err:  # UnicodeDecodeError is a ValueError
            raise DataError(f"{path}: not a metrics file of this loop (no integer 'epoch' column: {err}); move it away to resume") from None

    def _remove_leftovers(self):
        """Remove what an interrupted process left half-written: temporary files and TensorFlow's ``ckpt-*_temp/``."""
        remove_temporaries(self.output_dir)
        for leftover in (self.output_dir / "checkpoints").glob("ckpt-*_temp"):
            shutil.rmtree(leftover, ignore_errors=True)

    def fit(self):
        """Train (or resume) until ``config.epochs``; return a summary dict.

        Returns:
            dict with ``epochs_done``, ``steps``, ``seconds_per_step``, ``best`` (metric name and
            value), ``stopped`` (True when a SIGTERM stopped the run) and the output paths.

        Raises:
            ConfigError: the training data holds fewer examples than one batch.
            DataError: ``metrics.csv`` is not this loop's.
            DivergenceError: the loss or the weights became NaN / Inf.
        """
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if not self._built:
            self._build(self._distributed(self.train_data, 0))
        writer = tf.summary.create_file_writer(str(self.output_dir / "logs")) if self.chief else tf.summary.create_noop_writer()
        rows, seconds, steps, stopped = self._previous_rows(), 0.0, 0, False
        with _StopRequest().installed() as stop:
            for epoch in range(int(self.epoch.numpy()), self.config.epochs):
                progbar = None
                if self.config.progress and self.chief:
                    print(f"Epoch {epoch + 1}/{self.config.epochs}")
                    progbar = keras.utils.Progbar(self.config.steps_per_epoch, stateful_metrics=["loss"])
                losses, spent, stopped = self._train_epoch(epoch, progbar, stop, writer)
                seconds, steps = seconds + spent, steps + len(losses)
                if stopped:
                    break
                metrics = self._validate(writer, epoch)
                if metrics and self._metric_value(metrics) > self.best.numpy():
                    self.best.assign(self._metric_value(metrics))
                    if self.chief:
                        self._save_weights("best.weights.h5")
                total, count = self._epoch_loss
                self.epoch.assign(epoch + 1)
                self.step_in_epoch.assign(0)
                self._epoch_loss = [0.0, 0]
                self._checkpoint()
                row = {"epoch": epoch + 1, "loss": total / count if count else math.nan, **metrics, "seconds": spent}
                rows.append(row)
                if self.chief:
                    self._write_csv(rows)
                    if progbar is not None and metrics:
                        print("  ".join(f"{k}: {v:.4g}" for k, v in metrics.items()))
        if self.chief and not stopped:
            self._save_weights("final.weights.h5")
            self._remove_leftovers()
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        writer.flush()
        best = self.best.numpy()
        return {
            "epochs_done": int(self.epoch.numpy()),
            "steps": steps,
            "seconds_per_step": seconds / steps if steps else math.nan,
            "best": {self.config.best_metric: (-best if self.config.best_metric == "loss" else best)} if np.isfinite(best) else None,
            "stopped": stopped,
            "checkpoints": str(self.output_dir / "checkpoints"),
            "best_weights": str(self.output_dir / "best.weights.h5"),
            "final_weights": str(self.output_dir / "final.weights.h5"),
        }
