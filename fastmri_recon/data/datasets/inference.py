"""The test / inference pipeline: files carrying their own undersampled k-space and ``mask``.

fastMRI's test and challenge files hold undersampled k-space, the ``mask`` that sampled it and no
target. The pipeline yields, volume by volume, batches of consecutive slices (never mixing volumes)
with what a ``reconstruct`` command needs to write one ``reconstruction`` file per volume: the file
name, the slice indices and the model inputs. No regridding: it would mix the columns of
undersampled data, and the slices of one volume batch as they are.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.data.datasets.config import InferenceConfig
from fastmri_recon.data.datasets.transforms import sensitivity_maps
from fastmri_recon.data.datasets.volumes import common_shape, read_slices, recorded, scan_volumes
from fastmri_recon.data.masks import apply_padding
from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.masking import apply_mask


def inference_dataset(directory, config=InferenceConfig()):
    """The inference pipeline of a directory of fastMRI test files.

    Args:
        directory: a directory of fastMRI files with a ``mask`` (single-coil or multi-coil, all
            of one kind: the first usable file's).
        config: `InferenceConfig`.

    Returns:
        ``tf.data.Dataset`` of ``(file_names, slice_indices, inputs)``, volume after volume in
        file-name order: file_names string ``(batch,)`` (the file's base name), slice_indices int32
        ``(batch,)``, inputs ``(kspace, mask)`` or ``(kspace, mask, smaps)`` as for the train
        pipelines: kspace complex64 ``(batch, [coils,] H, W)`` multiplied by ``config.scale_factor``,
        mask float32 ``(batch, W)`` (the file's mask, columns outside the header's acquired range
        zeroed), smaps complex64 ``(batch, coils, H, W)`` (``coils``: ``config.virtual_coils`` when
        the slices are compressed). ``batch`` is at most
        ``config.batch_size``. A slice that cannot be read (NaN / Inf values, a corrupt file)
        fails the iteration; inside `volumes.reading_errors` as the `DataError` naming its file.

    Raises:
        DataError: naming the file, for a corrupt file or one without ``mask`` (unless
            ``config.skip_bad_files``), or of the other k-space kind than the first.
        ConfigError: for a ``config`` that is not an `InferenceConfig`, sensitivity maps or virtual
            coils of single-coil files, or more virtual coils than a file's coils.
    """
    if type(config) is not InferenceConfig:
        raise ConfigError(f"config: expected an InferenceConfig, got {type(config).__name__}")
    volumes = scan_volumes(directory, None, False, config.contrasts, config.skip_bad_files)
    multicoil = len(volumes[0].kspace_shape) == 3
    if config.sensitivity_maps is not None and not multicoil:
        raise ConfigError(f"sensitivity_maps={config.sensitivity_maps!r}: the files of {directory} are single-coil")
    chunks = [
        (index, start, min(start + config.batch_size, volume.num_slices))
        for index, volume in enumerate(volumes)
        for start in range(0, volume.num_slices, config.batch_size)
    ]
    compression = config.compression()
    if compression is not None:
        if not multicoil:
            raise ConfigError(f"virtual_coils={config.virtual_coils}: the files of {directory} are single-coil")
        for volume in volumes:
            compression.check(volume.kspace_shape[0], volume.path)
    kspace_shape = common_shape([v.kspace_shape for v in volumes])
    if compression is not None:
        kspace_shape = (compression.coils, *kspace_shape[1:])
    masks = [apply_padding(v.mask, *v.padding) for v in volumes]
    scale = tf.constant(config.scale_factor, tf.complex64)

    @recorded
    def read(index, start, stop):
        volume = volumes[int(index)]
        kspace = read_slices(volume, slice(int(start), int(stop)), with_target=False)
        if compression is not None:  # test files hold undersampled k-space: each slice from its acquired samples
            kspace = compression.apply(kspace)
        mask = np.broadcast_to(masks[int(index)], (kspace.shape[0], kspace.shape[-1]))
        return np.bytes_(volume.path.name), kspace, np.ascontiguousarray(mask)

    def element(index, start, stop):
        name, kspace, mask = tf.numpy_function(
            read, [index, start, stop], (tf.string, tf.complex64, tf.float32), stateful=False
        )
        name.set_shape([])
        kspace.set_shape((None, *kspace_shape))
        mask.set_shape((None, kspace_shape[-1]))
        kspace = apply_mask(kspace * scale, mask)
        inputs = (kspace, mask)
        if config.sensitivity_maps is not None:
            inputs += (sensitivity_maps(kspace, mask, config.sensitivity_maps, config.acs_threshold),)
        return tf.fill([stop - start], name), tf.range(start, stop), inputs

    dataset = tf.data.Dataset.from_tensor_slices(tuple(np.array(chunks, np.int32).T))
    return dataset.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
