"""The volumes of a pipeline: listing, structural checks, contrast filter, sharding, slice reading.

Every file's structure is checked when a pipeline is built (`scan_volumes`), so that a bad file is
reported by name before any training starts; the k-space values (NaN / Inf) are checked as slices
are read (`read_slices`). tf.data wraps what a reader raises in a TensorFlow error: the readers
record their `DataError` (`recorded`) and `reading_errors` raises it as it is, one line naming the file.
"""

import contextlib
import dataclasses
import warnings
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from fastmri_recon.data.h5 import FIELD_MAP_KEY, FastMRIFile, list_volumes
from fastmri_recon.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """What a pipeline needs to know about one file, read once when it is built.

    Attributes:
        path: the file.
        num_slices: number of slices.
        kspace_shape: in-slice k-space shape, ``(H, W)`` or ``(coils, H, W)``.
        target_key: the target dataset's name, or None (test files).
        target_shape: ``(h, w)`` of the target (the header's reconstruction matrix).
        padding: ``(padding_left, padding_right)``, the acquired columns from the header.
        acquisition: the ``acquisition`` attribute (contrast), or None.
        mask: the file's own ``mask``, float32 ``(W,)``, or None.
        has_field_map: whether the file holds a B0 field map (`data.h5.FIELD_MAP_KEY`).
    """

    path: Path
    num_slices: int
    kspace_shape: tuple
    target_key: str
    target_shape: tuple
    padding: tuple
    acquisition: str
    mask: np.ndarray = None
    has_field_map: bool = dataclasses.field(default=False, compare=False)  # not in a TFRecord cache's index


def _volume_info(path, multicoil, need_target):
    with FastMRIFile(path) as handle:
        if multicoil is not None and handle.is_multicoil != multicoil:
            kind, other = ("multi-coil", "single-coil") if handle.is_multicoil else ("single-coil", "multi-coil")
            raise DataError(f"{path}: {kind} k-space of shape {handle.kspace_shape} in a {other} pipeline")
        if need_target and handle.target_key is None:
            raise DataError(f"{path}: has no target (a test file); training and validation need one")
        if not need_target and handle.mask is None:
            raise DataError(f"{path}: has no 'mask'; inference reads files with their own sampling mask")
        header = handle.header
        padding = (header.padding_left, header.padding_right)  # within the k-space: checked by FastMRIFile
        return VolumeInfo(
            path=Path(path),
            num_slices=handle.num_slices,
            kspace_shape=tuple(handle.kspace_shape[1:]),
            target_key=handle.target_key,
            target_shape=header.target_shape,
            padding=padding,
            acquisition=handle.attrs.get("acquisition"),
            mask=None if need_target else handle.mask,
            has_field_map=handle.has_field_map,
        )


def scan_volumes(directory, multicoil, need_target, contrasts=None, skip_bad_files=False):
    """Check every ``.h5`` file of a directory and describe the usable ones.

    Args:
        directory: a directory of fastMRI files.
        multicoil: True / False: the k-space kind every file must have; None: the first good file's.
        need_target: True for train / validation files (a target is required); False for test
            files (their own ``mask`` is required).
        contrasts: None, or a tuple of ``acquisition`` attributes to keep.
        skip_bad_files: skip a bad file with a warning naming it, instead of raising.

    Returns:
        list of `VolumeInfo`, sorted by file name.

    Raises:
        DataError: naming the file, for a corrupt or non-conforming file (unless skipped); naming
            the directory when it holds no usable file or none of the contrasts.
    """
    volumes, skipped = check_files(list_volumes(directory), multicoil, need_target, skip_bad_files)
    return select_volumes(directory, volumes, skipped, contrasts)


