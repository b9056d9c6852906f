"""Train / validation pipelines of Cartesian fastMRI data, single-coil and multi-coil.

A pipeline lists a directory's files, checks every file's structure (`volumes.scan_volumes`),
keeps the contrasts asked for, shards by file for multi-worker training, and turns (file, slice)
pairs into examples: the slice is read from its HDF5 file (``tf.numpy_function``: one slice per
read, never a whole volume), optionally regridded (`transforms.regrid`), undersampled, scaled, and
given sensitivity maps (multi-coil, optional). Examples are batched and prefetched.

Source of the slices. With ``config.cache_dir``, the volumes' descriptions and their slices come
from a TFRecord cache of the directory (`tfrecord.TFRecordCache`) instead of the HDF5 files;
everything else is the same, so the batches are too.

Masks. In training (``training=True``) a mask is drawn per example with `MaskSampler.tf_sample`
from a seed that `tf.data.Dataset.random` gives each example, different at every pass over the data
and the same for the same ``config.seed``. In validation (``training=False``) every slice of a volume
gets the volume's mask, drawn with the NumPy `MaskSampler` seeded by the file name: the masks of
`evaluate.volume_mask`, so that validation losses and evaluation see the same data. Mask columns
outside the header's acquired range are zeroed in both.

Order. Training shuffles the examples (``slice_selection="all"``) or the volumes (``"random"``) with
``config.seed`` at every pass, and drops the last incomplete batch (static batch size for
``tf.distribute``); validation keeps the files' order and every batch.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.data.datasets.config import MulticoilConfig, SinglecoilConfig
from fastmri_recon.data.datasets.tfrecord import TFRecordCache
from fastmri_recon.data.datasets.transforms import (
    compress_slice_coils,
    padding_mask,
    random_global_phase,
    regrid,
    sensitivity_maps,
    volume_geometry,
)
from fastmri_recon.data.datasets.volumes import common_shape, scan_volumes, slice_reader, shard_volumes, slice_range
from fastmri_recon.data.masks import seeded_volume_mask
from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.masking import apply_mask


def singlecoil_dataset(directory, config=SinglecoilConfig(), training=True, input_context=None):
    """The single-coil train / validation pipeline of a directory of fastMRI files.

    Args:
        directory: a directory of single-coil fastMRI files with targets (``reconstruction_esc``).
        config: `SinglecoilConfig`.
        training: True: masks drawn per example, shuffling, incomplete batch dropped; False
            (validation): one mask per volume seeded by the file name, files' order, every batch.
        input_context: optional ``tf.distribute.InputContext`` (from
            ``distribute_datasets_from_function``): this pipeline then reads its share of the
            files and batches ``config.batch_size`` / replicas examples.

    Returns:
        ``tf.data.Dataset`` of ``((kspace, mask), target)``: kspace complex64 ``(batch, H, W)``
        (undersampled), mask float32 ``(batch, W)``, target float32 ``(batch, h, w)``; k-space and
        target multiplied by ``config.scale_factor``.

    Raises:
        DataError: naming the file, for a corrupt or non-conforming file (unless
            ``config.skip_bad_files``); naming the directory when no file is usable.
            `tfrecord.CacheError` (a `DataError`) naming ``config.cache_dir`` when that cache is
            not a cache of ``directory``'s current files.
        ConfigError: when the configuration is not a `SinglecoilConfig` or does not fit the data
            (sizes, slices, sharding).
    """
    check_config_type(config, SinglecoilConfig)
    return _cartesian_dataset(directory, config, False, training, input_context)


def multicoil_dataset(directory, config=MulticoilConfig(), training=True, input_context=None):
    """The multi-coil train / validation pipeline of a directory of fastMRI files.

    Args:
        directory: a directory of multi-coil fastMRI files with targets (``reconstruction_rss``).
        config: `MulticoilConfig`.
        training: as in `singlecoil_dataset`.
        input_context: as in `singlecoil_dataset`.

    Returns:
        ``tf.data.Dataset`` of ``((kspace, mask), target)``, or ``((kspace, mask, smaps), target)``
        with ``config.sensitivity_maps``: kspace complex64 ``(batch, coils, H, W)`` (undersampled),
        mask float32 ``(batch, W)``, smaps complex64 ``(batch, coils, H, W)``, target float32
        ``(batch, h, w)``; k-space and target multiplied by ``config.scale_factor``.

    Raises:
        DataError: as in `singlecoil_dataset`.
        ConfigError: as in `singlecoil_dataset`.
    """
    check_config_type(config, MulticoilConfig)
    return _cartesian_dataset(directory, config, True, training, input_context)


def check_config_type(config, cls):
    """Refuse a pipeline configuration of another class than ``cls`` (ConfigError naming both)."""
    if type(config) is not cls:
        raise ConfigError(f"config: expected a {cls.__name__}, got {type(config).__name__}")


def _volume_source(directory, multicoil, config):
    """The pipeline's volumes and the factory of their slice reader.

    Returns:
        ``(volumes, make_reader)``: the `VolumeInfo` of the usable files of ``directory`` (sorted
        by name, ``config.contrasts`` kept) and ``make_reader(volumes, kspace_shape,
        target_shape) -> read``, where ``read(file_index, slice_index) -> (kspace, target)``
        reads from the HDF5 files (`volumes.slice_reader`) or, with ``config.cache_dir``, from
        the TFRecord cache of ``directory`` (`tfrecord.TFRecordCache.slice_reader`).

    Raises:
        DataError: as `volumes.scan_volumes`; `tfrecord.CacheError` naming the cache when it
            cannot serve ``directory`` (stale, foreign, incomplete, other k-space kind).
    """
    if config.cache_dir is None:
        return scan_volumes(directory, multicoil, True, config.contrasts, config.skip_bad_files), slice_reader
    cache = TFRecordCache(config.cache_dir, directory, multicoil)
    return cache.volumes(config.contrasts, config.skip_bad_files), cache.slice_reader


def replica_batch_size(config, input_context):
    """The batch size of one replica: ``config.batch_size`` split over ``input_context``'s replicas (None: all of it).

    Raises:
        ConfigError: when the replicas cannot share the batch evenly.
    """
    if input_context is None:
        return config.batch_size
    try:
        return input_context.get_per_replica_batch_size(config.batch_size)
    except ValueError as err:
        raise ConfigError(f"batch_size={config.batch_size}: {err}") from None


def _fixed_mask_table(volumes, geometries, sampler):
    """float32 ``(volumes, max W)``: each volume's `seeded_volume_mask` on its (regridded) columns, zeros after."""
    widths = [geometry[0][-1] for geometry in geometries]
    table = np.zeros((len(volumes), max(widths)), np.float32)
    for row, (volume, width, geometry) in enumerate(zip(volumes, widths, geometries)):
        table[row, :width] = seeded_volume_mask(sampler, volume.path.name, width, geometry[1])
    return tf.constant(table)


