"""Simulated B0 field maps and spiral read-out timings, for off-resonance experiments (`ops.off_resonance`).

A field map ``df`` (Hz) is simulated from an image (2D or 3D) as the sum of

- a smooth field: a random polynomial of low order in the normalised coordinates ``[-1, 1]`` of each
  axis (the residual of an imperfect shim), scaled so that its largest magnitude over the grid is
  ``smooth_hz``;
- a susceptibility-like bump: a Gaussian of amplitude ``bump_hz`` and standard deviation
  ``bump_width`` (a fraction of the grid's size) centred on a random point of the tissue's boundary
  with air (the edge of the pixels whose magnitude exceeds ``threshold`` times the image's maximum),
  the local, strong off-resonance that air cavities (sinuses, ear canals) cause next to tissue.

Same image and seed, same map. Spiral read-out times follow from the trajectory and the dwell time:
every interleaf of `data.trajectories.spiral_trajectory` starts at the k-space centre at the echo
time and its ``j``-th sample is acquired ``j`` dwell times later.
"""

import math

import numpy as np
from scipy import ndimage

from fastmri_recon.errors import ConfigError, DataError

DEFAULT_SMOOTH_HZ = 40.0
DEFAULT_BUMP_HZ = 120.0
DEFAULT_BUMP_WIDTH = 0.08
DEFAULT_ORDER = 2
DEFAULT_THRESHOLD = 0.1