def check_files(paths, multicoil, need_target, skip_bad_files=False):
    """Check the structure of fastMRI files and describe the good ones (`scan_volumes`' first half).

    Args:
        paths: the files, in pipeline order.
        multicoil, need_target, skip_bad_files: as in `scan_volumes`.

    Returns:
        ``(volumes, skipped)``: the `VolumeInfo` of the good files in ``paths``' order, and the
        messages (str) of the bad files, each naming its file (empty unless ``skip_bad_files``).

    Raises:
        DataError: naming the file, for the first bad file unless ``skip_bad_files``.
    """
    volumes, skipped = [], []
    for path in paths:
        try:
            info = _volume_info(path, multicoil, need_target)
        except DataError as err:
            if not skip_bad_files:
                raise
            skipped.append(str(err))
            continue
        multicoil = len(info.kspace_shape) == 3  # None: the first good file sets the kind
        volumes.append(info)
    return volumes, skipped


def select_volumes(directory, volumes, skipped, contrasts=None):
    """The volumes a pipeline uses (`scan_volumes`' second half): skipped files reported, contrasts kept.

    Args:
        directory: the directory the volumes come from (for messages).
        volumes: list of `VolumeInfo` of the good files.
        skipped: messages of the bad files skipped (each one is warned about).
        contrasts: None, or a tuple of ``acquisition`` attributes to keep.

    Returns:
        list of `VolumeInfo`, in ``volumes``' order.

    Raises:
        DataError: naming the directory when no file is usable or none has one of the contrasts.
    """
    for message in skipped:
        warnings.warn(f"skipping a bad file: {message}", stacklevel=3)
    if not volumes:
        raise DataError(f"{directory}: no usable file (all {len(skipped)} skipped)")
    if contrasts is not None:
        found = sorted({str(v.acquisition) for v in volumes})
        volumes = [v for v in volumes if v.acquisition in contrasts]
        if not volumes:
            raise DataError(f"{directory}: no file with acquisition in {list(contrasts)} (found {found})")
    return volumes


def common_shape(shapes):
    """The shape shared by ``shapes`` (all of one rank), with None on the axes where they differ."""
    return tuple(sizes[0] if len(set(sizes)) == 1 else None for sizes in zip(*shapes))


def shard_volumes(volumes, input_context):
    """The volumes of one input pipeline: every ``num_input_pipelines``-th, from its id.

    Args:
        volumes: list of `VolumeInfo`.
        input_context: a ``tf.distribute.InputContext``, or None (no sharding).

    Returns:
        list of `VolumeInfo`; the pipelines' parts are disjoint and cover ``volumes``.

    Raises:
        ConfigError: when there are fewer volumes than input pipelines.
    """
    if input_context is None:
        return volumes
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(volumes) < count:
        raise ConfigError(f"input_context: {count} input pipelines but only {len(volumes)} volumes to shard by file")
    return volumes[index::count]


def slice_range(volume, edge_slices):
    """``(start, stop)`` of the slices kept when ``edge_slices`` are dropped at each end.

    Args:
        volume: `VolumeInfo`.
        edge_slices: int (a number of slices) or float in [0, 0.5) (a fraction, rounded down).

    Raises:
        ConfigError: when no slice of the volume is left.
    """
    edge = edge_slices if isinstance(edge_slices, int) else int(volume.num_slices * edge_slices)
    start, stop = edge, volume.num_slices - edge
    if start >= stop:
        raise ConfigError(f"edge_slices={edge_slices!r} leaves no slice of {volume.path} ({volume.num_slices} slices)")
    return start, stop


def _read_datasets(volume, keys, index):
    """The slices ``index`` of the datasets ``keys`` of a volume's file, checked finite: a list of arrays.

    Raises:
        DataError: naming the file, when it cannot be read or holds NaN / Inf values.
    """
    try:
        with h5py.File(volume.path, "r") as handle:
            arrays = [handle[key][index] for key in keys]
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        raise DataError(f"{volume.path}: cannot read slices {index}: truncated or corrupt file ({err})") from None
    for key, array in zip(keys, arrays):
        if not np.all(np.isfinite(array)):
            raise DataError(f"{volume.path}: {key} slices {index} contain NaN or Inf values")
    return arrays