def batched_dataset(examples, example, batch_size, training, input_context):
    """Map ``example`` over the example indices, batch (dropping the remainder in training), prefetch.

    With an input context the volumes were already sharded by file, so tf.data's auto-sharding is off.
    """
    dataset = examples.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    if input_context is not None:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def example_indices(volumes, config, training):
    """``(file_index, slice_index, seed)`` of every example, in pipeline order.

    ``seed`` (int64) is drawn by ``Dataset.random``: anew at each pass in training, the same in
    validation. In ``"random"`` slice selection it also draws the slice.
    """
    ranges = np.array([slice_range(v, config.edge_slices) for v in volumes], dtype=np.int32)
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=training)
    if config.slice_selection == "all":
        pairs = np.array([(i, s) for i, (start, stop) in enumerate(ranges) for s in range(start, stop)], np.int32)
        examples = tf.data.Dataset.from_tensor_slices((pairs[:, 0], pairs[:, 1]))
        if training:
            examples = examples.shuffle(len(pairs), seed=config.seed, reshuffle_each_iteration=True)
        return tf.data.Dataset.zip((examples, seeds)).map(lambda pair, seed: (pair[0], pair[1], seed))

    examples = tf.data.Dataset.from_tensor_slices((np.arange(len(volumes), dtype=np.int32), ranges))
    if training:
        examples = examples.shuffle(len(volumes), seed=config.seed, reshuffle_each_iteration=True)

    def draw_slice(volume, seed):
        index, (start, stop) = volume[0], tf.unstack(volume[1])
        return index, tf.random.stateless_uniform([], tf.stack([seed, 0]), start, stop, tf.int32), seed

    return tf.data.Dataset.zip((examples, seeds)).map(draw_slice)


def _cartesian_dataset(directory, config, multicoil, training, input_context):
    volumes, make_reader = _volume_source(directory, multicoil, config)
    volumes = shard_volumes(volumes, input_context)
    batch_size = replica_batch_size(config, input_context)
    geometries = [volume_geometry(v, config.grid_shape) for v in volumes]
    kspace_shape = common_shape([g[0] for g in geometries])
    target_shape = common_shape([v.target_shape for v in volumes])
    if batch_size > 1 and None in kspace_shape + target_shape:
        raise ConfigError(
            f"batch_size={config.batch_size}: the volumes' k-space shapes {sorted({g[0] for g in geometries})} "
            f"or target shapes {sorted({v.target_shape for v in volumes})} differ; give a grid_shape (k-space "
            "sizes), keep one contrast / coil count, or use batch_size=1"
        )
    paddings = tf.constant([g[1] for g in geometries], tf.int32)
    offsets = tf.constant([g[2] for g in geometries], tf.int32)
    sampler = config.mask_sampler()
    masks = None if training else _fixed_mask_table(volumes, geometries, sampler)
    compression = config.compression() if multicoil else None
    if compression is not None:
        for volume in volumes:
            compression.check(volume.kspace_shape[0], volume.path)
    scale = tf.constant(config.scale_factor, tf.complex64)
    read = make_reader(volumes, common_shape([v.kspace_shape for v in volumes]), target_shape)

    def example(file_index, slice_index, seed):
        kspace, target = read(file_index, slice_index)
        if config.grid_shape is not None:
            kspace = regrid(kspace, offsets[file_index], config.grid_shape)
        kspace = tf.ensure_shape(kspace, kspace_shape)
        width = kspace_shape[-1] if kspace_shape[-1] is not None else tf.shape(kspace)[-1]
        if training:
            mask, _ = sampler.tf_sample(width, tf.stack([seed, 1]))
            mask = mask * padding_mask(width, paddings[file_index, 0], paddings[file_index, 1])
        else:
            mask = masks[file_index, :width]
        mask = tf.ensure_shape(mask, kspace_shape[-1:])
        kspace = apply_mask(kspace * scale, mask)
        if compression is not None:
            kspace = compress_slice_coils(kspace, compression)
        if training and config.phase_augmentation:
            kspace = random_global_phase(kspace, seed)
        inputs = (kspace, mask)
        if multicoil and config.sensitivity_maps is not None:
            inputs += (sensitivity_maps(kspace, mask, config.sensitivity_maps, config.acs_threshold),)
        return inputs, target * config.scale_factor

    return batched_dataset(example_indices(volumes, config, training), example, batch_size, training, input_context)
