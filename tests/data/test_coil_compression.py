"""Coil compression: lossless to all coils, the expected energy fraction to fewer."""

import numpy as np
import pytest

from fastmri_recon.data.coil_compression import compress_coils, mix_coils, svd_compression_matrix
from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.fourier import np_ifftc


def _kspace(coils=8, rank=3, seed=0):
    """k-space ``(2, coils, 32, 16)`` of ``rank`` underlying coil profiles mixed into ``coils`` channels, plus noise."""
    rng = np.random.default_rng(seed)
    shape = (2, rank, 32, 16)
    sources = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    mixing = rng.standard_normal((coils, rank)) + 1j * rng.standard_normal((coils, rank))
    noise = 0.01 * (rng.standard_normal((2, coils, 32, 16)) + 1j * rng.standard_normal((2, coils, 32, 16)))
    return (np.einsum("cr,srhw->schw", mixing, sources) + noise).astype(np.complex64)


def _energy(array):
    return float(np.sum(np.abs(array.astype(np.complex128)) ** 2))


def _rss(kspace):
    return np.sqrt(np.sum(np.abs(np_ifftc(kspace.astype(np.complex128))) ** 2, axis=1))


@pytest.mark.parametrize("method", ["svd", "geometric"])
def test_compressing_to_all_coils_is_lossless(method):
    kspace = _kspace()
    compressed = compress_coils(kspace, 8, method)
    assert compressed.shape == kspace.shape and compressed.dtype == np.complex64
    np.testing.assert_allclose(_energy(compressed), _energy(kspace), rtol=1e-5)
    np.testing.assert_allclose(_rss(compressed), _rss(kspace), rtol=1e-4, atol=1e-5)


def test_svd_matrix_is_unitary_and_inverts():
    kspace = _kspace()
    matrix = svd_compression_matrix(kspace, 8)
    np.testing.assert_allclose(matrix @ matrix.conj().T, np.eye(8), atol=1e-10)
    restored = mix_coils(mix_coils(kspace, matrix), matrix.conj().T)
    np.testing.assert_allclose(restored, kspace, atol=1e-5)


def test_fewer_coils_keep_the_expected_energy_fraction():
    kspace = _kspace()
    samples = np.moveaxis(kspace.astype(np.complex128), 1, 0).reshape(8, -1)
    singular = np.linalg.svd(samples, compute_uv=False) ** 2
    for coils in (1, 3, 5):
        expected = singular[:coils].sum() / singular.sum()
        fraction = _energy(compress_coils(kspace, coils)) / _energy(kspace)
        assert fraction == pytest.approx(expected, rel=1e-5)
    assert _energy(compress_coils(kspace, 3)) / _energy(kspace) > 0.999  # rank-3 data: 3 virtual coils keep it


def test_geometric_keeps_at_least_the_svd_energy():
    kspace = _kspace(rank=6)
    svd = _energy(compress_coils(kspace, 2, "svd"))
    geometric = _energy(compress_coils(kspace, 2, "geometric"))
    assert geometric >= svd * (1 - 1e-6)


def test_compression_of_one_slice_and_zero_lines():
    kspace = _kspace()
    kspace[..., ::2] = 0  # undersampled: zero columns stay zero
    compressed = compress_coils(kspace[0], 4, coil_axis=0)
    assert compressed.shape == (4, 32, 16) and not np.any(compressed[..., ::2])


@pytest.mark.parametrize("coils, method, message", [(0, "svd", "coils=0"), (9, "svd", "coils=9"), (2.5, "svd", "coils=2.5"),
                                                   (2, "pca", "method 'pca'")])
def test_bad_options(coils, method, message):
    with pytest.raises(ConfigError, match=message):
        compress_coils(_kspace(), coils, method)
