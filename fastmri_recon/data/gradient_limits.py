"""Gradient hardware limits of non-Cartesian readouts: physical units, waveforms, violations and a projection.

Units. A trajectory sample ``w`` in radians (docs/architecture.md) meets image pixel ``n`` through
``exp(-i w . (n - N // 2))``. With a field of view of ``L`` metres over ``N`` pixels (pixel size ``dx = L / N``)
that is ``exp(-2 i pi k x)`` at the position ``x = (n - N // 2) dx`` for the physical spatial frequency
``k = w / (2 pi dx) = w N / (2 pi L)`` in 1/m: ``w = pi`` is the Nyquist edge ``k = 1 / (2 dx)``.

Time. A trajectory ``(ndim, n_shots * L)`` holds ``n_shots`` readouts (shots) of ``L`` samples, shot by shot
(the order of `data.trajectories`). Sample ``i`` of a shot is acquired at ``t = i dt`` with ``dt`` the gradient
raster time (one sample per raster point; scanners often sample faster than the raster, which this model does not
describe). The gradient is constant between two samples:

    g_i = (k_{i+1} - k_i) / (gamma dt)   in T/m,   gamma = 42.577 MHz/T (``gamma / 2 pi`` of 1H),
    s_i = (g_{i+1} - g_i) / dt           in T/m/s (slew rate).

A shot that starts at the centre (spiral interleaves) has ``k_0 = 0`` and the gradient off before it
(``g_{-1} = 0``), so its first slew rate is ``g_0 / dt``. A shot that does not (full-diameter radial spokes) starts
where a prephaser, which is not modelled, brought it, with the gradient its ramp-up gave: only the slew rates
inside the readout count.

Limits (`GradientSystem`, defaults of a clinical 3T scanner): ``|g_i| <= max_gradient`` (40 mT/m),
``|s_i| <= max_slew`` (150 T/m/s), for ``|.|`` the Euclidean norm over the axes (``norm="euclidean"``, the
default: it holds for any orientation of the readout, the safe reading of per-coil limits) or the largest axis
(``norm="axis"``: each gradient coil on its own); and ``|w_d| <= k_max`` (pi) on every axis, the NUFFT's domain.

Projection (`ReadoutConstraints.project`). The feasible set of a shot is convex (norm bounds on linear maps of
its samples, and ``k_0 = 0``), so it has a Euclidean projection. It is approximated, in units where the gradient
bound is 1, by accelerated proximal gradient (FISTA with adaptive restart) on the dual problem
``max_y min_u 1/2 |u - z|^2 + sum_j <y_j, L_j u> - c_j |y_j|_*`` with ``L_j`` the identity (box), the first and
the second differences, ``c_j`` their bounds; the primal point is ``u = z - sum_j L_j^T y_j``. Feasibility is then
made exact whatever the number of iterations: each shot is scaled towards the centre by the largest factor
``theta <= 1`` that meets every bound (the constraints are bounds on linear maps, and the all-zero shot meets
them), with the bounds tightened by a relative ``1e-5`` and by the float32 rounding of the result. A trajectory
that already meets the tightened bounds is returned unchanged (the projection is the identity there), so
projecting twice is projecting once.
"""

import dataclasses
import functools
import math

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError

GYROMAGNETIC_RATIO = 42.577e6
"""gamma / (2 pi) of hydrogen, Hz/T."""

NORMS = ("euclidean", "axis")

DEFAULT_PROJECTION_ITERATIONS = 1000
"""Dual FISTA iterations of `ReadoutConstraints.project` (feasibility does not depend on it)."""

