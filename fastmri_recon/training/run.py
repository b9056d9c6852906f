"""A training run from a `TrainConfig`: strategy, data pipelines, model, loss, optimizer, loop.

The run directory (``output_dir/run_name``) holds ``config.json`` (the resolved configuration,
the package version and the strategy), the loop's checkpoints, weights and logs, and
``summary.json``. Starting the same configuration again resumes the run; only ``epochs`` (to train
longer) and ``cache_dir`` (the same batches from a TFRecord cache) may change between the two. The
process training a run locks its directory (``.lock``): a second one started on it is refused.

The model's acquisition picks the data (`acquisition`): Cartesian models train on the single- /
multi-coil pipelines of ``data_dir/{coils}_{train,val}/``, 2D non-Cartesian models on radial /
spiral samples simulated from the same files (`data.datasets.noncartesian`), 3D models on samples
simulated from the volumes of ``data_dir/volumes_{train,val}/`` (NIfTI) or from the demo volumes
(``data_dir: demo-volumes``, `data.datasets.volume3d`); their validation PSNR / SSIM are per volume.
"""

import contextlib
import dataclasses
import fcntl
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon import __version__
from fastmri_recon.data.datasets import (
    MulticoilConfig,
    NonCartesianConfig,
    SinglecoilConfig,
    Volume3DConfig,
    demo_volumes,
    multicoil_dataset,
    singlecoil_dataset,
)
from fastmri_recon.data.datasets.volume3d import nifti_paths
from fastmri_recon.data.datasets.volumes import reading_errors
from fastmri_recon.data.h5 import list_volumes, target_shape
from fastmri_recon.errors import ConfigError, quote
from fastmri_recon.evaluate.evaluate import NonCartesianAcquisition, evaluate_directory
from fastmri_recon.files import atomic_path, make_directory, write_text
from fastmri_recon.models.learned_trajectory import learned_base, trajectory_figure, trajectory_report, with_learned_trajectory
from fastmri_recon.models.registry import build, get_entry
from fastmri_recon.models.weights import load_checked
from fastmri_recon.training.config import DEMO_VOLUMES, from_dict
from fastmri_recon.training.loop import LoopConfig, Trainer
from fastmri_recon.training.losses import get_loss
from fastmri_recon.training.optimizers import RAdam
from fastmri_recon.training.strategy import describe, is_chief, make_strategy

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
"""Locked by the process training a run (`run_training`): a second one is refused."""
DEMO_VOLUME_SPLITS = {"train": (6, 0), "val": (2, 1)}
"""The demo volumes of 3D runs with ``data_dir: demo-volumes``: split -> (volumes, seed of `demo_volumes`)."""


def split_dir(config, split):
    """The directory of a split (``train`` / ``val``) of the run's data: ``{coils}_{split}/`` or (3D) ``volumes_{split}/``."""
    return Path(config.data_dir) / (f"volumes_{split}" if config.volumetric else f"{config.coils}_{split}")


def demo_split(split, volume_shape):
    """The demo volumes of a split, float32 ``(n, *volume_shape)`` (`DEMO_VOLUME_SPLITS`)."""
    count, seed = DEMO_VOLUME_SPLITS[split]
    return demo_volumes(count, tuple(volume_shape), seed)


def split_source(config, split):
    """What a split's pipeline reads: `split_dir`, or the `demo_split` volumes of 3D runs on ``demo-volumes``."""
    if config.volumetric and config.data_dir == DEMO_VOLUMES:
        return demo_split(split, config.volume_shape)
    return split_dir(config, split)


def output_shape(config):
    """The size of the run's outputs (its models' crop size), checking that both splits exist.

    Returns:
        ``(h, w)``: the first training target's size (2D); ``volume_shape`` (3D).

    Raises:
        DataError: for a missing split directory or one without volumes.
    """
    if config.volumetric:
        if config.data_dir != DEMO_VOLUMES:
            nifti_paths(split_dir(config, "train"))
            nifti_paths(split_dir(config, "val"))
        return config.volume_shape
    shape = target_shape(split_dir(config, "train"))
    list_volumes(split_dir(config, "val"))
    return shape


