"""Density compensation for non-Cartesian k-space: Pipe & Menon's iteration and the radial ramp.

The weights ``d`` are scaled so that the density-compensated adjoint inverts the NUFFT of
`fastmri_recon.ops.nufft` for images whose spectrum the trajectory covers: ``A^H diag(d) A x ~ x``.
With the NUFFT's normalisation that means ``d_j ~ prod(N) / (2 pi)^ndim`` times the k-space area
(volume) in rad^ndim that sample ``j`` stands for, so the weights sum to ``prod(N)`` times the
fraction of ``[-pi, pi)^ndim`` the trajectory covers (``pi / 4`` for a 2D radial trajectory).

- :func:`pipe_menon_density` (Pipe & Menon 1999): ``w <- w / (C C^H w)`` with ``C`` the NUFFT's own
  interpolation matrix (the exponential-of-semicircle kernel on the oversampled grid), from
  ``w = 1``. At the fixed point ``C C^H w = 1``: the weighted samples, gridded and interpolated back,
  are flat. Any trajectory, 2D or 3D, batched.
- :func:`radial_ramp_density`: the analytic weights of full-diameter radial spokes, ``|k|`` in 2D and
  ``|k|^2`` in 3D (kooshball), the centre sample given the area of its small disc / ball; a
  cross-check of the iterative weights and a cheap choice for radial data.
"""

import math

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.nufft import DEFAULT_OVERSAMPLING, NUFFTPlan

DEFAULT_ITERATIONS = 10


