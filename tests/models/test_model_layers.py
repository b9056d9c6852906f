import keras
import numpy as np
import pytest
import pywt
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.complex import ChannelsToComplex, ComplexToChannels, from_channels, to_channels
from fastmri_recon.models.layers.conv import ComplexConvStack, ConvBlock
from fastmri_recon.models.layers.data_consistency import DataConsistency
from fastmri_recon.models import varnet
from fastmri_recon.models.layers.coils import apply_per_coil, low_frequency_mask, normalize_by_rss, rss
from fastmri_recon.models.layers.denoisers import build_denoiser
from fastmri_recon.models.layers.didn import DIDN
from fastmri_recon.models.layers.haar import haar_dwt, haar_idwt
from fastmri_recon.models.layers.multiscale import ComplexDenoiser, standardise, unstandardise
from fastmri_recon.models.layers.mwcnn import MWCNN
from fastmri_recon.models.layers.unet import UNet


def complex_noise(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def dc_problem(multicoil):
    shape = (2, 3, 8, 6) if multicoil else (2, 8, 6)
    mask = np.array([[1, 0, 0, 1, 1, 0], [0, 1, 0, 0, 1, 1]], np.float32)
    return complex_noise(shape, 0), complex_noise(shape, 1), mask


def columns(x, mask_row, value):
    return x[..., mask_row == value]


def round_trip(layer):
    """Serialise and deserialise through the registered name."""
    return keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))


def test_channels_layout_and_round_trip():
    x = complex_noise((2, 4, 3, 2))
    channels = to_channels(x).numpy()
    assert channels.shape == (2, 4, 3, 4) and channels.dtype == np.float32
    np.testing.assert_array_equal(channels[..., :2], x.real)
    np.testing.assert_array_equal(channels[..., 2:], x.imag)
    np.testing.assert_array_equal(from_channels(channels).numpy(), x)
    np.testing.assert_array_equal(ChannelsToComplex()(ComplexToChannels()(x)).numpy(), x)


def test_from_channels_casts_half_precision():
    out = from_channels(tf.ones((1, 2, 2, 2), tf.float16))
    assert out.dtype == tf.complex64


@pytest.mark.parametrize("multicoil", [False, True])
def test_replacement_keeps_measurements_exactly(multicoil):
    kspace, measured, mask = dc_problem(multicoil)
    out = DataConsistency()((kspace, measured, mask)).numpy()
    for i in range(len(mask)):
        np.testing.assert_array_equal(columns(out[i], mask[i], 1), columns(measured[i], mask[i], 1))
        np.testing.assert_array_equal(columns(out[i], mask[i], 0), columns(kspace[i], mask[i], 0))


def test_learned_weight_starts_as_replacement_and_trains():
    kspace, measured, mask = dc_problem(False)
    layer = DataConsistency("learned")
    with tf.GradientTape() as tape:
        out = layer((kspace, measured, mask))
        loss = tf.reduce_sum(tf.abs(out) ** 2)
    assert len(layer.trainable_weights) == 1
    np.testing.assert_allclose(out.numpy(), DataConsistency()((kspace, measured, mask)).numpy(), atol=1e-6)
    assert np.isfinite(tape.gradient(loss, layer.weight).numpy())
    assert round_trip(layer).mode == "learned"


def test_unknown_dc_mode():
    with pytest.raises(ConfigError, match="replace, learned"):
        DataConsistency("soft")


def test_complex_conv_stack_shares_weights_over_coils():
    stack = ComplexConvStack(2, 4, 3, last_kernel_size=1, activation="lrelu")
    x = complex_noise((2, 3, 8, 6, 2))
    out = stack(x).numpy()
    assert out.shape == (2, 3, 8, 6, 3) and out.dtype == np.complex64
    np.testing.assert_allclose(out[:, 1], stack(x[:, 1]).numpy(), atol=1e-6)
    assert len(stack.trainable_weights) == 6  # 2 hidden + output convolution, kernel and bias each
    assert round_trip(stack).get_config() == stack.get_config()


def test_conv_block_config():
    block = ConvBlock(3, 5, kernel_size=3, activation="relu")
    assert block(np.zeros((1, 4, 4, 2), np.float32)).shape == (1, 4, 4, 5)
    assert round_trip(block).get_config() == block.get_config()


