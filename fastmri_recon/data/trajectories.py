"""Non-Cartesian k-space trajectories: 2D radial and spiral, 3D stack-of-radial, stack-of-spirals, kooshball.

Every function returns a float32 NumPy array of shape ``(ndim, n_samples)`` in radians in
``[-pi, pi)`` (docs/architecture.md), ready for `fastmri_recon.ops.nufft`. The first coordinate goes with the
first spatial axis of the image: ``(k_row, k_col)`` in 2D and ``(k_depth, k_row, k_col)`` in 3D. The
sample ``w`` meets image pixel ``n`` through ``exp(-i w . (n - N // 2))``, so a Cartesian grid of
spacing ``2 pi / N`` samples an ``N``-pixel field of view at the Nyquist rate. Samples are ordered
readout by readout (spoke by spoke, interleaf by interleaf, partition by partition).

Acceleration is measured against the Nyquist number of readouts:

- 2D radial (full-diameter spokes through the centre): ``pi / 2 * N`` spokes, so that neighbouring
  spokes are at most ``2 pi / N`` apart at the edge of k-space;
- 2D Archimedean spiral: ``n_shots * n_turns = N / 2`` (arms ``2 pi / N`` apart); for a number of
  shots, the acceleration sets the number of turns (a fractional number of turns is allowed, so the
  acceleration is exact);
- 3D radial (kooshball): ``pi / 2 * N^2`` full-diameter spokes;
- stacks: the in-plane readouts are accelerated, the partitions (depth axis) are fully sampled on the
  Cartesian grid.

Readouts are sampled with spacing ``2 pi / (readout_oversampling * N)`` (oversampling 2 by default,
as on scanners): a radial spoke has ``2 N`` samples by default, a spiral arm is sampled uniformly in
arc length.

Registry. Each kind is a `TrajectoryKind` in `TRAJECTORY_KINDS`, added by one
`register_trajectory_kind` call in this module: its dimensions, the builder `make_trajectory` calls
and a description; the kinds a model learns (``learned-radial``, ``learned-spiral``) name the fixed
kind they start from instead of a builder. `KINDS`, `LEARNED_TRAJECTORIES`, the pipelines' kinds
(``data.datasets.nc_config``) and the weights manifest's ``trajectory`` are read from it.
"""

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable

import numpy as np

from fastmri_recon.errors import ConfigError

GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0

GOLDEN_ANGLE_RADIAL = math.pi / GOLDEN_RATIO
"""Golden angle for full-diameter spokes, ``pi / phi`` (about 111.25 degrees; Winkelmann et al. 2007)."""

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
"""Golden angle over the full circle, ``2 pi (1 - 1 / phi)`` (about 137.51 degrees)."""

GOLDEN_MEANS_3D = (0.465571231876768, 0.682327803828019)
"""The 2D golden means of Chan et al. 2009 (3D golden-means radial ordering)."""

SPIRAL_SHOTS = 16
"""Default number of interleaves of the spiral trajectories (`spiral_trajectory`, `stack_of_spirals_trajectory`)."""

_HIGH = np.nextafter(np.float32(np.pi), np.float32(0.0))  # largest float32 below pi
_LOW = np.float32(-_HIGH)  # float32(-pi) is below -pi: use the smallest float32 above it


def wrap(k):
    """Wrap radians into ``[-pi, pi)`` and cast to float32 (every float32 strictly inside).

    Args:
        k: float array of any shape.

    Returns:
        float32 array of the same shape with ``-pi < k < pi`` in float64 terms.
    """
    k = np.asarray(k, np.float64)
    k = np.mod(k + np.pi, 2.0 * np.pi) - np.pi
    return np.clip(k.astype(np.float32), _LOW, _HIGH)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(value, name, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(value) and value > minimum
    ):
        raise ConfigError(f"{name} must be a finite number > {minimum}, got {value!r}")
    return float(value)


