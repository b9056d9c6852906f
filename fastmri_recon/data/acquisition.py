"""How k-space is sampled: the acquisition object every command, the training loop and the evaluation take.

Two kinds, each able to say what it is in a table (`describe_acquisition`):

- Cartesian: a `data.masks.MaskSampler` (mask type, accelerations, centre fractions, seed policy:
  a seed from the file name gives every slice of a volume, and every method, the same mask);
- non-Cartesian: a `NonCartesianAcquisition`, the trajectory kind and its options, the grid and the
  density compensation of samples simulated from images by the non-Cartesian pipelines
  (`data.datasets.noncartesian` for slices of fastMRI files, `data.datasets.volume3d` for volumes),
  or images sampled by a model that learns its trajectory.
"""

import dataclasses

import tensorflow as tf

from fastmri_recon.data.datasets import NonCartesianConfig, Volume3DConfig, noncartesian_dataset, volume3d_dataset
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NonCartesianAcquisition:
    """A simulated non-Cartesian acquisition, for training and evaluation (what `MaskSampler` is to Cartesian data).

    Attributes:
        pipeline: a `NonCartesianConfig` (2D radial / spiral samples simulated from fastMRI files)
            or a `Volume3DConfig` (3D samples simulated from volumes).
        density_compensation: True: the models get the pipeline's Pipe-Menon density; False: unit
            density (they then apply the plain adjoint ``A^H``).
        learned: the trajectory is learned by the model (`models.learned_trajectory`, 2D): the
            pipeline gives the images on the grid, which the model samples on its own trajectory
            (``pipeline.trajectory`` is the kind it started from).

    Raises:
        ConfigError: when ``pipeline`` is not one of the two configurations, or for a learned 3D
            acquisition or one without density compensation.
    """

    pipeline: object
    density_compensation: bool = True
    learned: bool = False

    def __post_init__(self):
        if type(self.pipeline) not in (NonCartesianConfig, Volume3DConfig):
            raise ConfigError(f"pipeline: expected a NonCartesianConfig or a Volume3DConfig, got {type(self.pipeline).__name__}")
        if self.learned and (self.volumetric or not self.density_compensation):
            raise ConfigError("a learned trajectory is 2D and always density-compensated (its Pipe-Menon density follows it)")

    @property
    def volumetric(self):
        """True for 3D acquisitions (`Volume3DConfig`)."""
        return isinstance(self.pipeline, Volume3DConfig)

    @property
    def scale_factor(self):
        """The factor the pipeline multiplies samples and targets by."""
        return self.pipeline.scale_factor

    def dataset(self, source, training=False, input_context=None):
        """The pipeline's ``tf.data.Dataset`` of ``((kspace, trajectory, density[, smaps]), target)`` batches.

        Args:
            source: 2D: a directory of fastMRI files; 3D: a directory of NIfTI volumes or an
                array ``(n, D, H, W)`` of ``volume_shape`` volumes.
            training: the pipelines' training mode (shuffling; phase augmentation in 2D).
            input_context: optional ``tf.distribute.InputContext`` (2D only: the 3D pipeline
                reads every volume and batches ``batch_size`` of them).

        Returns:
            the dataset of `noncartesian_dataset` / `volume3d_dataset`, with float32 ones as
            density ``(batch, M)`` when ``density_compensation`` is False.
        """
        if self.volumetric:
            dataset = volume3d_dataset(source, self.pipeline, training)
        else:
            dataset = noncartesian_dataset(source, self.pipeline, training, input_context, images=self.learned)
        return dataset if self.density_compensation else dataset.map(_unit_density)

    def on_grid(self, image_shape, **changes):
        """A copy simulating on ``image_shape`` (``(H, W)`` or ``(D, H, W)``: a model's grid), other pipeline fields changed."""
        grid = "volume_shape" if self.volumetric else "image_shape"
        pipeline = dataclasses.replace(self.pipeline, **{grid: tuple(image_shape)}, **changes)
        return dataclasses.replace(self, pipeline=pipeline)

    def describe(self):
        """A short text, e.g. ``"radial x4"``, ``"spiral x8 (n_shots=8), off-resonance known"``,
        ``"kooshball x4, no density compensation"``."""
        options = ", ".join(f"{key}={value}" for key, value in sorted(self.pipeline.trajectory_options.items()))
        kind = f"learned-{self.pipeline.trajectory}" if self.learned else self.pipeline.trajectory
        text = f"{kind} x{self.pipeline.acceleration:g}" + (f" ({options})" if options else "")
        off_resonance = getattr(self.pipeline, "off_resonance", None)  # 2D pipelines only
        if off_resonance is not None:
            text += f", off-resonance {off_resonance}"
        return text if self.density_compensation else f"{text}, no density compensation"


def _unit_density(inputs, target):
    kspace, trajectory, density = inputs[:3]
    return (kspace, trajectory, tf.ones_like(density)) + tuple(inputs[3:]), target


def describe_sampler(sampler):
    """A short text for a `MaskSampler`, e.g. ``"random x4 (cf 0.08)"``."""
    pairs = ", ".join(f"x{a:g} (cf {c:g})" for c, a in zip(sampler.center_fractions, sampler.accelerations))
    return f"{sampler.mask_type} {pairs}"


def describe_acquisition(acquisition):
    """A short text for a `MaskSampler` or a `NonCartesianAcquisition`."""
    return describe_sampler(acquisition) if isinstance(acquisition, MaskSampler) else acquisition.describe()