@pytest.mark.slow
def test_unet_pads_to_the_pooling_multiple_and_crops_back():
    unet = UNet(filters=(2, 4, 4), n_convs=1, out_channels=3)  # 2 poolings: multiples of 4
    x = np.random.default_rng(0).standard_normal((2, 13, 10, 1)).astype(np.float32)
    out = unet(x).numpy()
    assert out.shape == (2, 13, 10, 3)
    padded = np.pad(x, [(0, 0), (0, 3), (0, 2), (0, 0)])
    np.testing.assert_allclose(out, unet(padded).numpy()[:, :13, :10], atol=1e-6)
    unknown = tf.function(unet, input_signature=[tf.TensorSpec([None, None, None, 1])])
    np.testing.assert_allclose(unknown(x).numpy(), out, atol=1e-6)
    assert round_trip(unet).get_config() == unet.get_config()


def real_noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_haar_perfect_reconstruction_and_orthogonality():
    x, y = real_noise((2, 8, 6, 3), 0), real_noise((2, 4, 3, 12), 1)
    coefficients = haar_dwt(x)
    assert coefficients.shape == (2, 4, 3, 12)
    np.testing.assert_allclose(haar_idwt(coefficients).numpy(), x, atol=1e-6)
    np.testing.assert_allclose(haar_dwt(haar_idwt(y)).numpy(), y, atol=1e-6)
    # orthonormal: norms kept, and the inverse is the adjoint <W x, y> = <x, W^T y>
    np.testing.assert_allclose(np.sum(coefficients.numpy() ** 2), np.sum(x**2), rtol=1e-5)
    np.testing.assert_allclose(np.sum(coefficients.numpy() * y), np.sum(x * haar_idwt(y).numpy()), rtol=1e-4)


def test_haar_bands_match_pywavelets():
    x = real_noise((1, 8, 6, 2))
    coefficients = haar_dwt(x).numpy()
    for channel in range(2):
        approx, details = pywt.dwt2(x[0, ..., channel], "haar")
        bands = [coefficients[0, ..., band * 2 + channel] for band in range(4)]
        np.testing.assert_allclose(bands[0], approx, atol=1e-5)
        # the three detail bands, up to their order and sign conventions
        for detail in details:
            assert any(np.allclose(np.abs(band), np.abs(detail), atol=1e-5) for band in bands[1:])


class RecordingIdentity(keras.layers.Layer):
    """Returns its input; records it; asks for multiples of 4."""

    pooling_factor = 4

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = channels

    def call(self, x):
        self.seen = x
        return x


def test_complex_denoiser_pads_symmetrically_and_crops_back():
    x = complex_noise((2, 13, 10, 1))
    denoiser = RecordingIdentity(2)
    np.testing.assert_allclose(ComplexDenoiser(denoiser)(x).numpy(), x, atol=1e-6)
    seen = denoiser.seen.numpy()
    assert seen.shape == (2, 16, 12, 2)  # 13 + 3 rows (1 above, 2 below), 10 + 2 columns (1 each side)
    np.testing.assert_array_equal(seen[:, 1:14, 1:11], to_channels(x).numpy())
    assert not seen[:, [0, 14, 15]].any() and not seen[:, :, [0, 11]].any()
    np.testing.assert_allclose(ComplexDenoiser(denoiser, normalize=True)(x).numpy(), x, atol=1e-5)
    np.testing.assert_allclose(ComplexDenoiser(denoiser, residual=True)(x).numpy(), 2 * x, atol=1e-6)


