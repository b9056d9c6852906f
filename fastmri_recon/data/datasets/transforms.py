"""Per-example operations of the pipelines: a common k-space grid, header padding, sensitivity maps.

Regridding. fastMRI volumes differ in k-space size (knee widths 368, 372, ...; brain heights and
widths vary), so they cannot be batched as they are. `regrid` changes the image grid without
changing the pixel size: the fully sampled k-space is transformed to an image, cropped or
zero-padded to ``grid_shape`` around the target's crop window, and transformed back. The target
(the centre crop of the image) is thus unchanged and a model's centre crop of the new image falls
on the same pixels. It is exact for fully sampled data, so it runs before the mask is drawn (on the
new columns); k-space extends over the same frequencies, so the acquired range from the header
(`grid_padding`) is rescaled to the new column spacing.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.data.sensitivity import acs_sensitivity_maps, espirit_maps
from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.fourier import fft2c, ifft2c


def window_offset(size, new_size, crop):
    """First image row / column kept when an axis of ``size`` becomes ``new_size``.

    Chosen so that the centre crop of ``crop`` pixels (which starts at ``(size - crop) // 2``)
    starts at ``(new_size - crop) // 2`` after the change. Negative: zero-padding in front.
    """
    return (size - crop) // 2 - (new_size - crop) // 2


def grid_padding(padding, width, new_width):
    """The acquired columns ``(left, right)`` on a grid of ``new_width`` columns over the same frequencies.

    Column ``j`` of ``width`` columns covers the frequencies (cycles per pixel) within half a column
    of ``(j - width // 2) / width``; the new range holds the new columns whose frequency falls in
    the band the acquired columns cover (so a fully sampled grid stays fully sampled).
    """

    def new_column(column):  # ceil(new_width // 2 + (column - width // 2 - 1/2) * new_width / width), exactly
        numerator = (new_width // 2) * 2 * width + (2 * (column - width // 2) - 1) * new_width
        return -(-numerator // (2 * width))

    left, right = padding
    return max(new_column(left), 0), min(new_column(right), new_width)


def volume_geometry(volume, grid_shape):
    """K-space shape, acquired columns and window offsets of a volume's examples.

    Args:
        volume: `volumes.VolumeInfo`.
        grid_shape: None or ``(H, W)``.

    Returns:
        ``(kspace_shape, padding, offsets)``: the in-slice k-space shape after regridding, the
        acquired columns ``(left, right)`` on it, and the ``(row, column)`` window offsets
        (``(0, 0)`` without regridding).

    Raises:
        ConfigError: when ``grid_shape`` is smaller than the volume's target.
    """
    if grid_shape is None:
        return volume.kspace_shape, volume.padding, (0, 0)
    if grid_shape[0] < volume.target_shape[0] or grid_shape[1] < volume.target_shape[1]:
        raise ConfigError(f"grid_shape={grid_shape}: smaller than the target {volume.target_shape} of {volume.path}")
    height, width = volume.kspace_shape[-2:]
    offsets = tuple(window_offset(s, g, c) for s, g, c in zip((height, width), grid_shape, volume.target_shape))
    return (*volume.kspace_shape[:-2], *grid_shape), grid_padding(volume.padding, width, grid_shape[1]), offsets


def _window(image, axis, offset, new_size):
    """Rows / columns ``[offset, offset + new_size)`` of ``image`` along ``axis``, zeros outside."""
    size = tf.shape(image)[axis]
    paddings = [[0, 0]] * image.shape.rank
    paddings[axis] = [tf.maximum(-offset, 0), tf.maximum(offset + new_size - size, 0)]
    padded = tf.pad(image, paddings)
    start = tf.maximum(offset, 0)
    return tf.gather(padded, tf.range(start, start + new_size), axis=axis)


def regrid(kspace, offsets, grid_shape):
    """Bring fully sampled k-space to the image grid ``grid_shape`` (same pixel size).

    Args:
        kspace: complex64 ``([coils,] H, W)``.
        offsets: int32 ``(2,)`` window offsets from `volume_geometry`.
        grid_shape: ``(H', W')``, Python ints.

    Returns:
        complex64 ``([coils,] H', W')``.
    """
    return fft2c(window_image(ifft2c(kspace), offsets, grid_shape))


def window_image(image, offsets, grid_shape):
    """The ``grid_shape`` window of an image starting at ``offsets`` (zeros outside the image).

    Args:
        image: tensor ``(..., H, W)``.
        offsets: int32 ``(2,)`` window offsets from `volume_geometry` (negative: zero-padding).
        grid_shape: ``(H', W')``, Python ints.

    Returns:
        tensor ``(..., H', W')``.
    """
    rank = image.shape.rank
    window = _window(image, rank - 2, offsets[0], grid_shape[0])
    window = _window(window, rank - 1, offsets[1], grid_shape[1])
    window.set_shape(image.shape[:-2].concatenate(grid_shape))
    return window


def padding_mask(width, left, right):
    """float32 ``(width,)``: 1 on the acquired columns ``[left, right)``, 0 elsewhere."""
    cols = tf.range(width)
    return tf.cast((cols >= left) & (cols < right), tf.float32)


def _numpy_espirit(kspace, mask):
    """ESPIRiT maps of every slice of ``(..., coils, H, W)`` k-space with masks ``(..., W)``."""
    kspace, mask = np.asarray(kspace), np.broadcast_to(mask, kspace.shape[:-3] + mask.shape[-1:])
    slices = zip(kspace.reshape(-1, *kspace.shape[-3:]), mask.reshape(-1, mask.shape[-1]))
    return np.stack([espirit_maps(k, m) for k, m in slices]).reshape(kspace.shape)


def sensitivity_maps(kspace, mask, method, acs_threshold):
    """Sensitivity maps of undersampled multi-coil k-space, by ``method``.

    Args:
        kspace: complex64 ``(..., coils, H, W)``.
        mask: float32 ``(..., W)``.
        method: ``"acs"`` (`sensitivity.acs_sensitivity_maps`) or ``"espirit"``
            (`sensitivity.espirit_maps`, through ``tf.numpy_function``).
        acs_threshold: background threshold of the ``"acs"`` maps.

    Returns:
        complex64 tensor of ``kspace``'s shape.
    """
    if method == "acs":
        return acs_sensitivity_maps(kspace, mask, acs_threshold)
    maps = tf.numpy_function(_numpy_espirit, [kspace, mask], tf.complex64, stateful=False)
    maps.set_shape(kspace.shape)
    return maps


def compress_slice_coils(kspace, compression):
    """A slice's k-space compressed to virtual coils, in a tf.data pipeline.

    Args:
        kspace: complex64 ``(coils, H, W)``, undersampled (the compression sees its acquired samples).
        compression: a `coil_compression.SliceCompression` (checked against the coil count beforehand).

    Returns:
        complex64 ``(compression.coils, H, W)``, through ``tf.numpy_function``.
    """
    compressed = tf.numpy_function(lambda k: compression.apply(k[None])[0], [kspace], tf.complex64, stateful=False)
    compressed.set_shape((compression.coils, *kspace.shape[1:]))
    return compressed


def random_global_phase(data, seed):
    """Multiply complex data by ``exp(i theta)``, theta drawn uniformly in [0, 2 pi) from ``seed``.

    A global phase leaves magnitude targets unchanged; used as training augmentation because
    complex networks are not phase-equivariant and a few subjects cover few image phases.

    Args:
        data: complex64 tensor (k-space or samples) of any shape.
        seed: int scalar tensor, the example's seed.

    Returns:
        complex64 tensor of ``data``'s shape.
    """
    theta = tf.random.stateless_uniform([], tf.stack([tf.cast(seed, tf.int64), 2]), 0.0, 2.0 * np.pi)
    return data * tf.exp(tf.complex(0.0, theta))
