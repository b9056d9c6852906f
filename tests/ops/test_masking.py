import numpy as np
import pytest

from fastmri_recon.ops.masking import apply_mask


@pytest.mark.parametrize("shape", [(2, 4, 6), (2, 3, 4, 6)])
def test_mask_along_last_axis_per_example(shape):
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal(shape) - 1j * rng.random(shape)).astype(np.complex64)
    mask = np.array([[1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 0, 0]], np.float32)
    out = apply_mask(kspace, mask).numpy()
    expanded = mask.reshape((2,) + (1,) * (len(shape) - 2) + (6,))
    np.testing.assert_array_equal(out, kspace * expanded)
    zeros = out[np.broadcast_to(expanded, shape) == 0]
    assert not np.any(np.signbit(zeros.real)) and not np.any(np.signbit(zeros.imag))


def test_one_mask_for_all():
    kspace = -np.ones((2, 3, 4), np.complex64)
    out = apply_mask(kspace, np.array([1, 0, 0, 1], np.float32)).numpy()
    np.testing.assert_array_equal(out[..., 1:3], 0)
    assert not np.any(np.signbit(out[..., 1:3].real))
