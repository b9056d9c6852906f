"""Convolution blocks: the per-domain CNNs of the unrolled networks and the U-net's levels.

`ConvBlock` is ``n_convs`` 'same'-padded convolutions of ``n_filters`` channels, each followed by an
optional normalisation and the activation. `ComplexConvStack` puts a `ConvBlock` and a linear output
convolution between a split of complex feature maps into real channels (`complex.to_channels`) and
their recombination: the image CNN of Cascade-net, the K- and I-nets of KIKI-net and the primal /
dual CNNs of PD-net and NC-PDNet are all instances. Both are 2D by default and 3D with ``rank=3``
(``Conv3D``, for NC-PDNet on volumes).
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.layers.complex import from_channels, to_channels

NORMALIZATIONS = (None, "instance")


def get_activation(name):
    """The activation function called ``name``.

    Args:
        name: ``"lrelu"`` (leaky ReLU of slope 0.1, as in the benchmark's KIKI-net) or any Keras
            activation name (``"relu"``, ``"leaky_relu"`` (slope 0.2, as fastMRI's U-net),
            ``"linear"``, ...).

    Returns:
        callable on tensors.
    """
    if name == "lrelu":
        return lambda x: tf.nn.leaky_relu(x, alpha=0.1)
    return keras.activations.get(name)


def make_activation(name, rank=2):
    """A weightless activation layer, or a PReLU layer (one slope per channel) for ``"prelu"``.

    Args:
        name: ``"prelu"`` or a name accepted by `get_activation`.
        rank: number of spatial axes of the feature maps (2 or 3).

    Returns:
        keras.layers.Layer.
    """
    if name == "prelu":
        return keras.layers.PReLU(shared_axes=list(range(1, rank + 1)))
    return keras.layers.Activation(get_activation(name))


CONVOLUTIONS = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
"""The convolution layer of each spatial rank."""


def _check_rank(rank):
    if rank not in CONVOLUTIONS:
        raise ConfigError(f"rank must be 2 (images) or 3 (volumes), got {rank!r}")
    return rank


def _spatial(rank, channels):
    """A feature-map shape with unknown batch and spatial sizes: ``(None,) * (rank + 1) + (channels,)``."""
    return (None,) * (rank + 1) + (channels,)


def make_normalization(name):
    """The normalisation layer called ``name``, or None.

    Args:
        name: None (no normalisation) or ``"instance"``: per example and channel over the image,
            without learned scale or offset (PyTorch's ``InstanceNorm2d`` defaults, epsilon 1e-5).

    Returns:
        keras.layers.Layer or None.

    Raises:
        ConfigError: for an unknown name.
    """
    if name not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be None or 'instance', got {name!r}")
    if name is None:
        return None
    return keras.layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5)


def build_unit(layers, input_shape, channels):
    """Build a convolution (or any first layer) and the normalisation / activation after it.

    Args:
        layers: ``(conv, norm, activation)``; ``norm`` may be None.
        input_shape: the convolution's input shape ``(batch, H, W, C_in)`` (or ``(batch, D, H, W,
            C_in)``).
        channels: the convolution's output channels.
    """
    conv, norm, activation = layers
    conv.build(input_shape)
    for layer in (norm, activation):
        if layer is not None:
            layer.build(tuple(input_shape[:-1]) + (channels,))


def apply_unit(layers, x):
    """Apply ``(conv, norm, activation)`` (see `build_unit`) to ``x``."""
    conv, norm, activation = layers
    x = conv(x)
    if norm is not None:
        x = norm(x)
    return activation(x)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ConvBlock(keras.layers.Layer):
    """``n_convs`` 'same'-padded convolutions of ``n_filters`` channels, each followed by an optional
    normalisation and the activation.

    Args:
        n_convs: number of convolutions.
        n_filters: output channels of each convolution.
        kernel_size: kernel size.
        activation: activation name (see `make_activation`: ``"prelu"`` or a `get_activation` name).
        use_bias: whether the convolutions have biases.
        normalization: None or ``"instance"`` (see `make_normalization`).
        rank: number of spatial axes, 2 (``Conv2D``) or 3 (``Conv3D``).

    Call args:
        x: float ``(batch, H, W, C_in)`` (rank 2) or ``(batch, D, H, W, C_in)`` (rank 3).

    Returns:
        ``(batch, [D,] H, W, n_filters)`` in the layer's compute dtype (float32, or float16 under
        ``mixed_float16``); ``x`` itself when ``n_convs`` is 0.
    """

    def __init__(
        self, n_convs, n_filters, kernel_size=3, activation="relu", use_bias=True, normalization=None, rank=2,
        **kwargs
    ):
        super().__init__(**kwargs)
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.activation = activation
        self.use_bias = use_bias
        self.normalization = normalization
        self.rank = _check_rank(rank)
        conv = CONVOLUTIONS[rank]
        self.convs = [conv(n_filters, kernel_size, padding="same", use_bias=use_bias) for _ in range(n_convs)]
        make_normalization(normalization)  # validates the name
        self.norms = [] if normalization is None else [make_normalization(normalization) for _ in range(n_convs)]
        self.activations = [make_activation(activation, rank) for _ in range(n_convs)]

    def _units(self):
        norms = self.norms or [None] * self.n_convs
        return zip(self.convs, norms, self.activations)

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, [D,] H, W, C_in)`` (only ``C_in`` matters)."""
        channels = input_shape[-1]
        for unit in self._units():
            build_unit(unit, _spatial(self.rank, channels), self.n_filters)
            channels = self.n_filters

    def call(self, x):
        for unit in self._units():
            x = apply_unit(unit, x)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "normalization": self.normalization,
            "rank": self.rank,
        }


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ComplexConvStack(keras.layers.Layer):
    """A CNN on complex feature maps: a `ConvBlock` then a linear output convolution.

    Args:
        n_convs: number of hidden ``n_filters``-channel convolutions (each followed by the activation);
            the stack has ``n_convs + 1`` convolutions in all.
        n_filters: channels of the hidden convolutions.
        out_channels: complex output channels ``C_out``.
        kernel_size: kernel size of the hidden convolutions.
        last_kernel_size: kernel size of the output convolution.
        activation: activation name (see `get_activation`).
        rank: number of spatial axes, 2 (images) or 3 (volumes: ``Conv3D``).

    Call args:
        x: complex64 ``(batch, H, W, C_in)``, or ``(batch, coils, H, W, C_in)`` for multi-coil
            k-space: the coils are then folded into the batch (one CNN, shared by all coils). With
            ``rank=3``, a depth axis before ``H``.

    Returns:
        complex64 ``(batch, [coils,] [D,] H, W, C_out)``.
    """

    def __init__(
        self, n_convs, n_filters, out_channels, kernel_size=3, last_kernel_size=3, activation="relu", rank=2,
        **kwargs
    ):
        super().__init__(**kwargs)
        self.n_convs = n_convs
        self.n_filters = n_filters
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.last_kernel_size = last_kernel_size
        self.activation = activation
        self.rank = _check_rank(rank)
        self.hidden = ConvBlock(n_convs, n_filters, kernel_size, activation, rank=rank)
        self.output_conv = CONVOLUTIONS[rank](2 * out_channels, last_kernel_size, padding="same")

    def build(self, input_shape):
        """Create the weights for ``input_shape = (batch, [D,] H, W, C_in)`` (only ``C_in`` matters)."""
        channels = 2 * input_shape[-1]
        self.hidden.build(_spatial(self.rank, channels))
        self.output_conv.build(_spatial(self.rank, self.n_filters if self.n_convs else channels))

    def call(self, x):
        shape = tf.shape(x)
        folds = x.shape.rank > self.rank + 2
        spatial = shape[x.shape.rank - self.rank - 1 : -1]
        folded = tf.reshape(x, tf.concat([[-1], spatial, [x.shape[-1]]], 0)) if folds else x
        y = from_channels(self.output_conv(self.hidden(to_channels(folded))))
        return tf.reshape(y, tf.concat([shape[:-1], [self.out_channels]], 0)) if folds else y

    def get_config(self):
        return {
            **super().get_config(),
            "n_convs": self.n_convs,
            "n_filters": self.n_filters,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "last_kernel_size": self.last_kernel_size,
            "activation": self.activation,
            "rank": self.rank,
        }
