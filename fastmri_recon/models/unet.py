"""U-net post-processing of the adjoint image, for Cartesian and non-Cartesian acquisitions.

One network for both: a U-net (4 levels of 16, 32, 64 and 128 filters, 2 convolutions per level,
ReLU by default) corrects the adjoint image of the acquisition's encoding, residually by default
(``residual=True``: the U-net predicts a correction added to its input). `AdjointUNet` holds the
U-net, its options and that step; the two models differ only in the adjoint image they give it and
in how its output becomes the magnitude image:

- Cartesian (`UNetPostProcessing`: ``unet``, ``unet-benchmark`` in the registry), in the
  configuration of Ramzi et al. 2020's benchmark. The adjoint is the zero-filled inverse FFT of the
  masked k-space; the U-net takes its magnitude (root-sum-of-squares over coils for multi-coil data;
  sensitivity maps are not used) as 1 channel, center-cropped to ``crop_size`` first as in the
  benchmark (the network then works on the output grid only).
- Non-Cartesian (`NCUNet`: ``nc-unet``), the post-processing baseline of the NC-PDNet paper. The
  adjoint is the density-compensated NUFFT adjoint ``x0 = A^H D y`` of `models.nc_base`
  (coil-combined with the maps for multi-coil data); the U-net takes its real and imaginary parts as
  2 channels and the output is ``|x0 + U(x0)|``, cropped after. 2D only (the paper's 3D baseline is
  a V-net, not provided here).

``standardize=True`` (Cartesian) is the benchmark's input normalisation (its
``ZeroFilled2DSequence(norm=True)``, which the papers' U-net weights were trained with): each slice's
zero-filled magnitude ``z`` becomes ``(z - mean(z)) / (std(z) + 1e-11)`` (mean and population
standard deviation over the cropped image), and the U-net's output ``u`` is brought back as
``u * std(z) + mean(z)``; the output then no longer depends on the scale of the data. The papers'
U-net (``unet-benchmark`` in the registry) also has no residual connection and a linear 4-channel
1x1 convolution before the output one.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.base import ReconstructionModel
from fastmri_recon.models.layers.coils import rss
from fastmri_recon.models.layers.complex import from_channels, to_channels
from fastmri_recon.models.layers.unet import UNet
from fastmri_recon.models.nc_base import DEFAULT_IMAGE_SHAPE, DEFAULT_NUFFT_EPS, NonCartesianModel
from fastmri_recon.ops.fourier import ifft2c

STANDARDIZE_EPSILON = 1e-11
"""Added to each slice's standard deviation (the benchmark's value)."""

DEFAULT_FILTERS = (16, 32, 64, 128)
"""Filters of the U-net's levels, from the finest (the papers' U-net)."""


class AdjointUNet:
    """The U-net step of the post-processing models, mixed in before their acquisition's base class.

    The acquisition's base class (`models.base.ReconstructionModel` or
    `models.nc_base.NonCartesianModel`) parses the inputs. The model sets ``channels``, creates the
    U-net with `init_unet` and defines ``network_input(inputs)``, the adjoint image of its inputs as
    the U-net's input (float32 ``(batch, H, W, channels)``), and ``network_output(output)``, the
    magnitude image (float32 ``(batch, h, w)``) of the corrected channels (float32, the same shape).
    The weights are the U-net's only, under the attribute ``unet`` (the layout of the saved weights
    files).

    U-net options (`init_unet`):
        filters: filters of each level, from the finest (its length is the number of levels).
        n_convs: convolutions per level and side.
        residual: whether the U-net output is added to its input.
        activation: activation name (see `layers.conv.get_activation`).
        standardize: standardise each slice's input by its mean and standard deviation and undo it
            on the output (see the module docstring).
        penultimate_channels: channels of a 1x1 convolution before the U-net's output one, or None
            (see `layers.unet.UNet`).
        penultimate_activation: its activation name.
    """

    channels = 1
    """Real channels of the U-net's input and output (1: a magnitude; 2: real and imaginary parts)."""

    config_keys = ("filters", "n_convs", "residual", "activation")
    """The U-net options the model's configuration holds (the model's constructor arguments)."""

    def init_unet(
        self,
        filters,
        n_convs,
        residual,
        activation,
        standardize=False,
        penultimate_channels=None,
        penultimate_activation="linear",
    ):
        """Store the U-net options and create the U-net (see the class docstring for the options)."""
        self.filters = tuple(int(f) for f in filters)
        self.n_convs = n_convs
        self.residual = residual
        self.activation = activation
        self.standardize = bool(standardize)
        self.penultimate_channels = penultimate_channels
        self.penultimate_activation = penultimate_activation
        self.unet = UNet(
            self.filters,
            n_convs,
            out_channels=self.channels,
            activation=activation,
            penultimate_channels=penultimate_channels,
            penultimate_activation=penultimate_activation,
        )

    def build(self, input_shape):
        """Create the U-net's weights (they do not depend on ``input_shape``, the model's input shapes)."""
        self.unet.build((None, None, None, self.channels))

    def call(self, inputs):
        """The magnitude images ``network_output(x + U(x))`` (or ``U(x)`` without ``residual``) of
        ``x = network_input(inputs)``, standardised around ``U`` with ``standardize``."""
        image = self.network_input(inputs)
        if self.standardize:
            mean, variance = tf.nn.moments(image, axes=[1, 2, 3], keepdims=True)
            std = tf.sqrt(variance)
            image = (image - mean) / (std + STANDARDIZE_EPSILON)
        correction = tf.cast(self.unet(image), tf.float32)
        output = image + correction if self.residual else correction
        if self.standardize:
            output = output * std + mean
        return self.network_output(output)

    def get_config(self):
        return {**super().get_config(), **{key: getattr(self, key) for key in self.config_keys}}