def _acceleration(acceleration):
    return _positive_float(acceleration, "acceleration", 0.0) if acceleration is not None else 1.0


# --------------------------------------------------------------------------------------------------
# Nyquist arithmetic
# --------------------------------------------------------------------------------------------------


def nyquist_spokes(image_size):
    """Nyquist number of full-diameter spokes of a 2D radial acquisition, ``pi / 2 * N``.

    Args:
        image_size: ``N``, the number of pixels across the field of view.

    Returns:
        float.
    """
    return math.pi / 2.0 * _positive_int(image_size, "image_size")


def nyquist_spokes_3d(image_size):
    """Nyquist number of full-diameter spokes of a 3D radial (kooshball) acquisition, ``pi / 2 * N^2``.

    Args:
        image_size: ``N``.

    Returns:
        float.
    """
    return math.pi / 2.0 * _positive_int(image_size, "image_size") ** 2


def spokes_for_acceleration(image_size, acceleration, ndim=2):
    """Number of spokes for an acceleration: ``ceil(Nyquist / acceleration)``.

    Args:
        image_size: ``N``.
        acceleration: factor > 0 (1 is Nyquist).
        ndim: 2 (radial) or 3 (kooshball).

    Returns:
        int.
    """
    nyquist = nyquist_spokes(image_size) if ndim == 2 else nyquist_spokes_3d(image_size)
    return max(1, math.ceil(nyquist / _acceleration(acceleration) - 1e-9))


def spiral_turns_for_acceleration(image_size, n_shots, acceleration):
    """Turns per interleaf of an Archimedean spiral: ``N / (2 * n_shots * acceleration)``.

    Args:
        image_size: ``N``.
        n_shots: number of interleaves.
        acceleration: factor > 0.

    Returns:
        float (fractional turns are allowed).
    """
    n = _positive_int(image_size, "image_size")
    return n / (2.0 * _positive_int(n_shots, "n_shots") * _acceleration(acceleration))


# --------------------------------------------------------------------------------------------------
# 2D
# --------------------------------------------------------------------------------------------------


def radial_angles(n_spokes, golden=True, offset=0.0):
    """Spoke angles in ``[0, pi)``.

    Args:
        n_spokes: number of spokes.
        golden: golden-angle increments ``pi / phi`` (any prefix is nearly uniform) or, if False,
            uniform angles ``i pi / n_spokes``.
        offset: index of the first spoke in the golden sequence (continue a sequence), or angle
            offset in spokes for uniform angles.

    Returns:
        float64 array ``(n_spokes,)``.
    """
    idx = np.arange(_positive_int(n_spokes, "n_spokes"), dtype=np.float64) + offset
    step = GOLDEN_ANGLE_RADIAL if golden else math.pi / n_spokes
    return np.mod(idx * step, math.pi)


def _readout(n_samples):
    """Sample positions along a full-diameter spoke: ``-pi + 2 pi i / n``, centre included for even ``n``."""
    return -math.pi + 2.0 * math.pi * np.arange(n_samples, dtype=np.float64) / n_samples


