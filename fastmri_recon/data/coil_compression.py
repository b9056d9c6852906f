"""Coil compression: multi-coil k-space to fewer virtual coils.

Published multi-coil networks expect the coil count they were trained with; compression maps any
coil array onto ``N`` virtual coils that keep most of the signal energy.

- ``svd`` (Buehrer et al., MRM 2007; Huang et al., MRI 2008): one unitary compression for the whole
  array, from the principal components of the coil covariance over every sample.
- ``geometric`` (Zhang et al., MRM 2013): one compression per read-out position (in the hybrid space
  after an inverse FFT along the fully sampled read-out axis), aligned between neighbouring positions
  so that the virtual coils stay smooth; it keeps more energy than ``svd`` for the same ``N``.

Zero (not acquired) samples add nothing to the covariance, so undersampled k-space compresses as its
acquired part does; the same compression applies to every slice of a volume (`compress_coils` on a volume, as ``convert``
does). `SliceCompression` is the data step of the pipelines, ``evaluate`` and ``reconstruct``: each
slice compressed from its own acquired samples.
"""

import dataclasses

import numpy as np

from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

METHODS = ("svd", "geometric")


def mix_coils(kspace, matrix, coil_axis=1):
    """Apply a coil-mixing matrix (compression, noise whitening) along the coil axis.

    Args:
        kspace: complex ``(..., coils, ...)`` array.
        matrix: complex ``(out_coils, coils)``.
        coil_axis: the coil axis of ``kspace``.

    Returns:
        complex128 array of ``kspace``'s shape with ``out_coils`` coils: ``out[o] = sum_c matrix[o, c] kspace[c]``.
    """
    moved = np.moveaxis(np.asarray(kspace, np.complex128), coil_axis, -1)
    return np.moveaxis(moved @ np.asarray(matrix).T, -1, coil_axis)


def _principal_components(samples, coils):
    """The ``coils`` leading left singular vectors of ``samples`` (complex ``(C, N)``) as a ``(C, coils)`` matrix."""
    values, vectors = np.linalg.eigh(samples @ samples.conj().T)
    return vectors[:, np.argsort(values)[::-1][:coils]]


def svd_compression_matrix(kspace, coils, coil_axis=1):
    """The SVD compression matrix of a multi-coil array.

    Args:
        kspace: complex ``(..., C, ...)`` k-space (or images) with ``C`` coils on ``coil_axis``.
        coils: number of virtual coils, ``1 <= coils <= C``.
        coil_axis: the coil axis.

    Returns:
        complex128 ``(coils, C)`` matrix with orthonormal rows (unitary when ``coils == C``).
    """
    samples = np.moveaxis(np.asarray(kspace, np.complex128), coil_axis, 0).reshape(kspace.shape[coil_axis], -1)
    return _principal_components(samples, coils).conj().T


def _geometric(kspace, coils, coil_axis, readout_axis):
    """Geometric coil compression (complex128 result), see the module docstring."""
    hybrid = np_ifftc(np.asarray(kspace, np.complex128), axes=(readout_axis,))
    hybrid = np.moveaxis(hybrid, (readout_axis % kspace.ndim, coil_axis % kspace.ndim), (0, 1))
    positions, channels = hybrid.shape[:2]
    rest = hybrid.shape[2:]
    samples = hybrid.reshape(positions, channels, -1)
    out = np.empty((positions, coils, samples.shape[-1]), np.complex128)
    previous = None
    for x in range(positions):
        vectors = _principal_components(samples[x], coils)
        if previous is not None:  # the unitary rotation of this position's basis closest to the previous one
            left, _, right = np.linalg.svd(vectors.conj().T @ previous)
            vectors = vectors @ (left @ right)
        out[x] = vectors.conj().T @ samples[x]
        previous = vectors
    out = np.moveaxis(out.reshape((positions, coils) + rest), (0, 1), (readout_axis % kspace.ndim, coil_axis % kspace.ndim))
    return np_fftc(out, axes=(readout_axis,))


def compress_coils(kspace, coils, method="svd", coil_axis=1, readout_axis=-2):
    """Compress multi-coil k-space to ``coils`` virtual coils.

    Args:
        kspace: complex ``(slices, C, H, W)`` (or any layout with a coil and a read-out axis), C >= coils.
        coils: number of virtual coils.
        method: ``"svd"`` or ``"geometric"`` (see the module docstring).
        coil_axis: the coil axis (1 for fastMRI volumes, 0 for one slice ``(C, H, W)``).
        readout_axis: the fully sampled read-out axis (``geometric`` only).

    Returns:
        complex64 array of ``kspace``'s shape with ``coils`` coils; with ``coils == C`` and
        ``"svd"`` a unitary transform of the input (its energy and its root-sum-of-squares images
        are kept).

    Raises:
        ConfigError: an unknown method, or ``coils`` not in ``1..C``.
    """
    if method not in METHODS:
        raise ConfigError(f"coil compression method {method!r}: expected one of {', '.join(METHODS)}")
    channels = kspace.shape[coil_axis]
    if isinstance(coils, bool) or not isinstance(coils, (int, np.integer)) or not 1 <= coils <= channels:
        raise ConfigError(f"coils={coils!r}: expected a number of virtual coils from 1 to the data's {channels} coils")
    if method == "svd":
        compressed = mix_coils(kspace, svd_compression_matrix(kspace, coils, coil_axis), coil_axis)
    else:
        compressed = _geometric(kspace, coils, coil_axis, readout_axis)
    return compressed.astype(np.complex64)


@dataclasses.dataclass(frozen=True)
class SliceCompression:
    """Coil compression as a data step: each slice to ``coils`` virtual coils, from its own acquired samples.

    The pipelines (training, validation, inference), ``evaluate`` and ``reconstruct`` apply it to
    the undersampled k-space of every slice, before the sensitivity maps are estimated, so a
    network sees the same kind of virtual coils in training and in use; ``convert --coils`` instead
    compresses a whole volume with one matrix when writing files.

    Attributes:
        coils: number of virtual coils (at most the data's).
        method: ``"svd"`` or ``"geometric"``.

    Raises:
        ConfigError: ``coils`` not a positive integer, or an unknown method.
    """

    coils: int
    method: str = "svd"

    def __post_init__(self):
        if isinstance(self.coils, bool) or not isinstance(self.coils, (int, np.integer)) or self.coils < 1:
            raise ConfigError(f"virtual_coils={self.coils!r}: expected a positive number of virtual coils")
        if self.method not in METHODS:
            raise ConfigError(f"coil_compression={self.method!r}: expected one of {', '.join(METHODS)}")

    def check(self, data_coils, where):
        """Raise `ConfigError` naming ``where`` unless the data's ``data_coils`` coils can be compressed to ``coils``."""
        if self.coils > data_coils:
            raise ConfigError(f"virtual_coils={self.coils}: more than the {data_coils} coils of {where}")

    def apply(self, kspace):
        """Compress each slice: complex ``(slices, C, H, W)`` -> complex64 ``(slices, coils, H, W)``."""
        return np.stack([compress_coils(one, self.coils, self.method, coil_axis=0) for one in kspace])

    def describe(self):
        """A short text for tables, e.g. ``"4 virtual coils (svd)"``."""
        return f"{self.coils} virtual coils ({self.method})"


def slice_compression(virtual_coils, method="svd"):
    """The `SliceCompression` to ``virtual_coils`` with ``method``, or None without ``virtual_coils``.

    Raises:
        ConfigError: as `SliceCompression` (a ``method`` that is not one of `METHODS`, None included).
    """
    return None if virtual_coils is None else SliceCompression(virtual_coils, method)
