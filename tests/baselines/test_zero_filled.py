import keras
import numpy as np
import pytest

from fastmri_recon.baselines.zero_filled import ZeroFilled
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_ifftc


def data(multicoil, seed=0):
    rng = np.random.default_rng(seed)
    shape = (2, 4, 16, 12) if multicoil else (2, 16, 12)
    kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    mask = (rng.random((2, 12)) > 0.5).astype(np.float32)
    return kspace, mask


@pytest.mark.parametrize("multicoil", [False, True])
def test_matches_numpy(multicoil):
    kspace, mask = data(multicoil)
    out = ZeroFilled(crop_size=(8, 8))((kspace, mask)).numpy()
    expanded = mask[:, None, None] if multicoil else mask[:, None]
    image = np.abs(np_ifftc(kspace * expanded))
    if multicoil:
        image = np.sqrt(np.sum(image**2, axis=1))
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, center_crop(image, (8, 8)), rtol=1e-4, atol=1e-6)


def test_no_crop_and_shared_mask():
    kspace, mask = data(False)
    out = ZeroFilled()((kspace, mask[0])).numpy()
    np.testing.assert_allclose(out, np.abs(np_ifftc(kspace * mask[0])), rtol=1e-4, atol=1e-6)


def test_save_load_round_trip(tmp_path):
    kspace, mask = data(True)
    model = ZeroFilled(crop_size=(8, 6))
    expected = model((kspace, mask)).numpy()
    model.save(tmp_path / "zf.keras")
    loaded = keras.models.load_model(tmp_path / "zf.keras")
    assert loaded.crop_size == (8, 6)
    np.testing.assert_array_equal(loaded((kspace, mask)).numpy(), expected)
