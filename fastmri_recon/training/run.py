"""A training run from a `TrainConfig`: strategy, data pipelines, model, loss, optimizer, loop.

The run directory (``output_dir/run_name``, written and read by `training.rundir.RunDirectory`) holds
``config.json`` (the resolved configuration, the package version and the strategy), the loop's
checkpoints, weights and logs, and ``summary.json``. Starting the same configuration again resumes the
run; only ``epochs`` (to train longer) and ``cache_dir`` (the same batches from a TFRecord cache) may
change between the two. The process training a run locks its directory (``.lock``): a second one
started on it is refused.

The model's acquisition picks the data (`rundir.acquisition`): Cartesian models train on the single- /
multi-coil pipelines of ``data_dir/{coils}_{train,val}/``, 2D non-Cartesian models on radial /
spiral samples simulated from the same files (`data.datasets.noncartesian`), 3D models on samples
simulated from the volumes of ``data_dir/volumes_{train,val}/`` (NIfTI) or from the demo volumes
(``data_dir: demo-volumes``, `data.datasets.volume3d`); their validation PSNR / SSIM are per volume.
"""

import contextlib
import dataclasses
from pathlib import Path

import keras
import tensorflow as tf

from fastmri_recon import __version__
from fastmri_recon.data.datasets import multicoil_dataset, singlecoil_dataset
from fastmri_recon.data.datasets.volumes import reading_errors
from fastmri_recon.errors import ConfigError
from fastmri_recon.data.acquisition import NonCartesianAcquisition
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.training.loop import LoopConfig, Trainer
from fastmri_recon.training.losses import get_loss
from fastmri_recon.training.optimizers import RAdam
from fastmri_recon.training.rundir import (
    RunDirectory,
    acquisition,
    build_model,
    evaluation_sampler,
    output_shape,
    split_source,
)
from fastmri_recon.training.strategy import describe, is_chief, make_strategy


def split_dataset(config, source, seed, training, context):
    """The dataset of a split's ``source`` (`rundir.split_source`): the acquisition's pipeline."""
    data = acquisition(config, seed)
    if isinstance(data, NonCartesianAcquisition):
        return data.dataset(source, training, context)
    if config.cache_dir is not None:  # the split's cache: the same batches, read from TFRecords
        data = dataclasses.replace(data, cache_dir=str(Path(config.cache_dir) / Path(source).name))
    dataset = multicoil_dataset if config.coils == "multicoil" else singlecoil_dataset
    return dataset(source, data, training, context)


def data_functions(config):
    """``(train, val)`` dataset functions ``(input_context, epoch) -> tf.data.Dataset`` for the loop (val None in 3D)."""
    train_source, val_source = split_source(config, "train"), split_source(config, "val")

    def train(context, epoch):
        return split_dataset(config, train_source, config.seed + epoch, True, context)

    def val(context, epoch):
        return split_dataset(config, val_source, config.seed, False, context)

    return train, val


def volume_metrics(config):
    """The loop's ``volume_metrics`` hook: fastMRI's per-volume means on the validation split, as `evaluate` reports them.

    Every validation volume is reconstructed (Cartesian: with the file-name-seeded masks the
    validation pipeline uses too; non-Cartesian: the run's acquisition) and scored by
    `evaluate_directory`; the loop's own ``val_PSNR`` / ``val_SSIM`` are means over slices, which
    weigh volumes by their slice counts and slices by their own data range.

    Returns:
        ``(model) -> {"val_PSNR_volumes": ..., "val_SSIM_volumes": ..., "val_NMSE_volumes": ...}``,
        or None for 3D runs and runs with ``validation_steps`` (a partial validation).
    """
    if config.volumetric or config.validation_steps is not None:
        return None
    sampler = evaluation_sampler(config)
    source = split_source(config, "val")

    def metrics(model):
        result = evaluate_directory(
            model, config.name, source, sampler, progress=False, scale_factor=config.scale_factor, compression=config.compression()
        )
        return {f"val_{name}_volumes": value for name, value in result.summary.means().items()}

    return metrics


def _optimizer(config):
    if config.optimizer == "radam":
        return RAdam(learning_rate=config.learning_rate)
    return keras.optimizers.Adam(learning_rate=config.learning_rate)


def run_training(config, dry_run=False, progress=True):
    """Train (or resume) the run described by ``config``.

    Args:
        config: a `TrainConfig`.
        dry_run: resolve and return the strategy, devices and configuration without training.
        progress: Keras progress bars.

    Returns:
        dict: ``strategy`` (description), ``config`` and, unless ``dry_run``, ``summary`` (the
        loop's summary) and ``run_dir``.

    Raises:
        ConfigError / DataError: for a bad configuration or data directory, or a run another
            process is training.
        DivergenceError: the loss or the weights became NaN / Inf.
    """
    strategy, kind = make_strategy(config.strategy)
    description = describe(strategy, kind)
    if config.volumetric and strategy.num_replicas_in_sync > 1:
        raise ConfigError(f"strategy='{config.strategy}': the 3D pipeline feeds one replica, got {strategy.num_replicas_in_sync}")
    crop_size = output_shape(config)
    acquisition(config, config.seed)  # fail early on bad pipeline options
    build_model(config, crop_size)  # and on a bad model_config
    if dry_run:
        return {"strategy": description, "config": config.to_json(), "run_dir": str(config.run_dir)}
    with RunDirectory.lock(config.run_dir) if is_chief(strategy) else contextlib.nullcontext():
        summary = _fit(config, strategy, description, crop_size, progress)
    return {"strategy": description, "config": config.to_json(), "summary": summary, "run_dir": str(config.run_dir)}


def _fit(config, strategy, description, crop_size, progress):
    """`run_training` once the configuration is checked: write config.json, train, write summary.json; the summary."""
    run_dir = config.run_dir
    if is_chief(strategy):
        run = RunDirectory.create(config, crop_size, __version__, description)
    else:
        RunDirectory.check_resumable(config)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(config.seed)
        train, val = data_functions(config)
        trainer = Trainer(
            strategy,
            lambda: build_model(config, crop_size),
            lambda: _optimizer(config),
            get_loss(config.loss, reduction=None),
            train,
            val,
            run_dir,
            LoopConfig(
                epochs=config.epochs,
                steps_per_epoch=config.steps_per_epoch,
                global_batch_size=config.batch_size,
                checkpoint_every=config.checkpoint_every,
                validation_steps=config.validation_steps,
                progress=progress,
            ),
            volume_metrics=volume_metrics(config),
        )
        with reading_errors():
            summary = trainer.fit()
        if config.learned and is_chief(strategy):
            run.write_trajectory(trainer.model.trajectory_layer)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if not is_chief(strategy):
        return summary
    finished = run.read_summary() if summary["steps"] == 0 else None
    if finished is not None:  # a finished run: keep what it reported
        return finished
    run.write_summary(summary)
    return summary
