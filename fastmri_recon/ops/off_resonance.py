"""Off-resonance-aware non-Cartesian encoding: a B0 field map in the forward model, by time segmentation.

Model. With a field map ``df`` (Hz, one value per image pixel) and the time ``t_j`` (seconds from the
excitation, or from any fixed origin) at which sample ``j`` is acquired, the single-coil encoding is::

    y_j = (1 / sqrt(prod N)) sum_n x[n] exp(-i w_j . (n - N // 2)) exp(-i 2 pi df[n] t_j)

(the NUFFT convention of `ops.nufft` times the phase that off-resonance accumulates during the
read-out); multi-coil data replace ``x`` by each coil image ``S_c x``. Over a long read-out (spirals)
the phase blurs and shifts the plain adjoint's image where ``|df| t`` is not small.

Time segmentation (Sutton, Noll and Fessler 2003, IEEE TMI 22:178). The phase is approximated by
``L`` terms separable in pixel and time::

    exp(-i 2 pi df t) ~ sum_l b_l(t) exp(-i 2 pi df tau_l)

with segment times ``tau_l`` evenly spread over the read-out, ``t_min`` and ``t_max`` included, and
coefficients ``b_l(t)`` the least-squares fit over the field map's values: ``b(t)`` minimises
``sum_k h_k |exp(-i 2 pi f_k t) - sum_l b_l(t) exp(-i 2 pi f_k tau_l)|^2`` over a histogram of the
field map (``bins`` bins over its range, centres ``f_k``), with weights ``h_k`` either equal over
the range (``weighting="uniform"``: every frequency between the map's extremes fitted alike, so the
accuracy bound below holds for every pixel) or the fractions of pixels in each bin
(``weighting="histogram"``, Sutton's choice: a smaller error where most pixels are, a larger one at
rare frequencies). The fit is solved by a truncated SVD in float64 (singular values below
``1e-10`` of the largest are dropped: a narrow field map makes the segments' phases nearly
collinear). The encoding is then::

    A = sum_l B_l F_nu S C_l,        A^H D = sum_l C_l^H S^H F_nu^H B_l^H D

with ``C_l = diag(exp(-i 2 pi df tau_l))`` on the image and ``B_l = diag(b_l(t_j))`` on the samples:
``L`` NUFFTs of one plan, run in a single pass (the segments stacked beside the coils), and its
adjoint is exact by construction (the NUFFT's is). `OffResonanceEncoding` has the interface of
`ops.encoding.NonCartesianEncoding` (``forward``, ``adjoint``, ``coil_adjoint``, ``compensate``), so
the non-Cartesian models take either.

Accuracy. The fit's error depends on the field map's range ``W`` (Hz) and the read-out's duration
``T`` (s) only through the time-bandwidth product ``W T`` (a shift of the frequencies or times
multiplies target and basis by unit phases). `segments_for_accuracy` gives the fewest segments whose
uniform fit has a largest error below a tolerance over the whole band (measured on a fine grid of
frequencies and times, every value between bin centres included), which bounds the error at every
pixel of a field map within the band (with the uniform weights; with the histogram weights it bounds
the error's root mean square over the pixels). The relative error of the encoding against the exact
sum (`np_off_resonance_sum`) stays below that tolerance: with the segments for 1e-3, 1.4e-4 / 8.8e-5 /
3.7e-5 for random field maps of +-25 / +-100 / +-300 Hz over a 10 ms read-out (4 / 7 / 13 segments,
NUFFT at 1e-6; tests/ops/test_off_resonance.py). Segments needed at 128 bins (the default):

=================  ====  ====  ====  ====  ====
``W T`` (cycles)   0.5   1     2     4     8
=================  ====  ====  ====  ====  ====
error <= 1e-2       4     5     6     9    14
error <= 1e-3       4     6     7    11    16
error <= 1e-4       5     6     9    12    18
=================  ====  ====  ====  ====  ====

Cost: ``L`` times the NUFFT's work and memory (the oversampled grid holds ``L`` images per coil), plus
the fit: ``O(batch bins (L + M) L)`` float64 work and a ``(batch, bins, M)`` complex128 matrix,
computed once per encoding.

Shapes: field maps float32 ``(batch, *N)`` in Hz; read-out times float32 ``(batch, M)`` or ``(M,)``
(shared) in seconds; the rest as `ops.encoding.NonCartesianEncoding`. Field maps and times are data:
no gradient flows to them.
"""

