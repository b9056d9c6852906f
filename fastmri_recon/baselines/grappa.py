"""GRAPPA: k-space interpolation with kernels calibrated on the auto-calibration (ACS) lines.

Griswold et al. 2002, generalised to arbitrary (random) Cartesian masks: every missing column is
predicted, coil by coil, from the acquired columns at most ``max_distance`` columns away on either
side (the nearest ``sources`` of them, all coils, ``kernel_readout`` neighbouring read-out positions
each): with ``max_distance=2`` the kernel is pygrappa's 5 x 5 neighbourhood. A column without an
acquired column that near stays zero: far sources predict worse than nothing. The weights of one
pattern of source offsets are fitted by Tikhonov-regularised least squares on the fully-sampled ACS
block, where the same pattern can be slid; the pattern's span must therefore fit inside the ACS block
with ``min_calibration`` positions to spare. The image is the root-sum-of-squares of the coil images.

Speed. The read-out is treated as circular (as a shift of the FFT grid), so the normal equations of
every pattern are sums of one table of ACS correlations ``sum_h conj(k[c1, h, u]) k[c2, h + d, v]``
over column pairs ``(u, v)`` and read-out lags ``d``; the table is computed once per slice (one
matrix product per ACS column) and summed along its diagonals (prefix sums), so a pattern costs one
small gather and one solve, whatever its number of calibration positions. Periodic masks have a few
patterns, random ones at most ``2 ** (2 * max_distance)``.
"""

import keras
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastmri_recon.baselines.base import SliceBaseline
from fastmri_recon.baselines.operators import ifftc, warn_if_collinear
from fastmri_recon.data.masks import acs_bounds


def source_offsets(column, sampled, max_span, sources, max_distance=None):
    """Offsets of the nearest acquired columns whose pattern (with the target) spans < ``max_span``.

    Args:
        column: index of the missing column.
        sampled: indices of the acquired columns.
        max_span: the widest pattern allowed (ACS width minus the calibration positions required).
        sources: maximum number of source columns.
        max_distance: farthest source allowed (in columns, either side), or None for no limit.

    Returns:
        sorted tuple of non-zero integer offsets (possibly empty).
    """
    candidates = np.asarray(sampled) - column
    if max_distance is not None:
        candidates = candidates[np.abs(candidates) <= max_distance]
    offsets = []
    for candidate in sorted(candidates.tolist(), key=lambda o: (abs(o), o)):
        trial = offsets + [int(candidate)]
        if max(trial + [0]) - min(trial + [0]) < max_span:
            offsets = trial
        if len(offsets) == sources:
            break
    return tuple(sorted(offsets))


def correlation_sums(acs, readout, max_lag):
    """Prefix sums along the diagonals of the ACS correlation table.

    With ``R[u, c1, l, v, c2] = sum_h conj(acs[c1, h, u]) acs[c2, (h + d) mod H, v]`` for the lag
    ``d = l - 2 r`` (``r = readout // 2``, so ``d`` in ``[-2r, 2r]``), computed by matrix products over
    chunks of ``2 D + 1`` columns, returns
    ``P[delta + D, k] = sum_{u < k} R[u, ..., u + delta]`` (terms with ``u + delta`` outside the ACS
    are zero), ``D = min(max_lag, A - 1)``.

    Args:
        acs: complex ``(coils, H, A)``, the fully-sampled ACS block.
        readout: kernel extent along the read-out (odd).
        max_lag: the largest column distance ``|v - u|`` needed.

    Returns:
        ``(P, D)``: complex128 ``(2 D + 1, A + 1, coils, 4 r + 1, coils)`` and ``D``.
    """
    coils, height, width = acs.shape
    r = readout // 2
    lags = 4 * r + 1
    max_lag = min(max_lag, width - 1)
    acs = acs.astype(np.complex128)
    shifted = np.stack([np.roll(acs, -d, axis=1) for d in range(-2 * r, 2 * r + 1)])  # (L, C, H, A)
    right = np.ascontiguousarray(shifted.transpose(2, 3, 0, 1)).reshape(height, width, lags * coils)
    left = np.ascontiguousarray(acs.transpose(2, 0, 1).conj())  # (A, C, H)
    table = np.zeros((2 * max_lag + 1, width, coils, lags, coils), np.complex128)
    chunk = 2 * max_lag + 1  # columns per matrix product: few large products, at most 3x the banded work
    for first in range(0, width, chunk):
        last = min(width, first + chunk)
        lo, hi = max(0, first - max_lag), min(width, last + max_lag)
        block = left[first:last].reshape(-1, height) @ right[:, lo:hi].reshape(height, -1)
        block = block.reshape(last - first, coils, hi - lo, lags, coils)
        for u in range(first, last):
            near = slice(max(lo, u - max_lag) - lo, min(hi, u + max_lag + 1) - lo)
            delta = slice(near.start + lo - u + max_lag, near.stop + lo - u + max_lag)
            table[delta, u] = block[u - first, :, near].transpose(1, 0, 2, 3)
    prefix = np.zeros((2 * max_lag + 1, width + 1, coils, lags, coils), np.complex128)
    np.cumsum(table, axis=1, out=prefix[:, 1:])
    return prefix, max_lag