def read_slices(volume, index, with_target, with_field_map=False):
    """Read k-space (and target, and B0 field map) slices of a volume, checking their values.

    One opening of the file for all of them.

    Args:
        volume: `VolumeInfo`.
        index: an int (one slice) or a ``slice``.
        with_target: also read the target.
        with_field_map: also read the field map (`data.h5.FIELD_MAP_KEY`; only with ``with_target``).

    Returns:
        complex64 k-space ``([slices,] [coils,] H, W)``, and with ``with_target`` float32 target
        ``([slices,] h, w)``, and with ``with_field_map`` the float32 field map in Hz ``([slices,] h, w)``.

    Raises:
        DataError: naming the file, when it cannot be read or holds NaN / Inf values.
    """
    keys = ("kspace", volume.target_key, FIELD_MAP_KEY)[: 1 + with_target + (with_target and with_field_map)]
    arrays = _read_datasets(volume, keys, index)
    arrays[0] = arrays[0].astype(np.complex64, copy=False)
    if with_target:
        return (arrays[0], *(array.astype(np.float32, copy=False) for array in arrays[1:]))
    return arrays[0]


def slice_reader(volumes, kspace_shape, target_shape, with_field_map=False):
    """A graph function reading one slice of one of ``volumes`` from its HDF5 file.

    Args:
        volumes: list of `VolumeInfo`.
        kspace_shape: static k-space shape of one slice (``common_shape`` of the volumes').
        target_shape: static target shape ``(h, w)``.
        with_field_map: also read the slice's B0 field map (every volume ``has_field_map``).

    Returns:
        ``read(file_index, slice_index) -> (kspace, target[, field_map])``: complex64 ``kspace_shape``
        and float32 ``target_shape`` tensors (the field map in Hz, on the target's grid; values checked
        as `read_slices` does).
    """
    return numpy_slice_reader(
        lambda file_index, slice_index: read_slices(volumes[file_index], slice_index, True, with_field_map),
        kspace_shape,
        target_shape,
        with_field_map,
    )


_READ_ERRORS = []
"""The `DataError`s raised by `recorded` readers since `reading_errors` was entered."""


def recorded(read_numpy):
    """``read_numpy`` (a NumPy reader run inside tf.data) remembering the `DataError` it raises, for `reading_errors`."""

    def read(*args):
        try:
            return read_numpy(*args)
        except DataError as err:
            _READ_ERRORS.append(err)
            raise

    return read


@contextlib.contextmanager
def reading_errors():
    """Inside the block, a pipeline whose `recorded` reader failed raises the reader's `DataError`, not TensorFlow's error."""
    _READ_ERRORS.clear()
    try:
        yield
    except tf.errors.OpError:
        if not _READ_ERRORS:
            raise
        raise _READ_ERRORS[0] from None


def numpy_slice_reader(read_numpy, kspace_shape, target_shape, with_field_map=False):
    """A graph function reading slices with a NumPy function (through ``tf.numpy_function``).

    Args:
        read_numpy: ``read_numpy(file_index, slice_index) -> (kspace, target[, field_map])`` with
            Python int indices, returning complex64 and float32 arrays (its `DataError` is `recorded`).
        kspace_shape: static k-space shape of one slice.
        target_shape: static target shape ``(h, w)`` (the field map's too).
        with_field_map: whether ``read_numpy`` returns a field map.

    Returns:
        ``read(file_index, slice_index) -> (kspace, target[, field_map])`` on int tensors: complex64
        ``kspace_shape`` and float32 ``target_shape`` tensors.
    """

    read_numpy = recorded(read_numpy)

    def read(file_index, slice_index):
        arrays = tf.numpy_function(
            lambda file, index: read_numpy(int(file), int(index)),
            [file_index, slice_index],
            (tf.complex64, tf.float32, tf.float32)[: 2 + with_field_map],
            stateful=False,
        )
        for array, shape in zip(arrays, (kspace_shape, target_shape, target_shape)):
            array.set_shape(shape)
        return tuple(arrays)

    return read