import math

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops.encoding import NonCartesianEncoding
from fastmri_recon.ops.nufft import DEFAULT_EPS, np_ndft

DEFAULT_BINS = 128
"""Histogram bins of the field map in the least-squares fit."""

DEFAULT_SEGMENTS = 11
"""Time segments of the models' B0-aware encoding: a fit within 1e-3 up to ``W T = 4`` cycles
(e.g. a 400 Hz range over a 10 ms read-out; `segments_for_accuracy`)."""

WEIGHTINGS = ("uniform", "histogram")
"""Weightings of the least-squares fit (see the module docstring)."""

MAX_SEGMENTS = 64
"""Most segments `segments_for_accuracy` tries."""

_RCOND = 1e-10  # relative singular-value cut-off of the fit
_MIN_BIN_HZ = 1e-9  # bin width of a constant field map


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_weighting(weighting):
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return weighting


def _unit_phase(angle):
    """``exp(-i angle)`` for a real float64 tensor, complex128."""
    return tf.complex(tf.cos(angle), -tf.sin(angle))


def field_histogram(field_map, bins=DEFAULT_BINS, weighting="uniform"):
    """Bin centres and fit weights of each example's field map over its own range.

    Args:
        field_map: float ``(batch, *N)``, Hz.
        bins: number of bins ``K``.
        weighting: ``"uniform"`` (equal weights ``1 / K``) or ``"histogram"`` (pixel fractions).

    Returns:
        ``(centres, weights)``: float64 ``(batch, K)`` each, the weights summing to 1 per example.
    """
    bins = _check_int(bins, "bins", 1)
    weighting = _check_weighting(weighting)
    field = tf.cast(field_map, tf.float64)
    batch = tf.shape(field)[0]
    field = tf.reshape(field, [batch, -1])
    low = tf.reduce_min(field, axis=1, keepdims=True)
    width = tf.maximum((tf.reduce_max(field, axis=1, keepdims=True) - low) / bins, _MIN_BIN_HZ)
    centres = low + (tf.range(bins, dtype=tf.float64) + 0.5) * width
    if weighting == "uniform":
        return centres, tf.fill(tf.shape(centres), tf.constant(1.0 / bins, tf.float64))
    index = tf.clip_by_value(tf.cast(tf.floor((field - low) / width), tf.int32), 0, bins - 1)
    ids = index + bins * tf.range(batch)[:, None]
    counts = tf.reshape(tf.math.unsorted_segment_sum(tf.ones_like(field), ids, batch * bins), [batch, bins])
    return centres, counts / tf.reduce_sum(counts, axis=1, keepdims=True)


def segment_times(readout_times, n_segments):
    """Segment times ``tau_l``: ``n_segments`` evenly spaced over each read-out, ends included.

    Args:
        readout_times: float ``(batch, M)`` or ``(M,)``, seconds.
        n_segments: ``L``; one segment sits at the read-out's middle.

    Returns:
        float64 ``(batch, L)`` (``(1, L)`` for shared times).
    """
    n_segments = _check_int(n_segments, "n_segments", 1)
    times = tf.cast(readout_times, tf.float64)
    times = times[None] if times.shape.rank == 1 else times
    first = tf.reduce_min(times, axis=1, keepdims=True)
    last = tf.reduce_max(times, axis=1, keepdims=True)
    if n_segments == 1:
        return (first + last) / 2
    fraction = tf.range(n_segments, dtype=tf.float64) / (n_segments - 1)
    return first + fraction * (last - first)


