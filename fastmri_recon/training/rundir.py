"""A training run's directory: the one place that writes and reads what a run is.

``RUN_DIR`` (``output_dir/run_name``) holds:

- ``config.json``: ``{"config": TrainConfig.to_json(), "crop_size": [h, w] | [d, h, w], "version",
  "strategy"}``, written when training starts (`RunDirectory.create`);
- ``best.weights.h5`` / ``final.weights.h5``, ``metrics.csv``, the checkpoints (`training.loop`);
- ``summary.json``, written when training ends;
- ``.lock``, locked by the process training the run (`RunDirectory.lock`);
- for a run that learns its trajectory, ``trajectory.npy`` / ``trajectory_initial.npy`` / ``.json`` /
  ``.png`` (`RunDirectory.write_trajectory`).

Everything derived from a run's configuration that a command needs to use its weights lives here
too: the model (`build_model`, `RunDirectory.model`), its full constructor configuration with the
grid of a non-Cartesian run (`RunDirectory.model_config`), the k-space scale, the coil compression and
the acquisition the data were simulated or undersampled with (`acquisition`). Training
(`training.run`), ``evaluate``, ``reconstruct`` and the hub (`hub.locate`, `hub.publish`) read a run
through `RunDirectory` only.
"""

import contextlib
import dataclasses
import fcntl
import json
from pathlib import Path

import numpy as np

from fastmri_recon.data.datasets import demo_volumes
from fastmri_recon.data.datasets.volume3d import nifti_paths
from fastmri_recon.data.h5 import list_volumes, target_shape
from fastmri_recon.errors import ConfigError, quote
from fastmri_recon.data.acquisition import NonCartesianAcquisition
from fastmri_recon.files import atomic_path, make_directory, write_text
from fastmri_recon.models.learned_trajectory import trajectory_figure, trajectory_report, with_learned_trajectory
from fastmri_recon.models.registry import build, get_entry
from fastmri_recon.models.weights import load_checked
from fastmri_recon.training.config import DEMO_VOLUMES, from_dict

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
"""Locked by the process training a run: a second one is refused."""
WEIGHTS = ("best", "final")
DEMO_VOLUME_SPLITS = {"train": (6, 0), "val": (2, 1)}
"""The demo volumes of 3D runs with ``data_dir: demo-volumes``: split -> (volumes, seed of `demo_volumes`)."""
RESUMABLE_CHANGES = ("epochs", "cache_dir")
"""The fields a resumed run may change: train longer, or read the same batches from a TFRecord cache."""


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


def model_grid(config, crop_size):
    """The image grid of a non-Cartesian run's model: ``volume_shape`` (3D), else ``image_shape`` or the targets' size ``crop_size``; None for Cartesian runs."""
    if config.acquisition != "noncartesian":
        return None
    return tuple(config.volume_shape if config.volumetric else (config.image_shape or crop_size))