def radial_trajectory(image_size=None, n_spokes=None, n_samples=None, acceleration=None, golden=True,
                      readout_oversampling=2, offset=0):
    """2D radial trajectory of full-diameter spokes, golden-angle by default.

    Args:
        image_size: ``N`` (pixels across the field of view); needed unless ``n_spokes`` and
            ``n_samples`` are both given.
        n_spokes: number of spokes; default ``ceil(pi / 2 * N / acceleration)``.
        n_samples: samples per spoke; default ``readout_oversampling * N``.
        acceleration: factor against the Nyquist number of spokes (default 1), used when
            ``n_spokes`` is not given.
        golden: golden-angle (True) or uniform (False) spoke angles, see `radial_angles`.
        readout_oversampling: samples per pixel along a spoke when ``n_samples`` is not given.
        offset: first spoke index in the golden sequence.

    Returns:
        float32 ``(2, n_spokes * n_samples)``: ``(r sin(theta), r cos(theta))`` for ``r`` in
        ``[-pi, pi)``, spoke by spoke (the spoke at angle 0 runs along the columns).

    Raises:
        ConfigError: if a needed size is missing or a value is out of range.
    """
    if n_spokes is None or n_samples is None:
        if image_size is None:
            raise ConfigError("radial_trajectory: give image_size, or both n_spokes and n_samples")
        image_size = _positive_int(image_size, "image_size")
    if n_spokes is None:
        n_spokes = spokes_for_acceleration(image_size, acceleration)
    if n_samples is None:
        n_samples = _positive_int(readout_oversampling, "readout_oversampling") * image_size
    n_spokes = _positive_int(n_spokes, "n_spokes")
    n_samples = _positive_int(n_samples, "n_samples")
    theta = radial_angles(n_spokes, golden, offset)[:, None]
    r = _readout(n_samples)[None, :]
    return wrap(np.stack([(r * np.sin(theta)).ravel(), (r * np.cos(theta)).ravel()]))


def _arc_length_samples(tau_fn, n_samples=None, spacing=None, n_fine=20000):
    """Points of a planar curve ``k(tau)``, ``tau`` in ``[0, 1]``, uniformly spaced in arc length."""
    tau = np.linspace(0.0, 1.0, n_fine)
    k = tau_fn(tau)
    arc = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(k)))])
    if n_samples is None:
        n_samples = max(2, math.ceil(arc[-1] / spacing) + 1)
    # n_samples points from the centre, the last one spacing short of the end (k stays below pi)
    targets = np.arange(n_samples) * (arc[-1] / n_samples)
    return tau_fn(np.interp(targets, arc, tau)), n_samples


def spiral_trajectory(image_size, n_shots=SPIRAL_SHOTS, acceleration=None, n_turns=None, n_samples=None, density_power=1.0,
                      readout_oversampling=2, rotation=0.0):
    """2D Archimedean (or variable-density) spiral with interleaves, sampled uniformly in arc length.

    Interleaf ``s`` is ``k(tau) = pi tau^p exp(i (2 pi n_turns tau + 2 pi s / n_shots + rotation))``
    for ``tau`` in ``[0, 1)``; ``p = density_power`` is 1 for an Archimedean spiral (uniform density)
    and larger for a spiral denser at the centre (undersampled at the edge by the same turns).

    Args:
        image_size: ``N``.
        n_shots: number of interleaves.
        acceleration: factor against Nyquist (default 1); sets ``n_turns`` when it is not given.
        n_turns: turns per interleaf; default ``N / (2 n_shots acceleration)``.
        n_samples: samples per interleaf; default: arc length / ``(2 pi / (readout_oversampling N))``.
        density_power: ``p >= 1``.
        readout_oversampling: samples per pixel along the arm when ``n_samples`` is not given.
        rotation: extra rotation of all interleaves, radians.

    Returns:
        float32 ``(2, n_shots * n_samples)``: ``(Im k, Re k)``, interleaf by interleaf.

    Raises:
        ConfigError: for values out of range.
    """
    image_size = _positive_int(image_size, "image_size")
    n_shots = _positive_int(n_shots, "n_shots")
    if n_turns is None:
        n_turns = spiral_turns_for_acceleration(image_size, n_shots, acceleration)
    n_turns = _positive_float(n_turns, "n_turns")
    power = _positive_float(density_power, "density_power", 0.0)
    if power < 1.0:
        raise ConfigError(f"density_power must be >= 1, got {density_power!r}")
    spacing = 2.0 * math.pi / (_positive_int(readout_oversampling, "readout_oversampling") * image_size)
    if n_samples is not None:
        n_samples = _positive_int(n_samples, "n_samples")

    def arm(tau):
        return math.pi * tau**power * np.exp(2j * math.pi * n_turns * tau)

    k, n_samples = _arc_length_samples(arm, n_samples, spacing)
    phases = np.exp(1j * (2.0 * math.pi * np.arange(n_shots) / n_shots + rotation))
    k = (phases[:, None] * k[None, :]).ravel()
    return wrap(np.stack([k.imag, k.real]))