def least_squares_coefficients(centres, weights, taus, readout_times):
    """The time-segmentation coefficients ``b_l(t_j)`` of the weighted least-squares fit.

    Args:
        centres, weights: float64 ``(batch, K)`` (`field_histogram`).
        taus: float64 ``(batch or 1, L)`` (`segment_times`).
        readout_times: float ``(batch or 1, M)`` or ``(M,)``, seconds.

    Returns:
        complex128 ``(batch, L, M)``.
    """
    times = tf.cast(readout_times, tf.float64)
    times = times[None] if times.shape.rank == 1 else times
    root = tf.cast(tf.sqrt(weights), tf.complex128)[:, :, None]  # (batch, K, 1)
    two_pi_f = 2.0 * math.pi * centres[:, :, None]
    basis = root * _unit_phase(two_pi_f * taus[:, None, :])  # (batch, K, L)
    target = root * _unit_phase(two_pi_f * times[:, None, :])  # (batch, K, M)
    singular, left, right = tf.linalg.svd(basis)  # basis = left diag(singular) right^H
    keep = singular > _RCOND * singular[:, :1]
    inverse = tf.where(keep, 1.0 / tf.where(keep, singular, 1.0), 0.0)
    projected = tf.linalg.matmul(left, target, adjoint_a=True) * tf.cast(inverse, tf.complex128)[:, :, None]
    return tf.linalg.matmul(right, projected)


def pixel_phases(field_map, taus):
    """The image-side factors ``exp(-i 2 pi df tau_l)``.

    Args:
        field_map: float ``(batch, *N)``, Hz.
        taus: float64 ``(batch or 1, L)``.

    Returns:
        complex64 ``(batch, L, *N)``.
    """
    field = tf.cast(field_map, tf.float64)
    ndim = field.shape.rank - 1
    taus = tf.reshape(taus, tf.concat([tf.shape(taus), [1] * ndim], 0))
    return tf.cast(_unit_phase(2.0 * math.pi * field[:, None] * taus), tf.complex64)


def _check_field_inputs(field_map, readout_times, image_shape, n_samples):
    """float32 field map ``(batch, *N)`` and times ``(batch, M)`` / ``(M,)``; DataError otherwise."""
    field_map = tf.convert_to_tensor(field_map)
    readout_times = tf.convert_to_tensor(readout_times)
    if not field_map.dtype.is_floating or tuple(field_map.shape[1:]) != tuple(image_shape):
        raise DataError(
            f"field_map must be float (batch, *{tuple(image_shape)}) in Hz, got {field_map.dtype.name} of shape "
            f"{tuple(field_map.shape)}"
        )
    if not readout_times.dtype.is_floating or readout_times.shape.rank not in (1, 2) or (
        None not in (n_samples, readout_times.shape[-1]) and readout_times.shape[-1] != n_samples
    ):
        raise DataError(
            f"readout_times must be float (batch, {n_samples}) or ({n_samples},) in seconds, got "
            f"{readout_times.dtype.name} of shape {tuple(readout_times.shape)}"
        )
    return tf.stop_gradient(field_map), tf.stop_gradient(readout_times)


