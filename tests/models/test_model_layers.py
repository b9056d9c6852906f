import keras
import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.complex import ChannelsToComplex, ComplexToChannels, from_channels, to_channels
from fastmri_recon.models.layers.conv import ComplexConvStack, ConvBlock
from fastmri_recon.models.layers.data_consistency import DataConsistency
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