def test_standardise_per_example_real_and_imaginary():
    channels = to_channels(complex_noise((2, 5, 4, 3)) * 3 + (1 - 2j)).numpy()
    standardised, mean, std = standardise(channels)
    for part in (slice(0, 3), slice(3, 6)):
        values = channels[1, ..., part]
        expected = (values - values.mean()) / values.std(ddof=1)
        np.testing.assert_allclose(standardised.numpy()[1, ..., part], expected, atol=1e-5)
    np.testing.assert_allclose(unstandardise(standardised, mean, std).numpy(), channels, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mwcnn", "didn", "unet"])
def test_denoiser_shapes_any_size_and_config(name):
    params = {
        "mwcnn": dict(filters=(4, 8), n_convs=(1, 2), first_filters=4, n_first_convs=1),
        "didn": dict(filters=4, n_dubs=2, n_recon_convs=1, n_scales=2),
        "unet": dict(filters=(4, 8), n_convs=1),
    }[name]
    layer = build_denoiser(name, "small", out_channels=6, **params)
    assert layer.pooling_factor == (2 if name == "unet" else 4)
    out = layer(real_noise((2, 8, 12, 4)))
    assert out.shape == (2, 8, 12, 6)
    assert round_trip(layer).get_config() == layer.get_config()
    wrapped = ComplexDenoiser(build_denoiser(name, "small", out_channels=6, **params), residual=True)
    assert wrapped(complex_noise((1, 13, 7, 4))).shape == (1, 13, 7, 3)  # any size, complex
    assert round_trip(wrapped).get_config() == wrapped.get_config()


SIZE_COUNTS = [
    ("mwcnn", "small", 338_122),  # the XPDNet benchmark's count
    ("mwcnn", "medium", 6_217_930),  # the XPDNet benchmark's count
    ("didn", "small", 867_642),
    ("unet", "medium", 483_482),
]


@pytest.mark.parametrize("name, size, count", SIZE_COUNTS)
def test_denoiser_sizes_parameter_counts(name, size, count):
    """XPDNet's image step: 12 real channels in (5 buffers and the gradient), 10 out (see layers.denoisers)."""
    layer = build_denoiser(name, size, out_channels=10)
    layer.build((None, None, None, 12))
    assert layer.count_params() == count


def test_unknown_denoiser_and_bad_configs():
    with pytest.raises(ConfigError, match="unknown denoiser"):
        build_denoiser("dncnn")
    with pytest.raises(ConfigError, match="unknown denoiser"):
        build_denoiser("mwcnn", "huge")
    with pytest.raises(ConfigError, match="multiple of 4"):
        DIDN(filters=6)
    with pytest.raises(ConfigError, match="one value per scale"):
        MWCNN(filters=(4, 8), n_convs=(1, 1, 1))
    with pytest.raises(ConfigError, match="pooling"):
        UNet(pooling="median")


def test_fastmri_unet_configuration_has_fastmri_parameter_count():
    """fastMRI's NormUnet(chans=18, num_pools=4), the E2E-VarNet regulariser: 2,454,338 parameters."""
    unet = varnet.norm_unet(18, 4)
    unet.build((None, None, None, 1))
    assert unet.count_params() == 2_454_338
    assert unet.denoiser.pooling_factor == 16


def test_normalize_by_rss_and_per_coil():
    maps = complex_noise((2, 4, 6, 5))
    normalized = normalize_by_rss(maps).numpy()
    np.testing.assert_allclose(np.sum(np.abs(normalized) ** 2, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(rss(normalized).numpy(), 1.0, rtol=1e-5)
    doubled = apply_per_coil(lambda x: 2 * x, maps).numpy()
    np.testing.assert_allclose(doubled, 2 * maps)


@pytest.mark.parametrize(
    "sampled, expected",
    [
        ([5, 6, 7, 8, 9, 10], [5, 6, 7, 8, 9, 10]),  # symmetric centre: kept (W = 16, centre column 8)
        ([4, 5, 6, 7, 8, 9], [6, 7, 8, 9]),  # 4 left of the centre, 2 from it: symmetric run of 4
        ([0, 8, 9], [8]),  # nothing left of the centre: one column
        ([2, 12], [8]),  # centre not sampled: one column, as fastMRI
    ],
)
def test_low_frequency_mask(sampled, expected):
    mask = np.zeros(16, np.float32)
    mask[sampled] = 1
    out = low_frequency_mask(np.stack([mask, np.ones(16, np.float32)])).numpy()
    np.testing.assert_array_equal(np.flatnonzero(out[0]), expected)
    np.testing.assert_array_equal(np.flatnonzero(low_frequency_mask(mask).numpy()[0]), expected)