@keras.saving.register_keras_serializable(package="fastmri_recon")
class UNetPostProcessing(AdjointUNet, ReconstructionModel):
    """U-net applied to the zero-filled magnitude image (Cartesian).

    Args:
        filters, n_convs, residual, activation, standardize, penultimate_channels,
        penultimate_activation: the U-net options (see `AdjointUNet`).
        crop_size: in-plane output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, mask)`` or ``(kspace, mask, smaps)`` (see `ReconstructionModel`); smaps
            are not used.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.
    """

    needs_smaps = False
    config_keys = AdjointUNet.config_keys + ("standardize", "penultimate_channels", "penultimate_activation")

    def __init__(
        self,
        filters=DEFAULT_FILTERS,
        n_convs=2,
        residual=True,
        activation="relu",
        standardize=False,
        penultimate_channels=None,
        penultimate_activation="linear",
        crop_size=None,
        **kwargs,
    ):
        super().__init__(crop_size=crop_size, **kwargs)
        self.init_unet(
            filters, n_convs, residual, activation, standardize, penultimate_channels, penultimate_activation
        )

    def network_input(self, inputs):
        """The cropped magnitude of the zero-filled image: float32 ``(batch, h, w, 1)``."""
        measured, _ = self.parse_inputs(inputs)
        zero_filled = ifft2c(measured)
        magnitude = rss(zero_filled) if measured.shape.rank == 4 else tf.abs(zero_filled)
        return self.output_image(magnitude)[..., None]

    def network_output(self, output):
        """The corrected magnitude: float32 ``(batch, h, w)``."""
        return output[..., 0]


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NCUNet(AdjointUNet, NonCartesianModel):
    """U-net correcting the complex density-compensated adjoint of non-Cartesian data (2D).

    Args:
        filters, n_convs, residual, activation: the U-net options (see `AdjointUNet`).
        image_shape: image grid ``(H, W)``.
        nufft_eps: NUFFT accuracy.
        crop_size: output size ``(h, w)``, or None.

    Call args:
        inputs: ``(kspace, trajectory, density[, smaps])`` (see `models.nc_base`); smaps are
            required with multi-coil k-space.

    Returns:
        float32 ``(batch, h, w)`` magnitude images.

    Raises:
        ConfigError: for a 3D ``image_shape``.
    """

    channels = 2

    def __init__(
        self,
        filters=DEFAULT_FILTERS,
        n_convs=2,
        residual=True,
        activation="relu",
        image_shape=DEFAULT_IMAGE_SHAPE,
        nufft_eps=DEFAULT_NUFFT_EPS,
        crop_size=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, nufft_eps=nufft_eps, crop_size=crop_size, **kwargs)
        if self.ndim != 2:
            raise ConfigError(f"NCUNet is 2D: image_shape must be (H, W), got {self.image_shape}")
        self.init_unet(filters, n_convs, residual, activation)

    def network_input(self, inputs):
        """The real and imaginary parts of the density-compensated adjoint: float32 ``(batch, H, W, 2)``."""
        measured, encoding = self.parse_inputs(inputs)
        return to_channels(encoding.adjoint(measured)[..., None])

    def network_output(self, output):
        """The magnitude of the corrected complex image, cropped: float32 ``(batch, h, w)``."""
        return self.output_image(from_channels(output)[..., 0])
