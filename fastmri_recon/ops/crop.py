"""Center cropping of images / volumes to a target in-plane size, as fastMRI does."""

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import DataError


def center_crop(x, shape):
    """Crop the last two axes of ``x`` around their centre to ``shape``.

    The crop starts at ``(size - target) // 2`` on each axis, as fastMRI's ``center_crop``.

    Args:
        x: NumPy array or TensorFlow tensor of shape ``(..., H, W)``, any dtype.
        shape: ``(h, w)`` with ``h <= H`` and ``w <= W``.

    Returns:
        Array / tensor of the same kind and dtype, shape ``(..., h, w)``.

    Raises:
        DataError: if the target is larger than the input (NumPy input, or static TF shape): for
            a model, weights built for a larger output than the data's (pass the data's size as
            ``crop_size``).
    """
    h, w = int(shape[0]), int(shape[1])
    if isinstance(x, np.ndarray):
        H, W = x.shape[-2:]
        if h > H or w > W:
            raise DataError(f"cannot center-crop an array of in-plane size {(H, W)} to {(h, w)}")
        top, left = (H - h) // 2, (W - w) // 2
        return x[..., top : top + h, left : left + w]
    x = tf.convert_to_tensor(x)
    static = x.shape[-2:]
    if static[0] is not None and static[1] is not None and (h > static[0] or w > static[1]):
        raise DataError(
            f"cannot center-crop images of in-plane size {tuple(static)} to {(h, w)} (an output size larger than the data's)"
        )
    dims = tf.shape(x)
    top, left = (dims[-2] - h) // 2, (dims[-1] - w) // 2
    return x[..., top : top + h, left : left + w]
