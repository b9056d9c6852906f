"""Data consistency in k-space: bring a k-space estimate back to the measurements where sampled.

Replacement (the noiseless case of Schlemper et al. 2017): ``k <- (1 - M) k + M y``, which leaves
the sampled entries exactly equal to the measurements. Learned weight (their noisy case, with the
weight of the benchmark's code): ``k <- k + lambda M (y - k)``, with a trainable scalar ``lambda``
initialised to 1 (replacement).
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.masking import apply_mask

MODES = ("replace", "learned")


def replace_measured(kspace, measured, mask):
    """Replace the sampled entries of ``kspace`` by the measured ones.

    Args:
        kspace: complex64 ``(batch, H, W)`` or ``(batch, coils, H, W)``, the current estimate.
        measured: complex64, same shape, the measurements (only sampled entries are used).
        mask: float ``(batch, W)`` or ``(W,)``.

    Returns:
        complex64 of ``kspace``'s shape, equal to ``measured`` on the sampled columns.
    """
    mask = tf.cast(mask, tf.float32)
    return apply_mask(kspace, 1.0 - mask) + apply_mask(measured, mask)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class DataConsistency(keras.layers.Layer):
    """Data consistency by replacement or with a learned weight.

    Args:
        mode: ``"replace"`` (no weights) or ``"learned"`` (one trainable float32 scalar).

    Call args:
        inputs: ``(kspace, measured, mask)``: kspace and measured complex64 ``(batch, H, W)`` or
            ``(batch, coils, H, W)``, mask float ``(batch, W)`` or ``(W,)``.

    Returns:
        complex64 of ``kspace``'s shape.

    Raises:
        ConfigError: for an unknown mode.
    """

    def __init__(self, mode="replace", **kwargs):
        if mode not in MODES:
            raise ConfigError(f"data consistency mode must be one of {', '.join(MODES)}, got '{mode}'")
        kwargs.setdefault("dtype", "float32")  # complex arithmetic: no float16 autocasting
        super().__init__(**kwargs)
        self.mode = mode

    def build(self, input_shape):
        """Create the weight of the learned mode (a scalar: ``input_shape`` is not used)."""
        if self.mode == "learned":
            self.weight = self.add_weight(name="weight", shape=(), initializer="ones", dtype="float32")

    def call(self, inputs):
        kspace, measured, mask = inputs
        if self.mode == "replace":
            return replace_measured(kspace, measured, mask)
        weight = tf.complex(tf.cast(self.weight, tf.float32), 0.0)
        return kspace + weight * apply_mask(measured - kspace, mask)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