class OffResonanceEncoding(NonCartesianEncoding):
    """The B0-aware non-Cartesian operator of one batch, time-segmented: ``A`` and ``A^H D``.

    A `ops.encoding.NonCartesianEncoding` (``forward``, ``adjoint``, ``coil_adjoint``,
    ``compensate``, its attributes) whose per-coil transform carries the off-resonance phase of the
    module docstring: ``F_nu`` becomes ``sum_l B_l F_nu C_l``. Build it once per batch
    (eagerly or inside ``tf.function``): the fit and the NUFFT plan are computed here.

    Args:
        trajectory: float32 ``(batch, ndim, M)`` or ``(ndim, M)`` (shared), radians.
        field_map: float32 ``(batch, *N)``, Hz (its shape sets ``N`` when ``image_shape`` is None).
        readout_times: float32 ``(batch, M)`` or ``(M,)`` (shared), seconds.
        image_shape: spatial shape ``N``, or None for the field map's.
        density: float32 ``(batch, M)`` (``(M,)`` with a shared trajectory), or None.
        smaps: complex64 ``(batch, coils, *N)``, or None (single-coil).
        n_segments: number of time segments ``L`` (`segments_for_accuracy` for a tolerance).
        eps: NUFFT accuracy; ``plan``: an existing `NUFFTPlan` to reuse (``eps`` ignored).
        bins: histogram bins of the fit; ``weighting``: ``"uniform"`` or ``"histogram"``.

    Attributes:
        coefficients: complex64 ``(batch, L, M)``, ``b_l(t_j)``; ``phases``: complex64
        ``(batch, L, *N)``, ``exp(-i 2 pi df tau_l)``; ``segment_times``: float64 ``(batch or 1, L)``;
        ``n_segments``: int; and those of `NonCartesianEncoding`.

    Raises:
        DataError: for inputs that do not fit together; ConfigError: for bad ``n_segments``,
            ``bins`` or ``weighting``.
    """

    def __init__(self, trajectory, field_map, readout_times, image_shape=None, density=None, smaps=None,
                 n_segments=DEFAULT_SEGMENTS, eps=DEFAULT_EPS, plan=None, bins=DEFAULT_BINS, weighting="uniform"):
        field_map = tf.convert_to_tensor(field_map)
        if image_shape is None and field_map.shape.rank is not None:
            image_shape = tuple(field_map.shape[1:])
        super().__init__(trajectory, image_shape, density, smaps, eps, plan)
        n_samples = self.plan.trajectory.shape[-1]
        field_map, readout_times = _check_field_inputs(field_map, readout_times, self.image_shape, n_samples)
        self.n_segments = _check_int(n_segments, "n_segments", 1)
        centres, weights = field_histogram(field_map, bins, weighting)
        self.segment_times = segment_times(readout_times, self.n_segments)
        self.coefficients = tf.cast(
            least_squares_coefficients(centres, weights, self.segment_times, readout_times), tf.complex64
        )
        self.phases = pixel_phases(field_map, self.segment_times)

    def _nufft(self, images):
        """``sum_l B_l F_nu C_l`` of each image: complex64 ``(batch, [coils,] *N)`` -> ``(batch, [coils,] M)``."""
        ndim = len(self.image_shape)
        images = tf.convert_to_tensor(images)
        extra = images.shape.rank - 1 - ndim  # 1 with a coil axis, else 0
        phases = self.phases[:, :, None] if extra else self.phases
        stacked = images[:, None] * phases  # (batch, L, [coils,] *N)
        leading = tf.shape(stacked)[: 2 + extra]
        samples = self.plan.forward(tf.reshape(stacked, tf.concat([leading[:1], [-1], self.image_shape], 0)))
        samples = tf.reshape(samples, tf.concat([leading, tf.shape(samples)[-1:]], 0))
        coefficients = self.coefficients[:, :, None] if extra else self.coefficients
        return tf.reduce_sum(coefficients * samples, axis=1)

    def _nufft_adjoint(self, kspace):
        """``sum_l C_l^H F_nu^H B_l^H`` of each coil's samples: ``(batch, [coils,] M)`` -> ``(batch, [coils,] *N)``."""
        kspace = tf.convert_to_tensor(kspace)
        extra = kspace.shape.rank - 2
        coefficients = self.coefficients[:, :, None] if extra else self.coefficients
        stacked = tf.math.conj(coefficients) * kspace[:, None]  # (batch, L, [coils,] M)
        leading = tf.shape(stacked)[: 2 + extra]
        images = self.plan.adjoint(tf.reshape(stacked, tf.concat([leading[:1], [-1], tf.shape(stacked)[-1:]], 0)))
        images = tf.reshape(images, tf.concat([leading, self.image_shape], 0))
        phases = self.phases[:, :, None] if extra else self.phases
        return tf.reduce_sum(tf.math.conj(phases) * images, axis=1)


# --------------------------------------------------------------------------------------------------
# The number of segments for a tolerance, and the exact reference
# --------------------------------------------------------------------------------------------------


def interpolation_error(frequencies, times, coefficients, taus):
    """Largest error ``|exp(-i 2 pi f t) - sum_l b_l(t) exp(-i 2 pi f tau_l)|`` of one example's fit.

    Args:
        frequencies: float array ``(F,)``, Hz (any values, e.g. a field map's pixels).
        times: float array ``(M,)``, seconds, the times of ``coefficients``.
        coefficients: complex array ``(L, M)``, ``b_l(t_j)``.
        taus: float array ``(L,)``, the segment times.

    Returns:
        float: the maximum over frequencies and times (float64 arithmetic).
    """
    f = np.asarray(frequencies, np.float64).ravel()[:, None]
    exact = np.exp(-2j * np.pi * f * np.asarray(times, np.float64)[None])
    basis = np.exp(-2j * np.pi * f * np.asarray(taus, np.float64)[None])
    return float(np.abs(exact - basis @ np.asarray(coefficients, np.complex128)).max())


