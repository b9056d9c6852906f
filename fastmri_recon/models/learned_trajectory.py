"""Learned non-Cartesian trajectories: a trainable, hardware-constrained trajectory in front of a non-Cartesian model.

`LearnedTrajectory` (a Keras layer) holds the trajectory samples themselves as a trainable float32 variable
``(ndim, n_shots * L)`` (radians, shot by shot, as `data.trajectories`), initialised from a radial or spiral
trajectory of `data.trajectories` projected onto the gradient hardware's limits
(`data.gradient_limits.ReadoutConstraints`: maximum gradient amplitude and slew rate at a raster time, for a field
of view; spiral shots start at the centre with the gradient off). Feasibility holds at every step:

- after each optimiser update, the variable's Keras constraint (`HardwareConstraint`, applied by every Keras 3
  optimiser after ``apply_gradients``) replaces it by its projection;
- the trajectory the network sees (`LearnedTrajectory.trajectory`) is the projection of the variable, with the
  identity as its gradient (a straight-through estimator). The projection is the identity on a feasible
  variable, so this is the variable itself after any optimiser step, and a feasible trajectory after any other
  change (weights loaded from elsewhere, a manual ``assign``).

The learning rate of the trajectory is the optimiser's times ``parameter_scale`` (a power of two, so that the
scaling is exact in float32): the variable holds ``trajectory / parameter_scale``; with Adam-type optimisers the
trajectory then moves by about ``learning_rate * parameter_scale`` radians per step.

`LearnedTrajectoryModel` (a Keras model) simulates the acquisition and reconstructs it: its inputs are the
images on the model's grid (what the non-Cartesian pipelines sample, `data.datasets.noncartesian`), it samples
them on the current trajectory with the NUFFT (with trajectory gradients), computes the Pipe-Menon density
compensation of the current trajectory (`data.density.pipe_menon_density`, the pipelines' weights, recomputed at
every call; by default under ``stop_gradient``, a preconditioner that follows the trajectory, and with
``density_gradient=True`` differentiated through the Pipe-Menon iterations, so that the gradient also sees how
the weights move; the kernel's edge, where the exact derivative is infinite, contributes none), and calls a
non-Cartesian registry model (`models.nc_base`) on ``(samples, trajectory, density[, smaps])``. The reconstructor's NUFFT plan gets trajectory gradients too (`_with_trajectory_gradient`), so the
loss's gradient reaches the trajectory through the simulation and through every unrolled iteration.

`trajectory_figure` draws the initial and learned trajectories and their gradient and slew-rate waveforms with
the limits.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.data.density import DEFAULT_ITERATIONS, pipe_menon_density
from fastmri_recon.data.gradient_limits import DEFAULT_PROJECTION_ITERATIONS, GradientSystem, ReadoutConstraints
from fastmri_recon.data.trajectories import (
    LEARNED_TRAJECTORIES,
    SPIRAL_SHOTS,
    learned_base,
    make_trajectory,
    spokes_for_acceleration,
)
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.nufft import DEFAULT_EPS, NUFFTPlan

KINDS = ("radial", "spiral")
"""Trajectory kinds a `LearnedTrajectory` starts from (spiral shots start at the centre, radial spokes do not)."""

DEFAULT_FOV = 0.22
"""Default field of view, metres (the demo data's, `data.demo.FIELD_OF_VIEW_MM`)."""


def default_shots(kind, image_shape, acceleration):
    """Number of shots of a kind when none is given: the radial spokes of the acceleration, the spiral's default.

    Args:
        kind: one of `KINDS`.
        image_shape: ``(H, W)``.
        acceleration: factor against Nyquist (`data.trajectories`).

    Returns:
        int.
    """
    if kind == "radial":
        return spokes_for_acceleration(max(image_shape), acceleration)
    return SPIRAL_SHOTS


def initial_trajectory(kind, image_shape, acceleration, n_shots=None, readout_length=None, options=None):
    """The textbook trajectory a learned one starts from (not yet projected onto the limits).

    Args:
        kind: ``"radial"`` (golden-angle full-diameter spokes) or ``"spiral"`` (interleaved Archimedean).
        image_shape: ``(H, W)``.
        acceleration: factor against Nyquist.
        n_shots: spokes / interleaves (default `default_shots`).
        readout_length: samples per shot (default: the kind's, ``2 max(H, W)`` for spokes).
        options: other arguments of the trajectory function (e.g. ``{"density_power": 2}``).

    Returns:
        ``(trajectory, n_shots)``: float32 ``(2, n_shots * L)`` radians, and the number of shots.

    Raises:
        ConfigError: for an unknown kind or bad options.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
    if len(tuple(image_shape)) != 2:
        raise ConfigError(f"learned trajectories are 2D: image_shape must be (H, W), got {image_shape!r}")
    n_shots = default_shots(kind, image_shape, acceleration) if n_shots is None else n_shots
    options = dict(options or {})
    options["n_spokes" if kind == "radial" else "n_shots"] = n_shots
    if readout_length is not None:
        options["n_samples"] = readout_length
    try:
        trajectory = make_trajectory(kind, image_shape, acceleration, **options)
    except TypeError as err:
        raise ConfigError(f"trajectory_options={options!r} for a {kind} trajectory: {err}") from None
    return trajectory, int(n_shots)


def _power_of_two(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.frexp(value)[0] != 0.5:
        raise ConfigError(f"{name} must be a power of two (exact float32 scaling), got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class HardwareConstraint(keras.constraints.Constraint):
    """Keras constraint: the projection of a (scaled) trajectory variable onto the hardware limits.

    Args:
        constraints: `ReadoutConstraints` or its dict.
        parameter_scale: the variable holds ``trajectory / parameter_scale``.
        n_iter: projection iterations.

    Call args:
        w: float32 variable value ``(ndim, n_shots * L)``.

    Returns:
        float32 ``(ndim, n_shots * L)``: ``project(w * scale) / scale``.
    """

    def __init__(self, constraints, parameter_scale=1.0, n_iter=DEFAULT_PROJECTION_ITERATIONS):
        self.constraints = constraints if isinstance(constraints, ReadoutConstraints) else ReadoutConstraints.from_dict(constraints)
        self.parameter_scale = _power_of_two("parameter_scale", parameter_scale)
        self.n_iter = int(n_iter)

    def __call__(self, w):
        return self.constraints.project(w * self.parameter_scale, self.n_iter) / self.parameter_scale

    def get_config(self):
        return {"constraints": self.constraints.to_dict(), "parameter_scale": self.parameter_scale, "n_iter": self.n_iter}


@keras.saving.register_keras_serializable(package="fastmri_recon")
class LearnedTrajectory(keras.layers.Layer):
    """A trainable 2D trajectory that always meets the gradient hardware's limits.

    Args:
        kind: ``"radial"`` or ``"spiral"``: the initial trajectory (`initial_trajectory`).
        image_shape: the image grid ``(H, W)``.
        acceleration: factor against Nyquist of the initial trajectory.
        n_shots: spokes / interleaves (default `default_shots`).
        readout_length: samples per shot (default: the kind's).
        trajectory_options: other arguments of the trajectory function, or None.
        fov: field of view, metres (a number or one per axis).
        system: `GradientSystem` fields as a dict (default: 40 mT/m, 150 T/m/s, 10 us, Euclidean norm).
        projection_iterations: iterations of the projection (`ReadoutConstraints.project`).
        parameter_scale: power of two; the variable holds ``trajectory / parameter_scale`` (a learning rate
            ``parameter_scale`` times the optimiser's, for Adam-type optimisers).

    Attributes:
        constraints: the `ReadoutConstraints` (spiral shots start at the centre).
        n_samples: ``n_shots * L``.

    Raises:
        ConfigError: for bad options.
    """

    def __init__(self, kind="radial", image_shape=(64, 64), acceleration=4.0, n_shots=None, readout_length=None,
                 trajectory_options=None, fov=DEFAULT_FOV, system=None, projection_iterations=DEFAULT_PROJECTION_ITERATIONS,
                 parameter_scale=1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")  # no autocasting: float16 radians would lose the NUFFT's accuracy
        super().__init__(**kwargs)
        self.kind = kind
        self.image_shape = tuple(int(n) for n in image_shape)
        self.acceleration = float(acceleration)
        self.readout_length = readout_length
        self.trajectory_options = dict(trajectory_options or {})
        self.parameter_scale = _power_of_two("parameter_scale", parameter_scale)
        self.projection_iterations = int(projection_iterations)
        start, self.n_shots = initial_trajectory(kind, self.image_shape, acceleration, n_shots, readout_length,
                                                 self.trajectory_options)
        if isinstance(system, GradientSystem):
            system = system.to_dict()
        self.system = GradientSystem.from_dict(dict(system or {}))
        self.fov = fov
        self.constraints = ReadoutConstraints(self.image_shape, fov, self.n_shots, kind == "spiral", self.system)
        initial = self.constraints.project(start, self.projection_iterations).numpy()
        self.n_samples = int(initial.shape[1])
        self._create_variables(initial)

    def _create_variables(self, initial):
        """The trainable trajectory (scaled) and the (non-trainable) initial one, both from ``initial`` ``(2, M)``."""
        shape = (2, self.n_samples)
        scaled = initial / self.parameter_scale
        self.points = self.add_weight(
            name="trajectory", shape=shape, initializer=keras.initializers.Constant(scaled), trainable=True,
            constraint=HardwareConstraint(self.constraints, self.parameter_scale, self.projection_iterations),
            aggregation="mean",
        )
        self.initial = self.add_weight(
            name="initial_trajectory", shape=shape, initializer=keras.initializers.Constant(initial), trainable=False
        )
        self.built = True

    def trajectory(self):
        """The trajectory the network uses: float32 tensor ``(2, n_shots * L)``, radians, feasible.

        The projection of the variable (the variable itself after an optimiser step), with the identity as its
        gradient.
        """
        raw = tf.convert_to_tensor(self.points) * self.parameter_scale
        return raw + tf.stop_gradient(self.constraints.project(raw, self.projection_iterations) - raw)

    def learned(self):
        """The current trajectory as a NumPy float32 array ``(2, n_shots * L)`` (feasible)."""
        return self.trajectory().numpy()

    def initial_points(self):
        """The initial (projected) trajectory as a NumPy float32 array ``(2, n_shots * L)``."""
        return np.asarray(self.initial.numpy())

    def get_config(self):
        return {
            **super().get_config(), "kind": self.kind, "image_shape": self.image_shape, "acceleration": self.acceleration,
            "n_shots": self.n_shots, "readout_length": self.readout_length, "trajectory_options": self.trajectory_options,
            "fov": list(self.constraints.fov), "system": self.system.to_dict(),
            "projection_iterations": self.projection_iterations, "parameter_scale": self.parameter_scale,
        }


def _with_trajectory_gradient(model):
    """Make the non-Cartesian ``model``'s NUFFT plans compute trajectory gradients (`NonCartesianModel.trajectory_gradient`).

    Raises:
        ConfigError: for another model than a non-Cartesian one, or one with ``phase_normalization``
            (its phase estimate is not differentiated with respect to the trajectory).
    """
    if getattr(model, "acquisition", None) != "noncartesian" or not hasattr(model, "trajectory_gradient"):
        raise ConfigError(f"reconstructor: expected a non-Cartesian model (models.nc_base), got {type(model).__name__}")
    if model.phase_normalization:
        raise ConfigError(f"reconstructor {type(model).__name__}: phase_normalization=True is not supported with a learned trajectory")
    model.trajectory_gradient = True
    return model


@keras.saving.register_keras_serializable(package="fastmri_recon")
class LearnedTrajectoryModel(keras.Model):
    """Simulated acquisition on a `LearnedTrajectory` followed by a non-Cartesian reconstructor.

    Args:
        reconstructor: a non-Cartesian model (`models.nc_base.NonCartesianModel`, e.g. NC-PDNet) on the
            trajectory's grid, without ``phase_normalization``; or its Keras serialisation.
        trajectory: a `LearnedTrajectory`, or its Keras serialisation.
        density_iterations: Pipe-Menon iterations (the pipelines' default).
        sampling_eps: NUFFT accuracy of the simulated acquisition (the pipelines' default).
        density_gradient: differentiate the density compensation with respect to the trajectory
            (through the Pipe-Menon iterations), so that the trajectory's gradient includes how its
            density moves with it; False (the default): the density is recomputed at every call
            but held fixed in the gradient.

    Call args:
        inputs: images on the grid, complex64 ``(batch, H, W)`` (single-coil) or coil images
            ``(batch, coils, H, W)``, or ``(coil images, smaps)`` with smaps complex64 ``(batch, coils, H, W)``.

    Returns:
        the reconstructor's output, float32 ``(batch, h, w)``.

    Raises:
        ConfigError: for a reconstructor on another grid or with phase normalisation.
    """

    acquisition = "learned"

    def __init__(self, reconstructor, trajectory, density_iterations=DEFAULT_ITERATIONS, sampling_eps=DEFAULT_EPS,
                 density_gradient=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(reconstructor, dict):
            reconstructor = keras.saving.deserialize_keras_object(reconstructor)
        if isinstance(trajectory, dict):
            trajectory = keras.saving.deserialize_keras_object(trajectory)
        if not isinstance(trajectory, LearnedTrajectory):
            raise ConfigError(f"trajectory: expected a LearnedTrajectory, got {type(trajectory).__name__}")
        self.reconstructor = _with_trajectory_gradient(reconstructor)
        if tuple(reconstructor.image_shape) != trajectory.image_shape:
            raise ConfigError(
                f"reconstructor image_shape {tuple(reconstructor.image_shape)} differs from the trajectory's {trajectory.image_shape}"
            )
        self.trajectory_layer = trajectory
        self.density_iterations = int(density_iterations)
        self.sampling_eps = float(sampling_eps)
        self.density_gradient = bool(density_gradient)
        self.crop_size = getattr(reconstructor, "crop_size", None)

    @property
    def image_shape(self):
        """The image grid ``(H, W)``."""
        return self.trajectory_layer.image_shape

    @property
    def needs_smaps(self):
        """Whether multi-coil inputs carry sensitivity maps (the reconstructor's)."""
        return self.reconstructor.needs_smaps

    def build(self, input_shape):
        """Create the reconstructor's weights by a call on zero inputs of ``input_shape`` (the trajectory's exist).

        Args:
            input_shape: the images' shape ``(batch, [coils,] H, W)``, or ``[images_shape, smaps_shape]``.
        """
        nested = isinstance(input_shape, (list, tuple)) and len(input_shape) == 2 and isinstance(input_shape[0], (list, tuple))
        images_shape = tuple(input_shape[0] if nested else input_shape)
        coils = images_shape[1] if len(images_shape) == 4 else None
        self.call(self.dummy_inputs(coils=coils) if nested or coils is None else np.zeros((1, *images_shape[1:]), np.complex64))
        self.built = True

    def density_of(self, trajectory):
        """The density compensation the model uses for ``trajectory``: float32 ``(M,)``, differentiable
        with respect to it with ``density_gradient`` (else held fixed in the gradient).

        Args:
            trajectory: float32 ``(2, M)``.
        """
        if self.density_gradient:
            return pipe_menon_density(trajectory, self.image_shape, self.density_iterations)
        return tf.stop_gradient(pipe_menon_density(tf.stop_gradient(trajectory), self.image_shape, self.density_iterations))

    def trajectory_and_density(self):
        """The current trajectory, float32 ``(2, M)`` (feasible), and its density compensation, float32 ``(M,)``."""
        trajectory = self.trajectory_layer.trajectory()
        return trajectory, self.density_of(trajectory)

    def _split(self, inputs):
        if isinstance(inputs, (tuple, list)):
            if len(inputs) != 2:
                raise DataError(f"LearnedTrajectoryModel: inputs are images or (coil images, smaps), got {len(inputs)} inputs")
            images, smaps = inputs
        else:
            images, smaps = inputs, None
        images = tf.convert_to_tensor(images)
        if images.dtype != tf.complex64 or images.shape.rank not in (3, 4) or tuple(images.shape[-2:]) != self.image_shape:
            raise DataError(
                f"LearnedTrajectoryModel: images must be complex64 (batch, [coils,] {self.image_shape[0]}, {self.image_shape[1]}), "
                f"got {images.dtype.name} of shape {tuple(images.shape)}"
            )
        return images, smaps

    def call(self, inputs, training=False):
        images, smaps = self._split(inputs)
        trajectory, density = self.trajectory_and_density()
        return self.reconstruct(images, trajectory, density, smaps, training=training)

    def reconstruct(self, images, trajectory, density, smaps=None, training=False):
        """Sample ``images`` on ``trajectory`` and reconstruct them with ``density``: the model for a given trajectory.

        Differentiable with respect to ``trajectory`` (through the simulation and the reconstructor).

        Args:
            images: complex64 ``(batch, [coils,] H, W)``.
            trajectory: float32 ``(2, M)``, radians.
            density: float32 ``(M,)``.
            smaps: complex64 ``(batch, coils, H, W)`` or None.
            training: passed to the reconstructor.

        Returns:
            float32 ``(batch, h, w)``.
        """
        samples = NUFFTPlan(trajectory, self.image_shape, eps=self.sampling_eps, grad_traj=True).forward(images)
        batch = tf.shape(images)[0]
        n_samples = tf.shape(trajectory)[1]
        recon_inputs = (
            samples,
            tf.broadcast_to(trajectory[None], tf.stack([batch, 2, n_samples])),
            tf.broadcast_to(density[None], tf.stack([batch, n_samples])),
        )
        if smaps is not None:
            recon_inputs += (tf.convert_to_tensor(smaps),)
        return self.reconstructor(recon_inputs, training=training)

    def dummy_inputs(self, batch=1, coils=None):
        """Zero images to build the model: complex64 ``(batch, [coils,] H, W)`` (with uniform maps for coils)."""
        if coils is None:
            return np.zeros((batch, *self.image_shape), np.complex64)
        images = np.zeros((batch, coils, *self.image_shape), np.complex64)
        return images, np.full(images.shape, coils**-0.5, np.complex64)

    def get_config(self):
        return {
            **super().get_config(),
            "reconstructor": keras.saving.serialize_keras_object(self.reconstructor),
            "trajectory": keras.saving.serialize_keras_object(self.trajectory_layer),
            "density_iterations": self.density_iterations,
            "sampling_eps": self.sampling_eps,
            "density_gradient": self.density_gradient,
        }


# --------------------------------------------------------------------------------------------------
# Export and figure
# --------------------------------------------------------------------------------------------------


def with_learned_trajectory(reconstructor, trajectory, acceleration, options=None):
    """A non-Cartesian model behind a `LearnedTrajectory` of a run's ``trajectory`` (`LEARNED_TRAJECTORIES`).

    Args:
        reconstructor: a non-Cartesian model on the run's 2D grid.
        trajectory: ``"learned-radial"`` or ``"learned-spiral"``.
        acceleration: the acceleration of the initial trajectory.
        options: `LearnedTrajectory` arguments (``n_shots``, ``readout_length``, ``trajectory_options``,
            ``fov``, ``system``, ``projection_iterations``, ``parameter_scale``) and the model's
            ``density_gradient``, or None.

    Returns:
        a `LearnedTrajectoryModel`.

    Raises:
        ConfigError: for an unknown trajectory name or bad options.
    """
    if learned_base(trajectory) is None:
        raise ConfigError(f"trajectory={trajectory!r}: expected one of {', '.join(LEARNED_TRAJECTORIES)}")
    layer_options = dict(options or {})
    density_gradient = layer_options.pop("density_gradient", False)
    if not isinstance(density_gradient, bool):
        raise ConfigError(f"trajectory_options density_gradient={density_gradient!r}: expected true or false")
    try:
        layer = LearnedTrajectory(learned_base(trajectory), reconstructor.image_shape, acceleration, **layer_options)
    except (TypeError, ValueError) as err:  # Keras refuses unknown keyword arguments with a ValueError
        raise ConfigError(f"trajectory_options={options!r} for a {trajectory} trajectory: {err}") from None
    return LearnedTrajectoryModel(reconstructor, layer, density_gradient=density_gradient)


def trajectory_report(layer):
    """What to save beside a run: the trajectories, their constraints and violations (JSON-ready, arrays apart).

    Args:
        layer: a built `LearnedTrajectory`.

    Returns:
        ``(arrays, summary)``: ``arrays`` a dict ``{"learned": (2, M), "initial": (2, M)}`` of float32 arrays;
        ``summary`` a dict with the layer's config, the constraints and each trajectory's `Violations`.
    """
    arrays = {"learned": layer.learned(), "initial": layer.initial_points()}
    summary = {
        "config": layer.get_config(),
        "constraints": layer.constraints.to_dict(),
        "violations": {name: layer.constraints.violations(value).to_dict() for name, value in arrays.items()},
    }
    return arrays, summary


def _shot_time(constraints, count):
    return np.arange(count) * constraints.system.raster_time * 1e3  # ms


def trajectory_figure(path, constraints, trajectories, shots=(0,), title=None):
    """Write a PNG: each trajectory in k-space, and the gradient and slew-rate waveforms of some shots with the limits.

    Args:
        path: output ``.png`` path (written atomically).
        constraints: the `ReadoutConstraints` of the trajectories.
        trajectories: dict name -> float ``(2, n_shots * L)`` radians (e.g. ``{"initial": ..., "learned": ...}``).
        shots: indices of the shots whose waveforms are drawn.
        title: optional figure title.

    Returns:
        the written path.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    from fastmri_recon.files import atomic_path  # pylint: disable=import-outside-toplevel

    names = list(trajectories)
    fig, axes = plt.subplots(3, len(names), figsize=(4.2 * len(names), 11), squeeze=False, layout="constrained")
    system = constraints.system
    for column, name in enumerate(names):
        shot_points = constraints.shots(trajectories[name])
        gradients = constraints.gradients(trajectories[name]) * 1e3  # mT/m
        slews = constraints.slew_rates(trajectories[name])
        ax = axes[0, column]
        for index, shot in enumerate(shot_points):
            ax.plot(shot[:, 1], shot[:, 0], lw=0.6, color="C3" if index in shots else "0.6")
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_aspect("equal")
        ax.set_xlabel("k_col (rad)")
        ax.set_ylabel("k_row (rad)")
        ax.set_title(f"{name}: {constraints.n_shots} shots x {shot_points.shape[1]} samples", fontsize=9)
        for row, (values, limit, unit) in enumerate(
            ((gradients, system.max_gradient * 1e3, "gradient (mT/m)"), (slews, system.max_slew, "slew rate (T/m/s)")), start=1
        ):
            ax = axes[row, column]
            time = _shot_time(constraints, values.shape[1])
            for shot in shots:
                ax.plot(time, values[shot, :, 1], lw=0.8, label=f"shot {shot}, col")
                ax.plot(time, values[shot, :, 0], lw=0.8, ls="--", label=f"shot {shot}, row")
                norm = np.sqrt(np.sum(values[shot] ** 2, -1)) if system.norm == "euclidean" else np.abs(values[shot]).max(-1)
                ax.plot(time, norm, lw=1.0, color="k", label=f"shot {shot}, {system.norm} norm")
            for sign in (1, -1):
                ax.axhline(sign * limit, color="r", lw=0.8, ls=":")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel(unit)
            ax.set_ylim(-1.1 * limit, 1.1 * limit)
            if column == 0:
                ax.legend(fontsize=6, loc="lower right")
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