def pattern_weights(prefix, max_lag, offsets, readout, tikhonov):
    """GRAPPA weights of one source pattern from the `correlation_sums` of an ACS block.

    The normal equations of ``min_w sum_t sum_h |sources(h, t) w - acs[:, h, t]|^2`` over the
    positions ``t`` where the pattern fits inside the ACS, regularised by ``tikhonov`` times the
    mean eigenvalue of the normal matrix, solved in float64.

    Args:
        prefix, max_lag: the output of `correlation_sums` (``max_lag`` at least the pattern's span).
        offsets: the pattern's column offsets (sorted, non-zero).
        readout: kernel extent along the read-out (odd), as given to `correlation_sums`.
        tikhonov: relative regularisation.

    Returns:
        complex128 ``(len(offsets) * readout * coils, coils)`` weights; the features are ordered
        ``(offset, read-out shift, coil)``.
    """
    r = readout // 2
    width = prefix.shape[1] - 1
    coils = prefix.shape[2]
    o = np.asarray(offsets)
    lo, hi = -min(o.min(), 0), width - max(o.max(), 0)
    delta = o[None, :] - o[:, None] + max_lag
    blocks = prefix[delta, (hi + o)[:, None]] - prefix[delta, (lo + o)[:, None]]  # (J, J, C, L, C)
    shifts = np.arange(-r, r + 1)
    lag = shifts[None, :] - shifts[:, None] + 2 * r  # lag of (s1, s2): s2 - s1
    size = len(o) * readout * coils
    gram = blocks[:, :, :, lag, :].transpose(0, 3, 2, 1, 4, 5).reshape(size, size)
    target = prefix[max_lag - o, hi + o] - prefix[max_lag - o, lo + o]  # (J, C, L, C): lag -s1 to the target
    rhs = target[:, :, 2 * r - shifts, :].transpose(0, 2, 1, 3).reshape(size, coils)
    gram[np.diag_indices(size)] += tikhonov * np.trace(gram).real / size
    return np.linalg.solve(gram, rhs)


def calibrate(acs, offsets, readout, tikhonov):
    """GRAPPA weights of one source pattern from an ACS block.

    Args:
        acs: complex ``(coils, H, A)``, fully sampled.
        offsets: the pattern's column offsets.
        readout: kernel extent along the read-out.
        tikhonov: regularisation, relative to the mean eigenvalue of the normal matrix.

    Returns:
        complex128 ``(features, coils)`` weights, features ordered ``(offset, read-out shift, coil)``.
    """
    span = max(max(offsets), 0) - min(min(offsets), 0)
    prefix, max_lag = correlation_sums(acs, readout, span)
    return pattern_weights(prefix, max_lag, tuple(sorted(offsets)), readout, tikhonov)


def _windows(kspace, readout):
    """Circular read-out windows of k-space ``(H, W, coils)``: a view ``(H, W, coils, readout)``."""
    r = readout // 2
    padded = np.concatenate([kspace[kspace.shape[0] - r :], kspace, kspace[:r]], axis=0)
    return sliding_window_view(padded, readout, axis=0)