# --------------------------------------------------------------------------------------------------
# 3D
# --------------------------------------------------------------------------------------------------


def _partitions(n_partitions):
    n = _positive_int(n_partitions, "n_partitions")
    return 2.0 * math.pi * (np.arange(n) - n // 2) / n


def _stack(planar, n_partitions):
    """``planar(l)`` gives the ``(2, m)`` in-plane trajectory of partition ``l``."""
    kz = _partitions(n_partitions)
    parts = []
    for index, z in enumerate(kz):
        plane = planar(index)
        parts.append(np.concatenate([np.full((1, plane.shape[1]), z, np.float64), plane], axis=0))
    return wrap(np.concatenate(parts, axis=1))


def stack_of_radial_trajectory(image_shape, n_spokes=None, n_samples=None, acceleration=None, golden=True,
                               readout_oversampling=2):
    """3D stack-of-radial ("stack of stars"): a 2D radial trajectory on every Cartesian partition.

    Args:
        image_shape: ``(D, H, W)``; ``D`` partitions along the first axis, the in-plane size is
            ``max(H, W)``.
        n_spokes: spokes per partition; default from the in-plane acceleration.
        n_samples: samples per spoke; default ``readout_oversampling * max(H, W)``.
        acceleration: in-plane acceleration against ``pi / 2 * max(H, W)`` spokes (default 1).
        golden: golden-angle spokes, the sequence continuing from one partition to the next (so
            partitions are rotated against each other); uniform spokes otherwise.
        readout_oversampling: samples per pixel along a spoke.

    Returns:
        float32 ``(3, D * n_spokes * n_samples)``: ``(k_depth, k_row, k_col)``.
    """
    depth, size = _shape_3d(image_shape)
    if n_spokes is None:
        n_spokes = spokes_for_acceleration(size, acceleration)
    return _stack(
        lambda index: radial_trajectory(size, n_spokes, n_samples, golden=golden,
                                        readout_oversampling=readout_oversampling,
                                        offset=index * n_spokes if golden else 0).astype(np.float64),
        depth,
    )


def stack_of_spirals_trajectory(image_shape, n_shots=SPIRAL_SHOTS, acceleration=None, n_turns=None, n_samples=None,
                                density_power=1.0, readout_oversampling=2):
    """3D stack of spirals: a 2D spiral on every Cartesian partition, rotated by the golden angle.

    Args:
        image_shape: ``(D, H, W)``.
        n_shots, acceleration, n_turns, n_samples, density_power, readout_oversampling: as for
            `spiral_trajectory` (in-plane size ``max(H, W)``).

    Returns:
        float32 ``(3, D * n_shots * n_samples)``: ``(k_depth, k_row, k_col)``.
    """
    depth, size = _shape_3d(image_shape)
    return _stack(
        lambda index: spiral_trajectory(size, n_shots, acceleration, n_turns, n_samples, density_power,
                                        readout_oversampling, rotation=index * GOLDEN_ANGLE).astype(np.float64),
        depth,
    )


def kooshball_directions(n_spokes, ordering="golden_means"):
    """Unit directions of full-diameter 3D spokes, on the upper hemisphere.

    Args:
        n_spokes: number of spokes.
        ordering: ``"golden_means"`` (Chan et al. 2009: ``z = frac(i g1)``, azimuth
            ``2 pi frac(i g2)``; any prefix is nearly uniform) or ``"phyllotaxis"`` (a spiral
            phyllotaxis: ``z = (i + 1/2) / n``, azimuth ``i`` golden angles; uniform for the full set).

    Returns:
        float64 ``(3, n_spokes)``: ``(z, y, x)`` components.
    """
    n = _positive_int(n_spokes, "n_spokes")
    idx = np.arange(n, dtype=np.float64)
    if ordering == "golden_means":
        z = np.mod(idx * GOLDEN_MEANS_3D[0], 1.0)
        azimuth = 2.0 * math.pi * np.mod(idx * GOLDEN_MEANS_3D[1], 1.0)
    elif ordering == "phyllotaxis":
        z = (idx + 0.5) / n
        azimuth = np.mod(idx * GOLDEN_ANGLE, 2.0 * math.pi)
    else:
        raise ConfigError(f"ordering must be 'golden_means' or 'phyllotaxis', got {ordering!r}")
    rho = np.sqrt(1.0 - z * z)
    return np.stack([z, rho * np.sin(azimuth), rho * np.cos(azimuth)])


def kooshball_trajectory(image_size=None, n_spokes=None, n_samples=None, acceleration=None, ordering="golden_means",
                         readout_oversampling=2):
    """Full 3D radial trajectory ("kooshball") of full-diameter spokes.

    Args:
        image_size: ``N`` (isotropic field of view); needed unless ``n_spokes`` and ``n_samples``
            are given.
        n_spokes: number of spokes; default ``ceil(pi / 2 * N^2 / acceleration)``.
        n_samples: samples per spoke; default ``readout_oversampling * N``.
        acceleration: factor against the Nyquist number of spokes (default 1).
        ordering: see `kooshball_directions`.
        readout_oversampling: samples per pixel along a spoke.

    Returns:
        float32 ``(3, n_spokes * n_samples)``: ``(k_depth, k_row, k_col)``, spoke by spoke.
    """
    if n_spokes is None or n_samples is None:
        if image_size is None:
            raise ConfigError("kooshball_trajectory: give image_size, or both n_spokes and n_samples")
        image_size = _positive_int(image_size, "image_size")
    if n_spokes is None:
        n_spokes = spokes_for_acceleration(image_size, acceleration, ndim=3)
    if n_samples is None:
        n_samples = _positive_int(readout_oversampling, "readout_oversampling") * image_size
    directions = kooshball_directions(n_spokes, ordering)
    r = _readout(_positive_int(n_samples, "n_samples"))
    return wrap((directions[:, :, None] * r[None, None, :]).reshape(3, -1))


def _shape_3d(image_shape):
    shape = tuple(image_shape)
    if len(shape) != 3:
        raise ConfigError(f"image_shape must be (depth, height, width), got {image_shape!r}")
    depth, height, width = (_positive_int(n, "image_shape") for n in shape)
    return depth, max(height, width)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrajectoryKind:
    """One trajectory kind of the registry `TRAJECTORY_KINDS` (see `register_trajectory_kind`).

    Attributes:
        name: the kind's name, as `make_trajectory`, the pipelines' ``trajectory`` and
            ``--trajectory`` spell it.
        dimensions: 2 (image shape ``(H, W)``) or 3 (``(D, H, W)``).
        builder: ``builder(image_shape, acceleration=..., **kwargs)`` -> float32
            ``(dimensions, n_samples)`` in ``[-pi, pi)``, ``image_shape`` a tuple of ``dimensions``
            positive ints; None for a learned kind.
        description: one line for tables and help texts.
        learned_from: for a kind learned with the network (`models.learned_trajectory`), the name
            of the fixed kind it starts from; None for a fixed kind.
    """

    name: str
    dimensions: int
    builder: Callable
    description: str
    learned_from: str = None

    @property
    def learned(self):
        """Whether a model learns this trajectory during training (it has no builder)."""
        return self.learned_from is not None


TRAJECTORY_KINDS = {}
"""The registered trajectory kinds, name -> `TrajectoryKind`, in registration order."""


def register_trajectory_kind(name, dimensions, builder, description, learned_from=None):
    """Add a trajectory kind to `TRAJECTORY_KINDS`.

    `make_trajectory` and `trajectory_kind_names` know it at once; `KINDS`, `LEARNED_TRAJECTORIES`
    and the pipelines' kinds are read at import, so a kind of the package is registered in this module.

    Args:
        name: the new kind's name (not yet registered).
        dimensions: 2 or 3.
        builder: see `TrajectoryKind`; None for a learned kind.
        description: one line.
        learned_from: for a learned kind, a registered fixed kind of the same dimensions.

    Returns:
        The registered `TrajectoryKind`.

    Raises:
        ConfigError: naming the bad argument.
    """
    if not isinstance(name, str) or not name or name in TRAJECTORY_KINDS:
        registered = ", ".join(TRAJECTORY_KINDS)
        raise ConfigError(f"name must be a new trajectory kind name, got {name!r} (registered: {registered})")
    if dimensions not in (2, 3) or isinstance(dimensions, bool):
        raise ConfigError(f"trajectory kind {name!r}: dimensions must be 2 or 3, got {dimensions!r}")
    if learned_from is None and not callable(builder):
        raise ConfigError(f"trajectory kind {name!r}: builder must be callable, got {builder!r}")
    if learned_from is not None:
        base = TRAJECTORY_KINDS.get(learned_from)
        if base is None or base.learned or base.dimensions != dimensions or builder is not None:
            raise ConfigError(
                f"trajectory kind {name!r}: learned_from must name a registered fixed {dimensions}D kind and builder "
                f"be None, got learned_from={learned_from!r}, builder={builder!r}"
            )
    TRAJECTORY_KINDS[name] = TrajectoryKind(name, dimensions, builder, description, learned_from)
    return TRAJECTORY_KINDS[name]


def trajectory_kind_names(dimensions=None, learned=None):
    """The names of the registered trajectory kinds, in registration order.

    Args:
        dimensions: None (all), 2 or 3.
        learned: None (all), False (the fixed kinds `make_trajectory` builds) or True (the learned ones).

    Returns:
        tuple of str; with no argument, the CLI's ``--trajectory`` choices.
    """
    return tuple(
        kind.name for kind in TRAJECTORY_KINDS.values()
        if dimensions in (None, kind.dimensions) and learned in (None, kind.learned)
    )


def _from_size(function):
    """A builder for ``function(size, acceleration=..., **kwargs)`` with ``size = max(image_shape)``."""

    def build(image_shape, acceleration, **kwargs):
        return function(max(image_shape), acceleration=acceleration, **kwargs)

    return build


register_trajectory_kind("radial", 2, _from_size(radial_trajectory), "golden-angle full-diameter spokes")
register_trajectory_kind("spiral", 2, _from_size(spiral_trajectory), "interleaved Archimedean spiral")
register_trajectory_kind("stack_of_radial", 3, stack_of_radial_trajectory, "radial spokes on every partition")
register_trajectory_kind("stack_of_spirals", 3, stack_of_spirals_trajectory, "spirals on every partition")
register_trajectory_kind("kooshball", 3, _from_size(kooshball_trajectory), "3D full-diameter spokes")
register_trajectory_kind("learned-radial", 2, None, "learned from radial spokes", learned_from="radial")
register_trajectory_kind("learned-spiral", 2, None, "learned from a spiral", learned_from="spiral")

KINDS = trajectory_kind_names(learned=False)
"""Trajectory kinds known to `make_trajectory`."""

LEARNED_TRAJECTORIES = trajectory_kind_names(learned=True)
"""Trajectories of training runs that learn them, from a radial / spiral start (`models.learned_trajectory`)."""


def learned_base(trajectory):
    """The kind a learned trajectory starts from (``"radial"`` for ``"learned-radial"``), or None for another name."""
    kind = TRAJECTORY_KINDS.get(trajectory)
    return None if kind is None else kind.learned_from


def make_trajectory(kind, image_shape, acceleration=1.0, **kwargs):
    """Build a trajectory by name for an image shape (the entry point of the pipelines and scripts).

    Args:
        kind: a fixed kind of `TRAJECTORY_KINDS` (`KINDS`).
        image_shape: ``(H, W)`` for the 2D kinds (``radial`` / ``spiral``: size ``max(H, W)``),
            ``(D, H, W)`` for the 3D ones (the stacks; ``kooshball``: size ``max(D, H, W)``).
        acceleration: factor against the Nyquist sampling of the kind.
        **kwargs: passed to the trajectory function.

    Returns:
        float32 ``(ndim, n_samples)`` in ``[-pi, pi)``.

    Raises:
        ConfigError: for an unknown or a learned kind, or a shape of the wrong length or with an
            entry below 1.
    """
    entry = TRAJECTORY_KINDS.get(kind)
    fixed = trajectory_kind_names(learned=False)
    if entry is None:
        raise ConfigError(f"unknown trajectory kind {kind!r}; known kinds: {', '.join(fixed)}")
    if entry.learned:
        raise ConfigError(
            f"trajectory kind {kind!r} is learned with the network from a {entry.learned_from!r} start "
            f"(models.learned_trajectory); make_trajectory builds {', '.join(fixed)}"
        )
    shape = tuple(int(n) for n in image_shape)
    if len(shape) != entry.dimensions:
        raise ConfigError(f"{kind} trajectories need a {entry.dimensions}D image_shape, got {image_shape!r}")
    shape = tuple(_positive_int(n, "image_shape") for n in shape)
    return entry.builder(shape, acceleration=acceleration, **kwargs)


# --------------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------------


def plot_trajectory(trajectory, path, max_points=50000, title=None, dpi=100):
    """Draw a trajectory to a PNG file (matplotlib, Agg canvas; written atomically).

    Args:
        trajectory: float array ``(ndim, M)`` or ``(batch, ndim, M)`` (the first example is drawn),
            ``ndim`` 2 or 3.
        path: output PNG path.
        max_points: at most this many samples are drawn (evenly strided).
        title: figure title; default a description of the trajectory.
        dpi: resolution.

    Returns:
        The path written.

    Raises:
        ConfigError: for a trajectory that is not ``(2 or 3, M)``.
    """
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    traj = np.asarray(trajectory)
    if traj.ndim == 3:
        traj = traj[0]
    if traj.ndim != 2 or traj.shape[0] not in (2, 3):
        raise ConfigError(f"trajectory must have shape (2 or 3, n_samples), got {np.asarray(trajectory).shape}")
    stride = max(1, math.ceil(traj.shape[1] / max_points))
    points = traj[:, ::stride]
    fig = Figure(figsize=(5, 5), dpi=dpi)
    if traj.shape[0] == 2:
        ax = fig.add_subplot(1, 1, 1)
        ax.scatter(points[1], points[0], s=0.5, c=np.arange(points.shape[1]), cmap="viridis", linewidths=0)
        ax.set_aspect("equal")
        ax.set_xlabel("k_col (rad)")
        ax.set_ylabel("k_row (rad)")
    else:
        ax = fig.add_subplot(1, 1, 1, projection="3d")
        ax.scatter(points[2], points[1], points[0], s=0.3, c=np.arange(points.shape[1]), cmap="viridis",
                   linewidths=0)
        ax.set_xlabel("k_col")
        ax.set_ylabel("k_row")
        ax.set_zlabel("k_depth")
        ax.set_zlim(-math.pi, math.pi)
    ax.set_xlim(-math.pi, math.pi)
    ax.set_ylim(-math.pi, math.pi)
    ax.set_title(title or f"{traj.shape[0]}D trajectory, {traj.shape[1]} samples")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