def pipe_menon_density(trajectory, image_shape, n_iter=DEFAULT_ITERATIONS, eps=1e-3,
                       oversampling=DEFAULT_OVERSAMPLING, width=None, plan=None):
    """Pipe & Menon's iterative density compensation with the NUFFT's interpolation kernel.

    Works eagerly and inside ``tf.function`` (the loop is unrolled ``n_iter`` times).

    Args:
        trajectory: float32 ``(batch, ndim, M)`` or ``(ndim, M)``, radians.
        image_shape: spatial shape ``N`` of the images (sets the grid and the scaling).
        n_iter: number of iterations. The weights keep fluctuating from sample to sample by a few
            percent with ``n_iter`` and the kernel width, while the density-compensated adjoint they
            give settles: on a smooth 32 x 32 image its relative error is 1.3% / 0.4% / 0.08% after
            5 / 10 / 30 iterations for a golden-angle radial trajectory (1.5% / 1.4% / 1.4% for a spiral).
        eps: accuracy of the interpolation kernel, which sets its width; the default (width 4 at
            oversampling 2) gave better density-compensated adjoints in these tests than width 6
            (0.4% against 1.8% for the radial trajectory), and costs less.
        oversampling: grid oversampling factor.
        width: kernel width, overriding ``eps``.
        plan: an existing `NUFFTPlan` of this trajectory and image shape to reuse (then ``eps``,
            ``oversampling`` and ``width`` are ignored).

    Returns:
        float32 weights ``(batch, M)``, or ``(M,)`` for a trajectory ``(ndim, M)``.

    Raises:
        ConfigError: for a bad ``n_iter``.
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ConfigError(f"n_iter must be a positive integer, got {n_iter!r}")
    if plan is None:
        plan = NUFFTPlan(trajectory, image_shape, eps=eps, oversampling=oversampling, width=width)
    elif tuple(plan.image_shape) != tuple(int(n) for n in image_shape):
        raise DataError(f"plan is for images {plan.image_shape}, not {tuple(image_shape)}")
    weights = tf.ones(tf.shape(plan.trajectory)[::2], tf.float32)  # (batch, M)
    for _ in range(int(n_iter)):
        weights = weights / tf.maximum(plan.interpolate(plan.spread(weights)), 1e-12)
    image_size = float(np.prod(plan.image_shape))
    grid_size = float(np.prod(plan.grid_shape))
    scale = plan.kernel_integral ** (2 * plan.ndim) * image_size / grid_size
    weights = weights * scale
    return weights[0] if plan.shared else weights


def _spoke_gaps(traj, centre, tol=1e-4):
    """Relative angular extent of the spoke of every 2D sample (1 for uniformly spaced spokes).

    Spoke angles (modulo pi) are clustered within ``tol`` radians; each spoke gets half the gap to
    its two neighbours, divided by ``pi / n_spokes``. Centre samples get 1.
    """
    theta = np.mod(np.arctan2(traj[0], traj[1]), np.pi)
    off = ~centre
    order = np.argsort(theta[off], kind="stable")
    sorted_theta = theta[off][order]
    starts = np.concatenate([[True], np.diff(sorted_theta) > tol])
    labels = np.cumsum(starts) - 1
    angles = sorted_theta[starts]
    if angles.size > 1 and angles[0] + np.pi - sorted_theta[-1] <= tol:  # last cluster wraps onto the first
        labels[labels == labels[-1]] = 0
        angles = angles[:-1]
    n_spokes = angles.size
    gaps = np.ones(theta.shape)
    if n_spokes > 1:
        nxt = np.diff(np.concatenate([angles, [angles[0] + np.pi]]))
        prev = np.roll(nxt, 1)
        extent = (nxt + prev) / 2.0 / (np.pi / n_spokes)
        per_sample = np.empty(order.size)
        per_sample[order] = extent[labels]
        gaps[off] = per_sample
    return gaps


def radial_ramp_density(trajectory, image_shape):
    """Analytic density compensation of full-diameter radial spokes: ``|k|`` (2D) or ``|k|^2`` (3D).

    In 2D each spoke's ramp is scaled by its angular extent (half the gaps to its neighbours, so
    golden-angle spokes, whose gaps differ, are weighted exactly); in 3D the spokes are taken as
    uniformly spread.
    The centre sample(s) (``|k| = 0``) get the weight of the disc (ball) of radius half the
    smallest non-zero radius, shared between them; the weights are then scaled so that they sum to
    ``prod(N)`` times the area (volume) of the disc (ball) of radius ``max |k|`` over ``(2 pi)^ndim``.

    Args:
        trajectory: float array ``(ndim, M)`` or ``(batch, ndim, M)`` of a 2D radial or 3D
            kooshball trajectory (NumPy or tensor; evaluated with NumPy).
        image_shape: spatial shape ``N``.

    Returns:
        float32 NumPy array ``(M,)`` or ``(batch, M)``.
    """
    traj = np.asarray(trajectory, np.float64)
    if traj.ndim == 3:
        return np.stack([radial_ramp_density(t, image_shape) for t in traj])
    if traj.ndim != 2 or traj.shape[0] not in (2, 3) or len(image_shape) != traj.shape[0]:
        raise DataError(
            f"trajectory must have shape (ndim, M) with ndim = len(image_shape) in (2, 3), got {traj.shape} "
            f"for image_shape {tuple(image_shape)}"
        )
    ndim = traj.shape[0]
    radius = np.sqrt(np.sum(traj**2, axis=0))
    tol = 1e-6 * max(float(radius.max()), 1e-12)
    centre = radius <= tol
    positive = radius[~centre]
    if positive.size == 0:
        raise DataError("trajectory has no sample away from the k-space centre")
    r_min = float(positive.min())
    weights = radius ** (ndim - 1)
    if ndim == 2:
        weights = weights * _spoke_gaps(traj, centre)
    if centre.any():
        # per spoke, the disc of radius r_min / 2 around the centre (2D) has the area of a ramp
        # sample at |k| = r_min / 4; the ball of radius r_min / 2 (3D) the volume of |k|^2 = r_min^2 / 12
        weights[centre] = r_min / 4.0 if ndim == 2 else r_min**2 / 12.0
    r_max = float(radius.max())
    covered = math.pi * r_max**2 if ndim == 2 else 4.0 / 3.0 * math.pi * r_max**3
    total = float(np.prod(image_shape)) * covered / (2.0 * math.pi) ** ndim
    return (weights * (total / weights.sum())).astype(np.float32)