def apply_weights(windows, columns, offsets, weights):
    """Predict ``columns`` of every coil from their sources.

    Args:
        windows: the `_windows` view ``(H, W, coils, readout)`` of the k-space.
        columns: int ``(n,)`` target columns.
        offsets: the pattern's column offsets ``(J,)``.
        weights: ``(J * readout * coils, coils)``, features ordered ``(offset, read-out shift, coil)``
            (`pattern_weights`).

    Returns:
        ``(H, n, coils)`` predicted k-space.
    """
    height, _, coils, readout = windows.shape
    sources = windows[:, columns[:, None] + np.asarray(offsets)[None]]  # (H, n, J, C, S), contiguous
    by_coil = weights.reshape(len(offsets), readout, coils, coils).transpose(0, 2, 1, 3).reshape(-1, coils)
    return (sources.reshape(height * len(columns), -1) @ by_coil).reshape(height, len(columns), coils)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class Grappa(SliceBaseline):
    """GRAPPA for multi-coil Cartesian data with any mask that has a fully-sampled centre.

    Args:
        sources: maximum number of acquired source columns per missing column.
        kernel_readout: kernel extent along the read-out (odd).
        tikhonov: calibration regularisation.
        min_calibration: fewest positions of a pattern in the ACS block (more calibration data per
            pattern, at the price of nearer sources); columns without a pattern stay zero.
        max_distance: farthest source column (either side); None: no limit.
        crop_size: in-plane output size ``(h, w)`` or None.

    The defaults (a 5 x 5 neighbourhood: up to 4 sources within 2 columns, ``tikhonov=0.1``, 5
    calibration positions) gave a lower missing-line error than pygrappa's defaults on simulated
    640 x 368, 15-coil data at accelerations 4 and 8 (``experiments/benchmarks/baselines.py``);
    GRAPPA still amplifies noise with few coils and ACS lines, as is known. Single-coil k-space is
    refused (``multicoil_only``): with one coil there is nothing to interpolate from.
    """

    multicoil_only = True

    def __init__(
        self, sources=4, kernel_readout=5, tikhonov=0.1, min_calibration=5, max_distance=2, crop_size=None, **kwargs
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.sources, self.kernel_readout, self.tikhonov = int(sources), int(kernel_readout), float(tikhonov)
        self.min_calibration = int(min_calibration)
        self.max_distance = None if max_distance is None else int(max_distance)
        if self.kernel_readout < 1 or self.kernel_readout % 2 == 0:
            raise ValueError(f"kernel_readout must be a positive odd integer, got {kernel_readout!r}")

    def patterns(self, mask):
        """The source pattern of every missing column that has one: dict offsets -> int array of columns."""
        start, stop = acs_bounds(mask)
        sampled = np.flatnonzero(mask)
        patterns = {}
        for column in np.flatnonzero(mask == 0):
            offsets = source_offsets(column, sampled, stop - start - self.min_calibration + 1, self.sources, self.max_distance)
            if offsets:
                patterns.setdefault(offsets, []).append(column)
        return {offsets: np.asarray(columns) for offsets, columns in patterns.items()}

    def interpolate(self, kspace, mask):
        """Fill the missing columns of ``kspace`` complex ``(coils, H, W)``; returns the filled copy."""
        start, stop = acs_bounds(mask)
        if stop - start < 2:
            return kspace.copy()
        acs = kspace[:, :, start:stop]
        warn_if_collinear(acs, "grappa")
        patterns = self.patterns(mask)
        if not patterns:
            return kspace.copy()
        span = max(max(max(o), 0) - min(min(o), 0) for o in patterns)
        prefix, max_lag = correlation_sums(acs, self.kernel_readout, span)
        by_column = np.ascontiguousarray(kspace.transpose(1, 2, 0))  # (H, W, C): sources gather contiguously
        windows = _windows(by_column, self.kernel_readout)
        filled = by_column.copy()
        for offsets, columns in patterns.items():
            weights = pattern_weights(prefix, max_lag, offsets, self.kernel_readout, self.tikhonov)
            filled[:, columns] = apply_weights(windows, columns, offsets, weights.astype(kspace.dtype))
        return np.ascontiguousarray(filled.transpose(2, 0, 1))

    def reconstruct_slice(self, kspace, mask, smaps):
        coils = kspace if kspace.ndim == 3 else kspace[None]
        images = ifftc(self.interpolate(coils, mask))
        return np.sqrt(np.sum(np.abs(images) ** 2, axis=0))

    def get_config(self):
        return {
            **super().get_config(),
            "sources": self.sources,
            "kernel_readout": self.kernel_readout,
            "tikhonov": self.tikhonov,
            "min_calibration": self.min_calibration,
            "max_distance": self.max_distance,
        }