MARGIN = 1e-5
"""Relative tightening of the bounds used by the projection (the returned trajectory meets ``(1 - MARGIN)`` times the limits)."""


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class GradientSystem:
    """The gradient hardware: amplitude and slew-rate limits, raster time.

    Attributes:
        max_gradient: maximum gradient amplitude, T/m (0.04: 40 mT/m).
        max_slew: maximum slew rate, T/m/s.
        raster_time: gradient raster time (time between two readout samples), s.
        norm: ``"euclidean"`` (limits on the norm of the gradient vector) or ``"axis"`` (on each axis).
        gyromagnetic_ratio: gamma / (2 pi), Hz/T.

    Raises:
        ConfigError: naming the first invalid field.
    """

    max_gradient: float = 0.040
    max_slew: float = 150.0
    raster_time: float = 10e-6
    norm: str = "euclidean"
    gyromagnetic_ratio: float = GYROMAGNETIC_RATIO

    def __post_init__(self):
        for name in ("max_gradient", "max_slew", "raster_time", "gyromagnetic_ratio"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {NORMS}, got {self.norm!r}")

    def to_dict(self):
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A `GradientSystem` from `to_dict`'s output (unknown keys raise a `ConfigError`)."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"gradient system: unknown fields {sorted(unknown)}")
        return cls(**values)


def _per_axis(name, value, ndim):
    values = np.broadcast_to(np.asarray(value, dtype=object), (ndim,)) if np.ndim(value) == 0 else list(value)
    if len(values) != ndim:
        raise ConfigError(f"{name} must be a number or {ndim} numbers, got {value!r}")
    return tuple(_positive(name, v) for v in values)


def radians_to_physical(trajectory, image_shape, fov):
    """Spatial frequencies in 1/m of a trajectory in radians: ``k_d = w_d N_d / (2 pi L_d)``.

    Args:
        trajectory: float array ``(ndim, ...)``, radians.
        image_shape: ``N``, ``ndim`` pixel counts.
        fov: field of view ``L`` in metres, a number or ``ndim`` numbers.

    Returns:
        float64 array of the shape of ``trajectory``, 1/m.
    """
    traj = np.asarray(trajectory, np.float64)
    ndim = len(image_shape)
    scale = np.asarray(image_shape, np.float64) / (2.0 * np.pi * np.asarray(_per_axis("fov", fov, ndim)))
    return traj * scale.reshape((ndim,) + (1,) * (traj.ndim - 1))


def physical_to_radians(kspace, image_shape, fov):
    """Inverse of `radians_to_physical`: ``w_d = 2 pi L_d k_d / N_d`` (float64, radians)."""
    k = np.asarray(kspace, np.float64)
    ndim = len(image_shape)
    scale = 2.0 * np.pi * np.asarray(_per_axis("fov", fov, ndim)) / np.asarray(image_shape, np.float64)
    return k * scale.reshape((ndim,) + (1,) * (k.ndim - 1))


@dataclasses.dataclass(frozen=True)
class Violations:
    """How far a trajectory goes beyond the limits (0 everywhere: feasible), and its extreme values.

    Attributes:
        gradient: largest excess of the gradient amplitude over ``max_gradient``, T/m.
        slew: largest excess of the slew rate over ``max_slew``, T/m/s.
        kspace: largest excess of ``|w_d|`` over ``k_max``, radians.
        start: largest ``|k_0|`` (radians) of shots that must start at the centre (0 otherwise).
        max_gradient, max_slew, max_kspace: the largest gradient amplitude (T/m), slew rate (T/m/s) and
            ``|w_d|`` (radians) of the trajectory.
    """

    gradient: float
    slew: float
    kspace: float
    start: float
    max_gradient: float
    max_slew: float
    max_kspace: float

    @property
    def feasible(self):
        """Whether every limit is met."""
        return self.gradient == 0.0 and self.slew == 0.0 and self.kspace == 0.0 and self.start == 0.0

    def to_dict(self):
        """The fields (and ``feasible``) as a JSON-serialisable dict."""
        return {**dataclasses.asdict(self), "feasible": self.feasible}


def _norm(values, norm):
    """``|.|`` over the last axis (NumPy)."""
    return np.sqrt(np.sum(values**2, axis=-1)) if norm == "euclidean" else np.max(np.abs(values), axis=-1)


def _max0(values):
    return float(values.max()) if values.size else 0.0


@dataclasses.dataclass(frozen=True)
class ReadoutConstraints:
    """The hardware constraints of the shots of a trajectory on an image grid.

    Attributes:
        image_shape: ``N``, the image grid (``ndim`` ints, 2 or 3).
        fov: field of view per axis, metres (a number is used on every axis).
        n_shots: number of shots (readouts) of the trajectories.
        start_at_centre: whether every shot starts at the k-space centre with the gradient off.
        system: the `GradientSystem`.
        k_max: bound on ``|w_d|``, radians (at most pi).

    Raises:
        ConfigError: naming the first invalid field.
    """

    image_shape: tuple
    fov: tuple = 0.22
    n_shots: int = 1
    start_at_centre: bool = False
    system: GradientSystem = GradientSystem()
    k_max: float = math.pi

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) not in (2, 3) or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
            raise ConfigError(f"image_shape must be 2 or 3 positive integers, got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", tuple(int(n) for n in shape))
        object.__setattr__(self, "fov", _per_axis("fov", self.fov, len(shape)))
        if isinstance(self.n_shots, bool) or not isinstance(self.n_shots, (int, np.integer)) or self.n_shots < 1:
            raise ConfigError(f"n_shots must be a positive integer, got {self.n_shots!r}")
        object.__setattr__(self, "n_shots", int(self.n_shots))
        if not isinstance(self.start_at_centre, (bool, np.bool_)):
            raise ConfigError(f"start_at_centre must be True or False, got {self.start_at_centre!r}")
        object.__setattr__(self, "start_at_centre", bool(self.start_at_centre))
        if isinstance(self.system, dict):
            object.__setattr__(self, "system", GradientSystem.from_dict(self.system))
        if not isinstance(self.system, GradientSystem):
            raise ConfigError(f"system must be a GradientSystem or its dict, got {self.system!r}")
        k_max = _positive("k_max", self.k_max)
        if k_max > math.pi:
            raise ConfigError(f"k_max must be at most pi (the NUFFT's domain), got {self.k_max!r}")
        object.__setattr__(self, "k_max", k_max)

    @property
    def ndim(self):
        """Number of axes, 2 or 3."""
        return len(self.image_shape)

    def to_dict(self):
        """The fields as a JSON-serialisable dict (the system as its dict)."""
        return {
            "image_shape": list(self.image_shape), "fov": list(self.fov), "n_shots": self.n_shots,
            "start_at_centre": self.start_at_centre, "system": self.system.to_dict(), "k_max": self.k_max,
        }

    @classmethod
    def from_dict(cls, values):
        """A `ReadoutConstraints` from `to_dict`'s output (unknown keys raise a `ConfigError`)."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"readout constraints: unknown fields {sorted(unknown)}")
        return cls(**{**values, "image_shape": tuple(values.get("image_shape", ()))})

    # ------------------------------------------------------------------ units
    @property
    def gradient_step(self):
        """Largest step between two samples allowed by ``max_gradient``, radians per axis: float64 ``(ndim,)``.

        ``2 pi dx_d gamma G_max dt`` with ``dx_d = fov_d / N_d``.
        """
        system = self.system
        pixel = np.asarray(self.fov) / np.asarray(self.image_shape, np.float64)
        return 2.0 * np.pi * pixel * system.gyromagnetic_ratio * system.max_gradient * system.raster_time

    @property
    def slew_bound(self):
        """``max_slew * raster_time / max_gradient``: the slew bound in units of the gradient bound per raster."""
        return self.system.max_slew * self.system.raster_time / self.system.max_gradient

    def shots(self, trajectory):
        """The shots of a trajectory: ``(ndim, n_shots * L)`` -> float64 ``(n_shots, L, ndim)`` (NumPy).

        Raises:
            DataError: for a trajectory that is not ``(ndim, n_shots * L)`` with ``L >= 3``.
        """
        traj = np.asarray(trajectory, np.float64)
        if traj.ndim != 2 or traj.shape[0] != self.ndim or traj.shape[1] % self.n_shots:
            raise DataError(
                f"trajectory must have shape ({self.ndim}, n_shots * L) with n_shots = {self.n_shots}, got {traj.shape}"
            )
        length = traj.shape[1] // self.n_shots
        if length < 3:
            raise DataError(f"shots must have at least 3 samples, got {length} (trajectory {traj.shape})")
        return traj.reshape(self.ndim, self.n_shots, length).transpose(1, 2, 0)

    def gradients(self, trajectory):
        """Gradient waveforms, T/m: float64 ``(n_shots, L - 1, ndim)``, ``g_i = (k_{i+1} - k_i) / (gamma dt)``.

        Args:
            trajectory: float ``(ndim, n_shots * L)``, radians.
        """
        k = radians_to_physical(self.shots(trajectory).transpose(2, 0, 1), self.image_shape, self.fov)
        g = np.diff(k, axis=-1) / (self.system.gyromagnetic_ratio * self.system.raster_time)
        return g.transpose(1, 2, 0)

    def slew_rates(self, trajectory):
        """Slew rates, T/m/s: float64 ``(n_shots, L - 1, ndim)`` for shots starting at the centre (the first is
        ``g_0 / dt``), ``(n_shots, L - 2, ndim)`` otherwise."""
        g = self.gradients(trajectory)
        if self.start_at_centre:
            g = np.concatenate([np.zeros_like(g[:, :1]), g], axis=1)
        return np.diff(g, axis=1) / self.system.raster_time

    def violations(self, trajectory):
        """How far ``trajectory`` (float ``(ndim, n_shots * L)``, radians) goes beyond the limits (NumPy, float64).

        Returns:
            `Violations`.
        """
        system = self.system
        g = _norm(self.gradients(trajectory), system.norm)
        s = _norm(self.slew_rates(trajectory), system.norm)
        shots = self.shots(trajectory)
        k = np.abs(shots)
        start = _max0(np.abs(shots[:, 0])) if self.start_at_centre else 0.0
        return Violations(
            gradient=max(0.0, _max0(g) - system.max_gradient),
            slew=max(0.0, _max0(s) - system.max_slew),
            kspace=max(0.0, _max0(k) - self.k_max),
            start=start,
            max_gradient=_max0(g),
            max_slew=_max0(s),
            max_kspace=_max0(k),
        )

    # ------------------------------------------------------------------ projection
    def _bounds(self):
        """Bounds in gradient units (box per axis, gradient, slew): the accepted ones and the projection's targets.

        The targets are the accepted bounds less the float32 rounding of a result (half an ulp of ``k_max`` per
        coordinate, through the first and second differences).
        """
        step = self.gradient_step
        accepted = (self.k_max * (1.0 - MARGIN) / step, 1.0 - MARGIN, self.slew_bound * (1.0 - MARGIN))
        half_ulp = 2.0 ** (math.floor(math.log2(self.k_max)) - 23)  # float32 rounding of |w| <= k_max
        per_axis = half_ulp / step
        if self.system.norm == "euclidean":
            rounding = (per_axis, 2.0 * np.linalg.norm(per_axis), 4.0 * np.linalg.norm(per_axis))
        else:
            rounding = (per_axis, 2.0 * per_axis.max(), 4.0 * per_axis.max())
        targets = tuple(a - r for a, r in zip(accepted, rounding))
        return accepted, targets

    def project(self, trajectory, n_iter=DEFAULT_PROJECTION_ITERATIONS):
        """A feasible trajectory near ``trajectory``: the approximate Euclidean projection, then exact feasibility.

        TensorFlow ops (eager or inside ``tf.function``: the Keras constraint of `models.learned_trajectory`).
        The result always meets every limit (`violations` is zero); it equals ``trajectory`` when that already
        meets the limits tightened by `MARGIN`. Shots that start at the centre get ``k_0 = 0``.

        Args:
            trajectory: float ``(ndim, n_shots * L)``, radians (tensor or array).
            n_iter: dual iterations (the accuracy of the projection, not the feasibility).

        Returns:
            float32 tensor ``(ndim, n_shots * L)``.

        Raises:
            DataError: for a trajectory of the wrong shape.
            ConfigError: for a bad ``n_iter``.
        """
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
            raise ConfigError(f"n_iter must be a positive integer, got {n_iter!r}")
        traj = tf.convert_to_tensor(trajectory)
        if traj.shape.rank != 2 or traj.shape[0] != self.ndim or traj.shape[1] is None or traj.shape[1] % self.n_shots:
            raise DataError(
                f"trajectory must have shape ({self.ndim}, n_shots * L) with n_shots = {self.n_shots}, got {traj.shape}"
            )
        length = traj.shape[1] // self.n_shots
        if length < 3:
            raise DataError(f"shots must have at least 3 samples, got {length} (trajectory {traj.shape})")
        accepted, targets = self._bounds()
        bounds = [tf.constant(np.broadcast_to(np.asarray(b, np.float64), (self.ndim,))) for b in accepted + targets]
        return _project(self.ndim, self.start_at_centre, self.system.norm)(
            tf.cast(traj, tf.float64), tf.constant(self.gradient_step, tf.float64), tf.constant(self.n_shots),
            tf.stack(bounds[:3]), tf.stack(bounds[3:]), tf.constant(int(n_iter)),
        )


@functools.lru_cache(maxsize=None)
def _project(ndim, start_at_centre, norm):
    """The compiled projection of ``ndim``-D shots that start at the centre or not, under a norm.

    One ``tf.function`` (traced once) serves every limit, field of view and shot layout:
    they come in as tensors. Its arguments: the float64 trajectory ``(ndim, n_shots * L)``, the gradient step
    per axis ``(ndim,)``, the number of shots, the accepted and the target bounds ``(3, ndim)`` (box, gradient
    and slew rows; the last two constant along the row) and the number of iterations.
    """

    def project(traj, step, n_shots, accepted, targets, n_iter):
        shots = tf.transpose(tf.reshape(traj, tf.stack([ndim, n_shots, -1])), [1, 2, 0]) / step
        prefix = 2 if start_at_centre else 0
        free = shots[:, 1:] if start_at_centre else shots
        start_ok = tf.reduce_all(tf.equal(shots[:, 0], 0.0)) if start_at_centre else tf.constant(True)
        problem = _ShotProblem(prefix, norm, (targets[0], targets[1, 0], targets[2, 0]))
        projected = tf.cond(
            tf.logical_and(start_ok, _ShotProblem(prefix, norm, (accepted[0], accepted[1, 0], accepted[2, 0])).feasible(free)),
            lambda: free,
            lambda: problem.retract(problem.solve(free, n_iter)),
        )
        if start_at_centre:
            projected = tf.concat([tf.zeros_like(projected[:, :1]), projected], axis=1)
        out = tf.reshape(tf.transpose(projected * step, [2, 0, 1]), [ndim, -1])
        return tf.cast(out, tf.float32)

    signature = [
        tf.TensorSpec([ndim, None], tf.float64), tf.TensorSpec([ndim], tf.float64), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([3, ndim], tf.float64), tf.TensorSpec([3, ndim], tf.float64), tf.TensorSpec([], tf.int32),
    ]
    return tf.function(project, input_signature=signature, autograph=False)


class _ShotProblem:
    """The projection of shots in gradient units: bounds on ``u`` (per axis), ``D P u`` and ``D D P u``.

    ``u``: float64 ``(n_shots, T, ndim)``; ``P`` puts ``prefix`` zeros before each shot (the fixed centre sample
    and the zero gradient before a shot that starts at the centre); ``D`` is the first difference along the shot.
    """

    STEP = 1.0 / 21.0  # 1 / ||L||^2 with ||I||^2 + ||D||^2 + ||D D||^2 <= 1 + 4 + 16

    def __init__(self, prefix, norm, bounds):
        """``bounds``: ``(box, gradient, slew)``, float64 tensors ``(ndim,)``, ``()``, ``()``."""
        self.prefix, self.norm = prefix, norm
        self.bounds = bounds  # float64 tensors: box (ndim,), gradient and slew scalars

    # linear maps and their adjoints
    def _pad(self, u):
        return tf.pad(u, [[0, 0], [self.prefix, 0], [0, 0]]) if self.prefix else u

    def _unpad(self, v):
        return v[:, self.prefix:]

    @staticmethod
    def _diff(v):
        return v[:, 1:] - v[:, :-1]

    @staticmethod
    def _diff_adjoint(y):
        return tf.pad(y, [[0, 0], [1, 0], [0, 0]]) - tf.pad(y, [[0, 0], [0, 1], [0, 0]])

    def apply(self, u):
        """``(u, D P u, D D P u)``."""
        first = self._diff(self._pad(u))
        return u, first, self._diff(first)

    def apply_adjoint(self, y):
        """``y_box + P^T D^T y_grad + P^T D^T D^T y_slew``."""
        box, grad, slew = y
        return box + self._unpad(self._diff_adjoint(grad + self._diff_adjoint(slew)))

    # norms and balls
    def _group_norm(self, v, index):
        if index == 0 or self.norm == "axis":
            return tf.abs(v)
        return tf.sqrt(tf.reduce_sum(v * v, axis=-1, keepdims=True))

    def _ball(self, v, index, radius):
        """Projection of ``v`` onto the ball of radius ``radius`` of constraint ``index``."""
        if index == 0 or self.norm == "axis":
            return tf.clip_by_value(v, -radius, radius)
        scale = tf.minimum(radius / tf.maximum(self._group_norm(v, index), 1e-300), 1.0)
        return v * scale

    def ratios(self, u):
        """Per shot, the largest ``|L_j u| / c_j`` over every constraint: float64 ``(n_shots,)``."""
        out = tf.zeros(tf.shape(u)[:1], tf.float64)
        for index, (value, bound) in enumerate(zip(self.apply(u), self.bounds)):
            ratio = self._group_norm(value, index) / bound
            out = tf.maximum(out, tf.reduce_max(tf.reshape(ratio, [tf.shape(u)[0], -1]), axis=1))
        return out

    def feasible(self, u):
        """Whether every shot meets the bounds (scalar bool tensor)."""
        return tf.reduce_all(self.ratios(u) <= 1.0)

    def retract(self, u):
        """Scale each shot towards zero by the largest factor ``theta <= 1`` that meets the bounds."""
        theta = tf.minimum((1.0 - 1e-12) / tf.maximum(self.ratios(u), 1e-300), 1.0)
        return u * theta[:, None, None]

    def solve(self, z, n_iter):
        """Dual FISTA with adaptive restart; returns the primal point ``z - L^T y`` (approximately feasible)."""
        step = self.STEP
        zeros = tuple(tf.zeros_like(v) for v in self.apply(z))

        def prox_step(w):
            u = z - self.apply_adjoint(w)
            moved = [w_j + step * l_j for w_j, l_j in zip(w, self.apply(u))]
            return tuple(v - self._ball(v, j, step * self.bounds[j]) for j, v in enumerate(moved))

        def body(i, y, w, t):
            y_new = prox_step(w)
            t_new = (1.0 + tf.sqrt(1.0 + 4.0 * t * t)) / 2.0
            restart = sum(tf.reduce_sum((a - b) * (b - c)) for a, b, c in zip(w, y_new, y)) > 0.0
            momentum = tf.where(restart, tf.constant(0.0, tf.float64), (t - 1.0) / t_new)
            w_new = tuple(b + momentum * (b - c) for b, c in zip(y_new, y))
            return i + 1, y_new, w_new, tf.where(restart, tf.constant(1.0, tf.float64), t_new)

        def cond(i, y, w, t):
            return tf.logical_and(i < n_iter, tf.logical_not(tf.logical_and(i > 0, self.feasible(z - self.apply_adjoint(y)))))

        _, y, _, _ = tf.while_loop(cond, body, (tf.constant(0), zeros, zeros, tf.constant(1.0, tf.float64)))
        return z - self.apply_adjoint(y)
