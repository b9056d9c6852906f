"""A training run from a `TrainConfig`: strategy, data pipelines, model, loss, optimizer, loop.

The run directory (``output_dir/run_name``) holds ``config.json`` (the resolved configuration,
the package version and the strategy), the loop's checkpoints, weights and logs, and
``summary.json``. Starting the same configuration again resumes the run; only ``epochs`` may
change between the two (to train longer).
"""

import json
from pathlib import Path

import keras
import tensorflow as tf

from fastmri_recon import __version__
from fastmri_recon.data.datasets import MulticoilConfig, SinglecoilConfig, multicoil_dataset, singlecoil_dataset
from fastmri_recon.data.h5 import FastMRIFile, list_volumes
from fastmri_recon.errors import ConfigError
from fastmri_recon.files import write_text
from fastmri_recon.models.registry import build, get_cartesian_entry
from fastmri_recon.models.weights import load_checked
from fastmri_recon.training.config import from_dict
from fastmri_recon.training.loop import LoopConfig, Trainer
from fastmri_recon.training.losses import get_loss
from fastmri_recon.training.optimizers import RAdam
from fastmri_recon.training.strategy import describe, is_chief, make_strategy

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"


def split_dir(config, split):
    """The directory of a split (``train`` / ``val``) of the run's data."""
    return Path(config.data_dir) / f"{config.coils}_{split}"


def target_shape(directory):
    """The target size ``(h, w)`` of the first volume of a directory (the models' crop size)."""
    with FastMRIFile(list_volumes(directory)[0]) as handle:
        return handle.header.target_shape


def build_model(config, crop_size):
    """The run's model: the registry's class with the run's ``model_config``.

    Raises:
        ConfigError: for an unknown model or constructor argument.
    """
    cls = get_cartesian_entry(config.model).load_class()
    try:
        return build(config.model, crop_size=crop_size, **config.model_config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model_config for '{config.model}' ({cls.__name__}): {err}") from None


def pipeline_config(config, needs_smaps, seed):
    """The data pipeline's configuration for the run (``seed`` varies per epoch in training)."""
    options = dict(
        mask_kind=config.mask_type,
        accelerations=config.accelerations,
        center_fractions=config.center_fractions,
        slice_selection=config.slice_selection,
        phase_augmentation=config.phase_augmentation,
        contrasts=config.contrasts,
        batch_size=config.batch_size,
        seed=seed,
    )
    if config.coils == "multicoil":
        return MulticoilConfig(**options, sensitivity_maps="acs" if needs_smaps else None)
    return SinglecoilConfig(**options)


def data_functions(config, needs_smaps):
    """``(train, val)`` dataset functions ``(input_context, epoch) -> tf.data.Dataset`` for the loop."""
    dataset = multicoil_dataset if config.coils == "multicoil" else singlecoil_dataset
    train_dir, val_dir = split_dir(config, "train"), split_dir(config, "val")

    def train(context, epoch):
        return dataset(train_dir, pipeline_config(config, needs_smaps, config.seed + epoch), True, context)

    def val(context, epoch):
        return dataset(val_dir, pipeline_config(config, needs_smaps, config.seed), False, context)

    return train, val


def _optimizer(config):
    if config.optimizer == "radam":
        return RAdam(learning_rate=config.learning_rate)
    return keras.optimizers.Adam(learning_rate=config.learning_rate)


def _check_resumable(run_dir, config):
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return
    previous = from_dict(json.loads(path.read_text())["config"], str(path)).to_json()  # later fields: defaults
    changed = sorted(k for k, v in config.to_json().items() if previous.get(k) != v and k != "epochs")
    if changed:
        raise ConfigError(
            f"{run_dir}: holds a run with another configuration ({', '.join(changed)} differ); "
            "choose another --run-name or --output-dir"
        )


def _write_json(path, content):
    write_text(path, json.dumps(content, indent=2) + "\n")


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
        ConfigError / DataError: for a bad configuration or data directory.
    """
    strategy, kind = make_strategy(config.strategy)
    description = describe(strategy, kind)
    needs_smaps = get_cartesian_entry(config.model).load_class().needs_smaps and config.coils == "multicoil"
    crop_size = target_shape(split_dir(config, "train"))
    list_volumes(split_dir(config, "val"))
    build_model(config, crop_size)  # fail early on a bad model_config
    if dry_run:
        return {"strategy": description, "config": config.to_json(), "run_dir": str(config.run_dir)}
    run_dir = config.run_dir
    _check_resumable(run_dir, config)
    if is_chief(strategy):
        _write_json(
            run_dir / CONFIG_FILE,
            {"config": config.to_json(), "crop_size": list(crop_size), "version": __version__, "strategy": description},
        )
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(config.seed)
        train, val = data_functions(config, needs_smaps)
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
        )
        summary = trainer.fit()
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if is_chief(strategy):
        _write_json(run_dir / SUMMARY_FILE, summary)
    return {"strategy": description, "config": config.to_json(), "summary": summary, "run_dir": str(run_dir)}


def load_trained_model(run_dir, weights="best"):
    """Rebuild a run's model from its ``config.json`` and load its weights.

    Args:
        run_dir: a run directory written by `run_training`.
        weights: ``best`` or ``final``.

    Returns:
        ``(model, config)``: the built ``keras.Model`` with the weights loaded and the `TrainConfig`.

    Raises:
        ConfigError: when the directory is not a run directory, lacks the weights, or its weights
            do not match its configuration.
    """
    run_dir = Path(run_dir)
    config_path, weights_path = run_dir / CONFIG_FILE, run_dir / f"{weights}.weights.h5"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: not a training run directory (no {CONFIG_FILE})")
    if not weights_path.is_file():
        raise ConfigError(f"{run_dir}: no {weights_path.name} (has the run finished an epoch?)")
    stored = json.loads(config_path.read_text())
    config = from_dict(stored["config"], str(config_path))
    model = build_model(config, stored["crop_size"])
    load_checked(model, weights_path, config.coils == "multicoil", f"model '{config.model}' of {config_path}")
    return model, config