def _finite(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value <= minimum:
        raise ConfigError(f"{name} must be > {minimum}, got {value!r}")
    return float(value)


def normalised_coordinates(shape):
    """Coordinates in ``[-1, 1]`` along each axis of a grid: a list of ``len(shape)`` broadcastable float64 arrays."""
    coords = []
    for axis, n in enumerate(shape):
        line = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
        coords.append(line.reshape([n if a == axis else 1 for a in range(len(shape))]))
    return coords


def smooth_polynomial_field(shape, rng, amplitude_hz=DEFAULT_SMOOTH_HZ, order=DEFAULT_ORDER):
    """A random polynomial field of total degree ``<= order``, largest magnitude ``amplitude_hz``.

    Args:
        shape: grid shape (any number of axes).
        rng: `numpy.random.Generator` (standard normal coefficients, one per monomial).
        amplitude_hz: largest ``|field|`` over the grid (0 gives a zero field).
        order: total degree, >= 0.

    Returns:
        float64 array ``shape``, Hz.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ConfigError(f"order must be an integer >= 0, got {order!r}")
    coords = normalised_coordinates(shape)
    field = np.zeros(shape)
    for powers in np.ndindex(*(order + 1,) * len(shape)):
        if sum(powers) <= order:
            term = np.ones(shape)
            for c, p in zip(coords, powers):
                term = term * c**p
            field += rng.standard_normal() * term
    peak = np.abs(field).max()
    return field * (amplitude_hz / peak) if peak > 0 else field


def air_tissue_boundary(image, threshold=DEFAULT_THRESHOLD):
    """Tissue pixels next to air: the edge of ``|image| > threshold * max |image|``.

    Args:
        image: real or complex array (2D or 3D).
        threshold: fraction of the maximum magnitude, in ``(0, 1)``.

    Returns:
        bool array of the image's shape.

    Raises:
        DataError: when no pixel is above the threshold (an empty image).
    """
    threshold = _finite(threshold, "threshold", 0.0)
    magnitude = np.abs(np.asarray(image))
    tissue = magnitude > threshold * magnitude.max()
    if not tissue.any():
        raise DataError(f"field map: the image has no tissue above {threshold} of its maximum (an empty image?)")
    return tissue & ~ndimage.binary_erosion(tissue, border_value=0)


def susceptibility_bump(shape, centre, amplitude_hz=DEFAULT_BUMP_HZ, width=DEFAULT_BUMP_WIDTH):
    """A Gaussian bump ``amplitude_hz exp(-|r - centre|^2 / (2 sigma^2))``, ``sigma = width * min(shape)`` pixels.

    Args:
        shape: grid shape.
        centre: pixel coordinates of the peak (one per axis).
        amplitude_hz: peak value (negative for a dip).
        width: standard deviation as a fraction of the smallest grid size, > 0.

    Returns:
        float64 array ``shape``, Hz.
    """
    sigma = _finite(width, "bump width", 0.0) * min(shape)
    distance2 = sum(
        (np.arange(n).reshape([n if a == axis else 1 for a in range(len(shape))]) - c) ** 2
        for axis, (n, c) in enumerate(zip(shape, centre))
    )
    return amplitude_hz * np.exp(-distance2 / (2.0 * sigma**2))


def simulate_field_map(image, seed=0, smooth_hz=DEFAULT_SMOOTH_HZ, bump_hz=DEFAULT_BUMP_HZ,
                       bump_width=DEFAULT_BUMP_WIDTH, order=DEFAULT_ORDER, threshold=DEFAULT_THRESHOLD):
    """A simulated B0 field map of an image: smooth polynomial plus a bump at an air-tissue boundary.

    Args:
        image: real or complex array ``N`` (2D or 3D); only its magnitude's support is used.
        seed: seed of `numpy.random.default_rng` (an int or a sequence of ints).
        smooth_hz: largest magnitude of the smooth field, Hz.
        bump_hz: peak of the susceptibility-like bump, Hz (negative for a dip; 0 for none).
        bump_width: the bump's standard deviation as a fraction of the smallest grid size.
        order: total degree of the smooth polynomial.
        threshold: tissue threshold as a fraction of the image's maximum magnitude.

    Returns:
        float32 array ``N``, Hz.

    Raises:
        ConfigError: for parameters out of range; DataError: for an image with no tissue.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise DataError(f"field map: the image must be 2D or 3D, got shape {image.shape}")
    smooth_hz, bump_hz = _finite(smooth_hz, "smooth_hz"), _finite(bump_hz, "bump_hz")
    rng = np.random.default_rng(seed)
    field = smooth_polynomial_field(image.shape, rng, smooth_hz, order)
    boundary = np.argwhere(air_tissue_boundary(image, threshold))
    centre = boundary[rng.integers(len(boundary))]
    field += susceptibility_bump(image.shape, centre, bump_hz, bump_width)
    return field.astype(np.float32)


def spiral_readout_times(trajectory, n_shots, dwell_time, echo_time=0.0):
    """Acquisition time of every sample of a spiral trajectory: ``echo_time + dwell_time * j`` along each interleaf.

    Args:
        trajectory: float ``(2, n_shots * n_samples)``, interleaf by interleaf, each starting at the
            k-space centre (`data.trajectories.spiral_trajectory`).
        n_shots: number of interleaves.
        dwell_time: time between samples, seconds, > 0.
        echo_time: time of each interleaf's first sample, seconds, >= 0.

    Returns:
        float32 ``(n_shots * n_samples,)``, seconds.

    Raises:
        ConfigError: for a bad ``n_shots``, ``dwell_time`` or ``echo_time``; DataError: for a
            trajectory that is not interleaves of equal length starting at the centre.
    """
    traj = np.asarray(trajectory, np.float64)
    if isinstance(n_shots, bool) or not isinstance(n_shots, (int, np.integer)) or n_shots < 1:
        raise ConfigError(f"n_shots must be a positive integer, got {n_shots!r}")
    dwell_time = _finite(dwell_time, "dwell_time", 0.0)
    echo_time = _finite(echo_time, "echo_time")
    if echo_time < 0:
        raise ConfigError(f"echo_time must be >= 0, got {echo_time!r}")
    if traj.ndim != 2 or traj.shape[0] != 2 or traj.shape[1] % n_shots or traj.shape[1] < n_shots:
        raise DataError(
            f"spiral trajectory must be (2, n_shots * n_samples) with n_shots={n_shots}, got shape {traj.shape}"
        )
    radius = np.hypot(traj[0], traj[1]).reshape(n_shots, -1)
    if np.any(radius[:, 0] > radius.min(axis=1)):
        raise DataError("spiral trajectory: every interleaf must start at the k-space centre (its smallest radius)")
    per_shot = radius.shape[1]
    return (echo_time + dwell_time * np.tile(np.arange(per_shot), n_shots)).astype(np.float32)