def build_model(config, crop_size):
    """The run's model: the registry's class with the run's ``model_config``.

    Non-Cartesian models get the data's grid as ``image_shape``: ``volume_shape`` (3D), else
    ``image_shape`` or the targets' size ``crop_size``.

    Raises:
        ConfigError: for an unknown model or constructor argument.
    """
    cls = get_entry(config.model).load_class()
    grid = {}
    if config.acquisition == "noncartesian":
        grid["image_shape"] = tuple(config.volume_shape if config.volumetric else (config.image_shape or crop_size))
    try:
        model = build(config.model, crop_size=crop_size, **grid, **config.model_config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model_config for '{config.model}' ({cls.__name__}): {err}") from None
    if is_learned(config):
        return with_learned_trajectory(model, config.trajectory, config.accelerations[0], config.trajectory_options)
    return model


def is_learned(config):
    """Whether the run learns its trajectory (``trajectory`` one of `LEARNED_TRAJECTORIES`)."""
    return config.acquisition == "noncartesian" and learned_base(config.trajectory) is not None


def needs_smaps(config):
    """Whether the run's inputs carry sensitivity maps: multi-coil data for a model that needs them."""
    return get_entry(config.model).load_class().needs_smaps and config.coils == "multicoil"


def pipeline_config(config, seed):
    """The data pipeline's configuration for the run (``seed`` varies per epoch in training).

    Returns:
        `SinglecoilConfig` / `MulticoilConfig` (Cartesian), `NonCartesianConfig` (2D
        non-Cartesian) or `Volume3DConfig` (3D).

    Raises:
        ConfigError: for options the pipeline refuses (e.g. trajectory_options).
    """
    maps = "acs" if needs_smaps(config) else None
    if config.volumetric:
        return Volume3DConfig(
            trajectory=config.trajectory, acceleration=config.accelerations[0], trajectory_options=config.trajectory_options,
            volume_shape=config.volume_shape, batch_size=config.batch_size, seed=seed, scale_factor=config.scale_factor,
        )
    options = {
        "slice_selection": config.slice_selection,
        "phase_augmentation": config.phase_augmentation,
        "contrasts": config.contrasts,
        "batch_size": config.batch_size,
        "seed": seed,
        "scale_factor": config.scale_factor,
    }
    if is_learned(config):  # the pipeline gives images: the model samples them on its own trajectory
        return NonCartesianConfig(
            trajectory=learned_base(config.trajectory), acceleration=config.accelerations[0], image_shape=config.image_shape,
            sensitivity_maps=maps, **options,
        )
    if config.acquisition == "noncartesian":
        return NonCartesianConfig(
            trajectory=config.trajectory, acceleration=config.accelerations[0], trajectory_options=config.trajectory_options,
            image_shape=config.image_shape, sensitivity_maps=maps, **options,
        )
    options.update(mask_kind=config.mask_type, accelerations=config.accelerations, center_fractions=config.center_fractions)
    if config.coils == "multicoil":
        compression = {"virtual_coils": config.virtual_coils, "coil_compression": config.coil_compression or "svd"}
        return MulticoilConfig(**options, sensitivity_maps=maps, **compression)
    return SinglecoilConfig(**options)


def acquisition(config, seed):
    """The run's data pipeline at ``seed``: a Cartesian pipeline configuration or a `NonCartesianAcquisition`.

    The non-Cartesian one (at ``config.seed``) is also what evaluating the run simulates by default.
    """
    pipeline = pipeline_config(config, seed)
    if config.acquisition == "cartesian":
        return pipeline
    return NonCartesianAcquisition(pipeline, config.density_compensation, learned=is_learned(config))


def split_dataset(config, source, seed, training, context):
    """The dataset of a split's ``source`` (`split_source`): the acquisition's pipeline."""
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
    data = acquisition(config, config.seed)
    sampler = data.mask_sampler() if config.acquisition == "cartesian" else data
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


def read_run_config(run_dir):
    """A run directory's ``config.json``: ``(TrainConfig, crop_size)``.

    Raises:
        ConfigError: naming the file when it is not valid JSON, lacks the ``config`` object or the
            ``crop_size`` (2 or 3 positive integers), or holds a bad configuration.
    """
    path = Path(run_dir) / CONFIG_FILE
    try:
        stored = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); expected a run's config.json") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        raise ConfigError(f"{path}: no 'config' object (the run's configuration); expected a run's config.json")
    crop_size = stored.get("crop_size")
    if not (isinstance(crop_size, list) and len(crop_size) in (2, 3) and all(type(n) is int and n > 0 for n in crop_size)):
        raise ConfigError(f"{path}: crop_size={quote(crop_size)}: expected 2 or 3 positive integers")
    return from_dict(stored["config"], str(path)), tuple(crop_size)