def band_error(time_bandwidth, n_segments, bins=DEFAULT_BINS, n_frequencies=1001, n_times=201):
    """Largest error of the uniform fit over a band: field values filling ``[-1/2, 1/2]`` Hz, read-out ``time_bandwidth`` s.

    By the shift invariance of the fit (module docstring) this is the error of any field map
    whose range ``W`` and read-out duration ``T`` have ``W T = time_bandwidth``, at every pixel.

    Args:
        time_bandwidth: ``W T`` in cycles, >= 0.
        n_segments: ``L``.
        bins: histogram bins of the fit.
        n_frequencies, n_times: points of the evaluation grid over the band and the read-out.

    Returns:
        float.
    """
    field = tf.constant(np.linspace(-0.5, 0.5, n_frequencies)[None], tf.float64)
    times = tf.constant(np.linspace(0.0, float(time_bandwidth), n_times), tf.float64)
    centres, weights = field_histogram(field, bins, "uniform")
    taus = segment_times(times, n_segments)
    coefficients = least_squares_coefficients(centres, weights, taus, times)
    return interpolation_error(field.numpy(), times.numpy(), coefficients.numpy()[0], taus.numpy()[0])


def segments_for_accuracy(time_bandwidth, tol=1e-3, bins=DEFAULT_BINS):
    """The fewest segments whose uniform fit is within ``tol`` everywhere in a band (`band_error`).

    Args:
        time_bandwidth: field-map range (Hz) times read-out duration (s), in cycles, >= 0.
        tol: largest error of the phase factor, in ``(0, 1)``.
        bins: histogram bins of the fit.

    Returns:
        int in ``[1, MAX_SEGMENTS]``.

    Raises:
        ConfigError: for values out of range, or a band that needs more than `MAX_SEGMENTS`.
    """
    if not (isinstance(time_bandwidth, (int, float, np.integer, np.floating)) and math.isfinite(time_bandwidth)
            and time_bandwidth >= 0):
        raise ConfigError(f"time_bandwidth must be a finite number >= 0, got {time_bandwidth!r}")
    if not (isinstance(tol, (float, np.floating)) and 0 < tol < 1):
        raise ConfigError(f"tol must be a float in (0, 1), got {tol!r}")
    for n_segments in range(1, MAX_SEGMENTS + 1):
        if band_error(time_bandwidth, n_segments, bins) <= tol:
            return n_segments
    raise ConfigError(f"a time-bandwidth product of {time_bandwidth} needs more than {MAX_SEGMENTS} segments for {tol}")


def np_off_resonance_sum(image, trajectory, field_map, readout_times):
    """The exact off-resonant encoding (the module docstring's sum), NumPy complex128.

    Samples acquired at the same time share one modulated image, evaluated by `ops.nufft.np_ndft`
    at their points: ``O(T prod N + M prod N)`` work for ``T`` distinct times.

    Args:
        image: complex array ``(..., *N)`` (2 or 3 spatial axes; coil images for multi-coil data).
        trajectory: float array ``(ndim, M)``, radians.
        field_map: float array ``N``, Hz.
        readout_times: float array ``(M,)``, seconds.

    Returns:
        complex128 ``(..., M)``.

    Raises:
        DataError: for shapes that do not fit together.
    """
    traj = np.asarray(trajectory, np.float64)
    image = np.asarray(image, np.complex128)
    field = np.asarray(field_map, np.float64)
    times = np.asarray(readout_times, np.float64)
    ndim = field.ndim
    if traj.ndim != 2 or traj.shape[0] != ndim or image.shape[-ndim:] != field.shape or times.shape != traj.shape[1:]:
        raise DataError(
            f"exact off-resonance sum: expected image (..., *N), trajectory ({ndim}, M), field map N and times (M,), "
            f"got {image.shape}, {traj.shape}, {field.shape} and {times.shape}"
        )
    out = np.zeros(image.shape[:-ndim] + times.shape, np.complex128)
    distinct, group = np.unique(times, return_inverse=True)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(len(distinct) + 1))
    for k, t in enumerate(distinct):
        members = order[starts[k] : starts[k + 1]]
        out[..., members] = np_ndft(image * np.exp(-2j * np.pi * field * t), traj[:, members])
    return out