def build_model(config, crop_size):
    """The run's model: the registry's class with the run's ``model_config``, non-Cartesian models on `model_grid`.

    Raises:
        ConfigError: for an unknown model or constructor argument.
    """
    cls = get_entry(config.model).load_class()
    grid = model_grid(config, crop_size)
    try:
        model = build(config.model, crop_size=crop_size, **({} if grid is None else {"image_shape": grid}), **config.model_config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model_config for '{config.model}' ({cls.__name__}): {err}") from None
    if config.learned:
        return with_learned_trajectory(model, config.trajectory, config.accelerations[0], config.trajectory_options)
    return model


def acquisition(config, seed):
    """The run's data pipeline at ``seed``: a Cartesian pipeline configuration or a `NonCartesianAcquisition`.

    The non-Cartesian one (at ``config.seed``) is also what evaluating the run simulates by default.
    """
    pipeline = config.pipeline(seed)
    if config.acquisition == "cartesian":
        return pipeline
    return NonCartesianAcquisition(pipeline, config.density_compensation, learned=config.learned)


def evaluation_sampler(config):
    """What evaluating the run samples by default: its `MaskSampler` (Cartesian) or its `NonCartesianAcquisition`."""
    data = acquisition(config, config.seed)
    return data.mask_sampler() if config.acquisition == "cartesian" else data


def _write_json(path, content):
    write_text(path, json.dumps(content, indent=2) + "\n")


def _read_stored(path):
    """``config.json``'s object, or None when the file is not a run's (missing, not JSON, no ``config`` / ``crop_size``)."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return stored if isinstance(stored, dict) and "config" in stored and "crop_size" in stored else None


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """A training run directory and the run it holds.

    Attributes:
        path: the directory.
        config: the run's `TrainConfig`.
        crop_size: the size of the run's outputs, ``(h, w)`` or (3D) ``(d, h, w)``.
        version: the package version that started the run (``"unknown"`` when not recorded).
    """

    path: Path
    config: object
    crop_size: tuple
    version: str = "unknown"

    @staticmethod
    def holds_run(path):
        """Whether ``path`` is a training run directory (a folder with a run's ``config.json``)."""
        return _read_stored(Path(path) / CONFIG_FILE) is not None

    @classmethod
    def read(cls, path):
        """The run of a directory written by ``fastmri-recon train``.

        Raises:
            ConfigError: naming the file when there is no ``config.json``, when it is not valid
                JSON, lacks the ``config`` object or the ``crop_size`` (2 or 3 positive integers), or
                holds a bad configuration.
        """
        path = Path(path)
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise ConfigError(f"{path}: not a training run directory (no {CONFIG_FILE} written by 'fastmri-recon train')")
        try:
            stored = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{config_path}: not valid JSON ({err}); expected a run's config.json") from None
        if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
            raise ConfigError(f"{config_path}: no 'config' object (the run's configuration); expected a run's config.json")
        crop_size = stored.get("crop_size")
        if not (isinstance(crop_size, list) and len(crop_size) in (2, 3) and all(type(n) is int and n > 0 for n in crop_size)):
            raise ConfigError(f"{config_path}: crop_size={quote(crop_size)}: expected 2 or 3 positive integers")
        version = stored.get("version")
        return cls(path, from_dict(stored["config"], str(config_path)), tuple(crop_size), version if isinstance(version, str) else "unknown")

    @classmethod
    def create(cls, config, crop_size, version, strategy):
        """Write ``config.json`` of a run starting (or resuming) in ``config.run_dir``; the `RunDirectory`.

        Raises:
            ConfigError: when the directory holds a run of another configuration (`check_resumable`).
        """
        cls.check_resumable(config)
        path = Path(config.run_dir)
        run = cls(path, config, tuple(crop_size), version)
        make_directory(path)
        _write_json(path / CONFIG_FILE, {"config": config.to_json(), "crop_size": list(crop_size), "version": version, "strategy": strategy})
        return run

    @classmethod
    def check_resumable(cls, config):
        """Refuse a run directory ``config.run_dir`` that holds a run of another configuration (only
        `RESUMABLE_CHANGES` may differ); nothing to check when it holds no run yet.

        Raises:
            ConfigError: naming the fields that differ.
        """
        path = Path(config.run_dir)
        if not (path / CONFIG_FILE).is_file():
            return
        previous = cls.read(path).config.to_json()  # fields added since: their defaults
        changed = sorted(k for k, v in config.to_json().items() if previous.get(k) != v and k not in RESUMABLE_CHANGES)
        if changed:
            raise ConfigError(
                f"{path}: holds a run with another configuration ({', '.join(changed)} differ); "
                "choose another --run-name or --output-dir"
            )

    @staticmethod
    @contextlib.contextmanager
    def lock(path):
        """Hold an exclusive lock on the run directory ``path`` (``.lock``, created) inside the block.

        Raises:
            ConfigError: when another process holds it (it is training the same run).
        """
        make_directory(path)
        with open(Path(path) / LOCK_FILE, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{path}: another process is training this run; wait for it to end or choose another --run-name") from None
            yield

    @property
    def name(self):
        """The run's name: its directory's."""
        return self.path.resolve().name

    @property
    def scale_factor(self):
        """The factor the run's pipelines multiplied k-space and targets by."""
        return self.config.scale_factor

    @property
    def grid(self):
        """The image grid of a non-Cartesian run's model (`model_grid`), None for Cartesian runs."""
        return model_grid(self.config, self.crop_size)

    @property
    def learned(self):
        """Whether the run learned its trajectory."""
        return self.config.learned

    def compression(self):
        """The run's `SliceCompression`, or None."""
        return self.config.compression()

    def acquisition(self):
        """What evaluating the run samples by default (`evaluation_sampler`)."""
        return evaluation_sampler(self.config)

    def model_config(self):
        """The model's constructor configuration: the run's ``model_config`` with ``crop_size`` and, non-Cartesian, ``image_shape``."""
        grid = self.grid
        return {**self.config.model_config, "crop_size": list(self.crop_size), **({} if grid is None else {"image_shape": list(grid)})}

    def weights(self, which="best"):
        """The path of the run's ``best`` or ``final`` weights.

        Raises:
            ConfigError: for another value, or when the file does not exist.
        """
        if which not in WEIGHTS:
            raise ConfigError(f"weights={which!r}: expected one of {', '.join(WEIGHTS)}")
        path = self.path / f"{which}.weights.h5"
        if not path.is_file():
            raise ConfigError(f"{self.path}: no {path.name} (has the run finished an epoch?)")
        return path

    def model(self, which="best", crop_size=None):
        """The run's model with its ``best`` or ``final`` weights loaded (checked against the configuration).

        Args:
            which: ``best`` or ``final``.
            crop_size: Cartesian runs: an output size ``(h, w)`` replacing the run's (the weights do
                not depend on it; e.g. the data's reconstruction size), or None.

        Raises:
            ConfigError: missing weights, or weights that do not match the configuration.
        """
        path = self.weights(which)
        cartesian = self.config.acquisition == "cartesian"
        model = build_model(self.config, tuple(crop_size) if cartesian and crop_size is not None else self.crop_size)
        load_checked(model, path, self.config.coils == "multicoil", f"model '{self.config.model}' of {self.path / CONFIG_FILE}")
        return model

    def read_summary(self):
        """The ``summary.json`` of a finished run, or None."""
        path = self.path / SUMMARY_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def write_summary(self, summary):
        """Write ``summary.json`` (the loop's summary)."""
        _write_json(self.path / SUMMARY_FILE, summary)

    def write_trajectory(self, layer):
        """Write a learned trajectory beside the run's weights: ``trajectory.npy`` (learned) and
        ``trajectory_initial.npy`` (float32 ``(2, M)`` radians), ``trajectory.json`` (the layer's
        configuration, the hardware limits and each trajectory's constraint violations) and
        ``trajectory.png`` (both trajectories with their gradient and slew-rate waveforms).

        Args:
            layer: the run's `LearnedTrajectory` (its current, i.e. final, trajectory).
        """
        arrays, summary = trajectory_report(layer)
        for name, key in (("trajectory.npy", "learned"), ("trajectory_initial.npy", "initial")):
            with atomic_path(self.path / name) as tmp, open(tmp, "wb") as handle:
                np.save(handle, arrays[key])
        _write_json(self.path / "trajectory.json", summary)
        trajectory_figure(self.path / "trajectory.png", layer.constraints, arrays, title=f"{self.name}: initial and learned trajectories")


def load_trained_model(run_dir, weights="best"):
    """Rebuild a run's model from its ``config.json`` and load its weights.

    Args:
        run_dir: a run directory written by ``fastmri-recon train`` (`training.run.run_training`).
        weights: ``best`` or ``final``.

    Returns:
        ``(model, config)``: the built ``keras.Model`` with the weights loaded and the `TrainConfig`.

    Raises:
        ConfigError: when the directory is not a run directory (no or a bad ``config.json``), lacks
            the weights, or its weights do not match its configuration.
    """
    run = RunDirectory.read(run_dir)
    return run.model(weights), run.config