def _check_resumable(run_dir, config):
    if not (run_dir / CONFIG_FILE).is_file():
        return
    previous = read_run_config(run_dir)[0].to_json()  # later fields: defaults
    changed = sorted(k for k, v in config.to_json().items() if previous.get(k) != v and k not in ("epochs", "cache_dir"))
    if changed:
        raise ConfigError(
            f"{run_dir}: holds a run with another configuration ({', '.join(changed)} differ); "
            "choose another --run-name or --output-dir"
        )


def _write_json(path, content):
    write_text(path, json.dumps(content, indent=2) + "\n")


@contextlib.contextmanager
def _run_lock(run_dir, chief):
    """Hold an exclusive lock on the run directory (``.lock``) inside the block; only the chief takes it.

    Raises:
        ConfigError: when another process holds it (it is training the same run).
    """
    if not chief:
        yield
        return
    make_directory(run_dir)
    with open(run_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another process is training this run; wait for it to end or choose another --run-name") from None
        yield


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
    with _run_lock(config.run_dir, is_chief(strategy)):
        summary = _fit(config, strategy, description, crop_size, progress)
    return {"strategy": description, "config": config.to_json(), "summary": summary, "run_dir": str(config.run_dir)}


def _fit(config, strategy, description, crop_size, progress):
    """`run_training` once the configuration is checked: write config.json, train, write summary.json; the summary."""
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
        if is_learned(config) and is_chief(strategy):
            write_trajectory(run_dir, trainer.model.trajectory_layer)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if summary["steps"] == 0 and (run_dir / SUMMARY_FILE).is_file():  # a finished run: keep what it reported
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    elif is_chief(strategy):
        _write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def write_trajectory(run_dir, layer):
    """Write a learned trajectory beside its run's weights: ``trajectory.npy`` (learned) and
    ``trajectory_initial.npy`` (float32 ``(2, M)`` radians), ``trajectory.json`` (the layer's
    configuration, the hardware limits and each trajectory's constraint violations) and
    ``trajectory.png`` (both trajectories with their gradient and slew-rate waveforms).

    Args:
        run_dir: the run directory.
        layer: the run's `LearnedTrajectory` (its current, i.e. final, trajectory).
    """
    arrays, summary = trajectory_report(layer)
    for name, key in (("trajectory.npy", "learned"), ("trajectory_initial.npy", "initial")):
        with atomic_path(run_dir / name) as tmp, open(tmp, "wb") as handle:
            np.save(handle, arrays[key])
    _write_json(run_dir / "trajectory.json", summary)
    trajectory_figure(run_dir / "trajectory.png", layer.constraints, arrays, title=f"{run_dir.name}: initial and learned trajectories")


def is_run_directory(path):
    """Whether ``path`` is a training run directory (a folder with the run's ``config.json``)."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return False
    try:
        stored = json.loads((path / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(stored, dict) and "config" in stored and "crop_size" in stored


def load_trained_model(run_dir, weights="best"):
    """Rebuild a run's model from its ``config.json`` and load its weights.

    Args:
        run_dir: a run directory written by `run_training`.
        weights: ``best`` or ``final``.

    Returns:
        ``(model, config)``: the built ``keras.Model`` with the weights loaded and the `TrainConfig`.

    Raises:
        ConfigError: when the directory is not a run directory (no or a bad ``config.json``), lacks
            the weights, or its weights do not match its configuration.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: not a training run directory (no {CONFIG_FILE})")
    config, crop_size = read_run_config(run_dir)
    weights_path = run_dir / f"{weights}.weights.h5"
    if not weights_path.is_file():
        raise ConfigError(f"{run_dir}: no {weights_path.name} (has the run finished an epoch?)")
    model = build_model(config, crop_size)
    load_checked(model, weights_path, config.coils == "multicoil", f"model '{config.model}' of {config_path}")
    return model, config
