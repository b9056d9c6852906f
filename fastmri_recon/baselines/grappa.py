"""GRAPPA: k-space interpolation with kernels calibrated on the auto-calibration (ACS) lines.

Griswold et al. 2002, generalised to arbitrary (random) Cartesian masks: every missing column is
predicted, coil by coil, from the nearest acquired columns (up to ``sources`` of them, all coils,
``kernel_readout`` neighbouring read-out positions each). The weights of one pattern of source
offsets are fitted by Tikhonov-regularised least squares on the fully-sampled ACS block, where the
same pattern can be slid; the pattern's span must therefore fit inside the ACS block, which limits
how far sources are taken. The image is the root-sum-of-squares of the coil images.
"""

import keras
import numpy as np

from fastmri_recon.baselines.base import SliceBaseline
from fastmri_recon.baselines.operators import warn_if_collinear
from fastmri_recon.data.masks import acs_bounds
from fastmri_recon.ops.fourier import np_ifftc


def source_offsets(column, sampled, max_span, sources):
    """Offsets of the nearest acquired columns whose pattern (with the target) spans < ``max_span``.

    Args:
        column: index of the missing column.
        sampled: indices of the acquired columns.
        max_span: the widest pattern allowed (ACS width minus the calibration positions required).
        sources: maximum number of source columns.

    Returns:
        sorted tuple of non-zero integer offsets (possibly empty).
    """
    offsets = []
    for candidate in sorted(sampled - column, key=lambda o: (abs(o), o)):
        trial = offsets + [int(candidate)]
        if max(trial + [0]) - min(trial + [0]) < max_span:
            offsets = trial
        if len(offsets) == sources:
            break
    return tuple(sorted(offsets))


def _features(kspace, columns, offsets, readout):
    """Source features for target ``columns``: ``(H * len(columns), coils * len(offsets) * readout)``."""
    shifts = range(-(readout // 2), readout // 2 + 1)
    parts = [np.roll(kspace[:, :, columns + o], -s, axis=1) for o in offsets for s in shifts]
    stacked = np.stack(parts, axis=0)  # (n_src * readout, coils, H, n_cols)
    return stacked.reshape(-1, stacked.shape[2] * stacked.shape[3]).T


def calibrate(acs, offsets, readout, tikhonov):
    """GRAPPA weights of one source pattern from an ACS block.

    Args:
        acs: complex ``(coils, H, A)``, fully sampled.
        offsets: the pattern's column offsets.
        readout: kernel extent along the read-out.
        tikhonov: regularisation, relative to the mean eigenvalue of the normal matrix.

    Returns:
        complex ``(features, coils)`` weights.
    """
    lo, hi = -min(min(offsets), 0), acs.shape[2] - max(max(offsets), 0)
    targets = np.arange(lo, hi)
    sources = _features(acs, targets, offsets, readout)
    values = acs[:, :, targets].reshape(acs.shape[0], -1).T
    gram = sources.conj().T @ sources
    reg = tikhonov * np.trace(gram).real / gram.shape[0]
    return np.linalg.solve(gram + reg * np.eye(gram.shape[0]), sources.conj().T @ values)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class Grappa(SliceBaseline):
    """GRAPPA for multi-coil Cartesian data with any mask that has a fully-sampled centre.

    Args:
        sources: maximum number of acquired source columns per missing column.
        kernel_readout: kernel extent along the read-out (odd).
        tikhonov: calibration regularisation.
        min_calibration: fewest positions of a pattern in the ACS block (more calibration data per
            pattern, at the price of nearer sources); columns without a pattern stay zero.
        crop_size: in-plane output size ``(h, w)`` or None.

    The defaults (2 sources, ``tikhonov=1e-2``, 5 calibration positions) were the best of a small
    grid on the demo data's 8-coil, 10-line ACS; GRAPPA still amplifies noise at acceleration 4
    with so few coils and ACS lines, as is known. Single-coil k-space is refused (``multicoil_only``):
    with one coil there is nothing to interpolate from.
    """

    multicoil_only = True

    def __init__(self, sources=2, kernel_readout=5, tikhonov=1e-2, min_calibration=5, crop_size=None, **kwargs):
        super().__init__(crop_size=crop_size, **kwargs)
        self.sources, self.kernel_readout, self.tikhonov = int(sources), int(kernel_readout), float(tikhonov)
        self.min_calibration = int(min_calibration)

    def interpolate(self, kspace, mask):
        """Fill the missing columns of ``kspace`` complex ``(coils, H, W)``; returns the filled copy."""
        start, stop = acs_bounds(mask)
        sampled = np.flatnonzero(mask)
        filled = kspace.copy()
        if stop - start < 2:
            return filled
        acs = kspace[:, :, start:stop]
        warn_if_collinear(acs, "grappa")
        patterns = {}
        for column in np.flatnonzero(mask == 0):
            offsets = source_offsets(column, sampled, stop - start - self.min_calibration + 1, self.sources)
            if offsets:
                patterns.setdefault(offsets, []).append(column)
        for offsets, columns in patterns.items():
            weights = calibrate(acs, offsets, self.kernel_readout, self.tikhonov)
            columns = np.asarray(columns)
            predicted = _features(kspace, columns, offsets, self.kernel_readout) @ weights  # (H * n, coils)
            filled[:, :, columns] = predicted.T.reshape(kspace.shape[0], kspace.shape[1], len(columns))
        return filled

    def reconstruct_slice(self, kspace, mask, smaps):
        coils = kspace if kspace.ndim == 3 else kspace[None]
        images = np_ifftc(self.interpolate(coils, mask))
        return np.sqrt(np.sum(np.abs(images) ** 2, axis=0))

    def get_config(self):
        return {
            **super().get_config(),
            "sources": self.sources,
            "kernel_readout": self.kernel_readout,
            "tikhonov": self.tikhonov,
            "min_calibration": self.min_calibration,
        }
