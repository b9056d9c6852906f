"""A TFRecord cache of a directory of fastMRI files, read by the train / validation pipelines.

On clusters whose file systems read HDF5 slowly (h5py serialises its reads behind one lock; many
small chunk reads per slice), the slices can be read from TFRecord shards instead: `build_cache`
converts a directory of single-coil or multi-coil fastMRI files with targets into ``slices-*.tfrecord``
shards and an ``index.json``; a pipeline whose configuration names the cache (``cache_dir``) reads
its slices from it and yields the same batches as from the HDF5 files — the cache replaces only the
source of the slices (`TFRecordCache.volumes` and `TFRecordCache.slice_reader` stand for
`volumes.scan_volumes` and `volumes.slice_reader`); slice selection, masks, seeds, shuffling and
sharding by file are the pipeline's own.

Records. One ``tf.train.Example`` per slice, in file-name and slice order, holding what the pipeline
reads from the file before any random transform:

- ``kspace``: bytes, complex64 little-endian ``([coils,] H, W)``, and ``kspace_shape``: int64;
- ``target``: bytes, float32 little-endian ``(h, w)``, and ``target_shape``: int64 (the header's
  reconstruction matrix);
- ``file_name`` (bytes, the HDF5 file's base name), ``slice_index`` (int64), ``acquisition``
  (bytes; no value when the file has none) and ``padding`` (int64 ``(padding_left, padding_right)``,
  the header's acquired columns).

The values are those `volumes.read_slices` returns (checked for NaN / Inf when the cache is built),
so the pipeline's arithmetic sees the same numbers. Any TFRecord reader can read the shards in
order (``tf.data.TFRecordDataset``, which checks the records' CRCs). The pipelines need the HDF5
pipeline's order instead, so they read the record of a ``(file, slice)`` pair at its offset from the
index: one read of its bytes into an array (``tf.numpy_function``, as the HDF5 reader), whose
k-space and target are located by walking the ``tf.train.Example`` wire format and returned as
views, without copies; its length and the slice it holds (file name, slice index) are checked, its
CRCs are not (TensorFlow's random-access reader, which checks them, is not public API and opens its
file about 4 ms per record on a local disk).

Index. ``index.json`` records the format and `SCHEMA_VERSION`, the source directory, the k-space
kind, every source ``.h5`` file with its size and modification time (ns), the files skipped as bad
(with the message the HDF5 pipeline gives for them), the shards (records, bytes) and every volume's
description with the ``(shard, offset, length)`` of each slice's record. Opening a cache
(`TFRecordCache`) checks it against the source directory and raises a `CacheError` naming the cache
when it is not a cache, of another schema version or k-space kind, incomplete, stale (a source file
added, removed or changed since it was built) or foreign (built from another directory). Sizes and modification times, not
checksums, are compared: hashing the files would read them all, which is what the cache avoids; a
copy of the source that keeps modification times (``rsync -a``, ``cp -p``) still matches.

Atomicity. A cache is written in a hidden temporary directory beside its destination and renamed to
it when complete (an existing cache is replaced only then); an error or an interruption removes the
temporary directory, so the destination never holds a half-written cache.
"""

import contextlib
import json
import os
import secrets
import shutil
import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

from fastmri_recon import __version__
from fastmri_recon.data.datasets.volumes import VolumeInfo, check_files, numpy_slice_reader, read_slices, select_volumes
from fastmri_recon.data.h5 import list_volumes
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.progress import progress_bar

FORMAT = "fastmri_recon.tfrecord_cache"
SCHEMA_VERSION = 1
"""Version of the records' and the index's layout; a cache of another version must be rebuilt."""
INDEX_FILE = "index.json"
DEFAULT_SHARD_SIZE = 32
"""Slices (records) per shard file by default."""
RECORD_HEADER = 12
"""Bytes of a TFRecord before its data: length (8, little-endian), masked CRC32-C of the length (4)."""
RECORD_FRAMING = RECORD_HEADER + 4
"""Bytes a TFRecord adds around its data: the header and the data's masked CRC32-C (4)."""


class CacheError(DataError):
    """A TFRecord cache cannot serve a pipeline: not a cache, incomplete, stale or of another directory."""


def _source_files(directory):
    """``{name: [size, mtime_ns]}`` of the ``.h5`` files of ``directory`` (`list_volumes`' errors)."""
    stats = {path.name: path.stat() for path in list_volumes(directory)}
    return {name: [stat.st_size, stat.st_mtime_ns] for name, stat in stats.items()}


def _bytes_feature(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _record(volume, index, kspace, target):
    """The serialised ``tf.train.Example`` of slice ``index`` of ``volume`` (see the module docstring)."""
    acquisition = [] if volume.acquisition is None else [str(volume.acquisition).encode()]
    features = {
        "file_name": _bytes_feature([volume.path.name.encode()]),
        "slice_index": _int_feature([index]),
        "acquisition": _bytes_feature(acquisition),
        "padding": _int_feature(volume.padding),
        "kspace": _bytes_feature([np.ascontiguousarray(kspace, "<c8").tobytes()]),
        "kspace_shape": _int_feature(kspace.shape),
        "target": _bytes_feature([np.ascontiguousarray(target, "<f4").tobytes()]),
        "target_shape": _int_feature(target.shape),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _volume_entry(volume, records):
    """The index entry of a volume: its `VolumeInfo` fields (but the path) and its records' locations."""
    return {
        "name": volume.path.name,
        "num_slices": volume.num_slices,
        "kspace_shape": list(volume.kspace_shape),
        "target_key": volume.target_key,
        "target_shape": list(volume.target_shape),
        "padding": list(volume.padding),
        "acquisition": volume.acquisition,
        "records": records,
    }


class TFRecordCache:
    """A TFRecord cache of a directory of fastMRI files, opened and checked against that directory.

    Args:
        cache_dir: the cache (written by `build_cache`).
        source_dir: the directory of fastMRI files the pipeline reads; the cache must have been
            built from its current files.
        multicoil: True / False: the k-space kind the pipeline expects; None: either.

    Attributes:
        directory: the cache, a ``Path``.
        source_dir: the source directory, a ``Path``.
        multicoil: the cache's k-space kind.
        shard_size: slices per shard it was built with.
        skipped: messages of the source files skipped as bad when it was built.
        index: the content of its ``index.json``.

    Raises:
        CacheError: naming the cache, when it is not a readable cache of this `SCHEMA_VERSION`,
            holds the other k-space kind, lacks a shard or has one of another size, or was built
            from other files than ``source_dir``'s current ones (stale or foreign).
        DataError: when ``source_dir`` is missing or holds no ``.h5`` file.
    """

    def __init__(self, cache_dir, source_dir, multicoil=None):
        self.directory, self.source_dir = Path(cache_dir), Path(source_dir)
        self.index = self._read_index()
        self.multicoil, self.shard_size, self.skipped = (self.index[key] for key in ("multicoil", "shard_size", "skipped"))
        if multicoil is not None and multicoil != self.multicoil:
            kinds = {True: "multi-coil", False: "single-coil"}
            raise CacheError(f"{self.directory}: a {kinds[self.multicoil]} cache in a {kinds[multicoil]} pipeline")
        self._check_sources()
        self._shards = [self.directory / shard["file"] for shard in self.index["shards"]]
        for path, shard in zip(self._shards, self.index["shards"]):
            size = path.stat().st_size if path.is_file() else None
            if size != shard["bytes"]:
                found = "missing" if size is None else f"{size} bytes"
                raise CacheError(f"{self.directory}: incomplete cache: shard {path.name} is {found}, expected {shard['bytes']} bytes")

    def _read_index(self):
        path = self.directory / INDEX_FILE
        if not path.is_file():
            state = "no such directory" if not self.directory.exists() else f"not a TFRecord cache (no {INDEX_FILE})"
            raise CacheError(f"{self.directory}: {state}; build it with fastmri-recon cache-tfrecords")
        try:
            index = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CacheError(f"{path}: not a TFRecord cache index ({err})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise CacheError(f"{path}: not a TFRecord cache index (format is not '{FORMAT}')")
        if index.get("schema_version") != SCHEMA_VERSION:
            raise CacheError(
                f"{self.directory}: a cache of schema version {index.get('schema_version')}, this package reads "
                f"version {SCHEMA_VERSION}; rebuild it"
            )
        return index

    def _check_sources(self):
        """Raise a `CacheError` unless the source directory's files are those the cache was built from."""
        recorded, current = self.index["sources"], _source_files(self.source_dir)
        if recorded == current:
            return
        built_from = Path(self.index["source_dir"])
        if set(recorded) != set(current) and built_from != self.source_dir.resolve():
            raise CacheError(f"{self.directory}: a cache of {built_from}, not of {self.source_dir} (other files)")
        changes = {
            "added": sorted(set(current) - set(recorded)),
            "removed": sorted(set(recorded) - set(current)),
            "changed (size or modification time)": sorted(n for n in set(recorded) & set(current) if recorded[n] != current[n]),
        }
        details = "; ".join(
            f"{kind}: {', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}"
            for kind, names in changes.items()
            if names
        )
        raise CacheError(
            f"{self.directory}: stale cache: the files of {self.source_dir} changed since it was built ({details}); rebuild it"
        )

    def volumes(self, contrasts=None, skip_bad_files=False):
        """The volumes a pipeline reads, as `volumes.scan_volumes` gives them for the source directory.

        Args:
            contrasts: None, or a tuple of ``acquisition`` attributes to keep.
            skip_bad_files: as in `scan_volumes`: the files skipped as bad when the cache was built
                are warned about; False raises the first one's error, as the HDF5 pipeline does.

        Returns:
            list of `VolumeInfo` (paths in the source directory), sorted by file name.

        Raises:
            DataError: naming the file, for a file skipped as bad (unless ``skip_bad_files``);
                naming the source directory when none of the volumes has one of the contrasts.
        """
        if self.skipped and not skip_bad_files:
            raise DataError(self.skipped[0])
        volumes = [
            VolumeInfo(
                path=self.source_dir / entry["name"],
                num_slices=entry["num_slices"],
                kspace_shape=tuple(entry["kspace_shape"]),
                target_key=entry["target_key"],
                target_shape=tuple(entry["target_shape"]),
                padding=tuple(entry["padding"]),
                acquisition=entry["acquisition"],
            )
            for entry in self.index["volumes"]
        ]
        return select_volumes(self.source_dir, volumes, self.skipped, contrasts)

    def slice_reader(self, volumes, kspace_shape, target_shape):
        """A graph function reading one slice of one of ``volumes`` from the cache (as `volumes.slice_reader`).

        Args:
            volumes: list of `VolumeInfo` from `volumes` (any subset: a shard of the pipelines').
            kspace_shape: static k-space shape of one slice (``common_shape`` of the volumes').
            target_shape: static target shape ``(h, w)``.

        Returns:
            ``read(file_index, slice_index) -> (kspace, target)``: complex64 ``kspace_shape`` and
            float32 ``target_shape`` tensors, the values `volumes.read_slices` reads from the file.
            A record that cannot be read raises (as the iterator's error) a `DataError` naming the
            shard, the offset and the slice.
        """
        records = {entry["name"]: entry["records"] for entry in self.index["volumes"]}
        locations = [records[volume.path.name] for volume in volumes]

        def read_numpy(file_index, slice_index):
            shard, offset, length = locations[file_index][slice_index]
            return _read_slice(self._shards[shard], offset, length, volumes[file_index].path.name, slice_index)

        return numpy_slice_reader(read_numpy, kspace_shape, target_shape)


def _varint(view, position):
    """The base-128 varint at ``position`` of ``view``: ``(value, position after it)``."""
    value = shift = 0
    while True:
        byte = view[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(view, start, stop):
    """``(field number, start, stop)`` of the fields of the protobuf message ``view[start:stop]``.

    Every field of a ``tf.train.Example`` down to its values is length-delimited (wire type 2;
    ``Int64List`` values are packed); another wire type raises a ``ValueError``.
    """
    position = start
    while position < stop:
        key, position = _varint(view, position)
        if key & 7 != 2:
            raise ValueError(f"unexpected protobuf wire type {key & 7} at byte {position}")
        length, position = _varint(view, position)
        yield key >> 3, position, position + length
        position += length


def _packed_varints(view, start, stop):
    """The ints of the packed varints ``view[start:stop]``."""
    values = []
    while start < stop:
        value, start = _varint(view, start)
        values.append(value)
    return values


def example_features(view):
    """The features of a serialised ``tf.train.Example``, located without copying their values.

    Returns:
        ``{name: values}``: for an ``int64_list`` the list of ints, otherwise the ``(start, stop)``
        spans of the values in ``view`` (a ``bytes_list``'s byte strings).
    """
    features = {}
    for number, start, stop in _fields(view, 0, len(view)):
        if number != 1:  # not Example.features
            continue
        for _, entry_start, entry_stop in _fields(view, start, stop):  # map<string, Feature> entries
            entry = {field: (first, last) for field, first, last in _fields(view, entry_start, entry_stop)}
            ((kind, list_start, list_stop),) = _fields(view, *entry[2])  # the Feature's one list
            spans = [(first, last) for _, first, last in _fields(view, list_start, list_stop)]
            if kind == 3:  # int64_list: packed varints
                spans = [value for first, last in spans for value in _packed_varints(view, first, last)]
            features[bytes(view[slice(*entry[1])]).decode()] = spans
    return features


def _read_slice(path, offset, length, name, index):
    """k-space and target of the record at ``offset`` of shard ``path``: slice ``index`` of file ``name``.

    The record is read into one array and parsed in place (`example_features`): the arrays
    returned are views of it. (Parsing with protobuf copies the k-space twice more while holding
    the GIL, which made the multi-coil pipeline about 2.5 times slower than reading HDF5.)

    Args:
        path: the shard.
        offset, length: from the index: the record's data has ``length`` bytes after its header
            at ``offset``.
        name, index: the slice the record must hold.

    Returns:
        complex64 ``([coils,] H, W)`` and float32 ``(h, w)`` arrays.

    Raises:
        DataError: naming the shard and the offset, for a short or unparsable record, or one that
            does not hold that slice.
    """
    buffer = np.empty(RECORD_HEADER + length, np.uint8)
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            size = handle.readinto(buffer)
        if size != len(buffer) or struct.unpack_from("<Q", buffer)[0] != length:
            raise ValueError(f"not a record of {length} bytes")
        data = buffer[RECORD_HEADER:]
        features = example_features(memoryview(data))
        found = (bytes(data[slice(*features["file_name"][0])]).decode(), features["slice_index"][0])
        if found != (name, index):
            raise ValueError(f"it holds slice {found[1]} of {found[0]}")
        kspace = data[slice(*features["kspace"][0])].view("<c8").reshape(features["kspace_shape"])
        target = data[slice(*features["target"][0])].view("<f4").reshape(features["target_shape"])
    except (OSError, ValueError, KeyError, IndexError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the record at offset {offset} (slice {index} of {name}): {err}") from None
    return kspace.astype(np.complex64, copy=False), target.astype(np.float32, copy=False)


def _check_destination(cache_dir):
    """Refuse to replace anything but a cache or an empty directory."""
    if not cache_dir.exists():
        return
    if not cache_dir.is_dir():
        raise DataError(f"{cache_dir}: exists and is not a directory")
    if any(cache_dir.iterdir()) and not (cache_dir / INDEX_FILE).is_file():
        raise DataError(f"{cache_dir}: exists and is not a TFRecord cache (no {INDEX_FILE}); choose another output directory")


@contextlib.contextmanager
def _atomic_directory(path):
    """A hidden temporary directory beside ``path``, which replaces ``path`` when the block succeeds.

    An exception inside the block removes the temporary directory and leaves ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = tmp.with_suffix(".old")
        path.rename(old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


def _up_to_date(cache_dir, source_dir, shard_size, skip_bad_files):
    """The index of ``cache_dir`` if it is a valid cache of ``source_dir``'s current files with this shard size, else None."""
    try:
        cache = TFRecordCache(cache_dir, source_dir)
    except CacheError:
        return None
    if cache.shard_size != shard_size or (cache.skipped and not skip_bad_files):
        return None
    return cache.index


def _write_shards(directory, slices, shard_size, progress):
    """Write the records of ``slices`` (``(VolumeInfo, slice index)`` pairs) in shards of ``shard_size``.

    Returns:
        ``(shards, locations)``: the shards' index entries and ``{file name: [[shard, offset,
        length], ...]}`` (a record's data: ``length`` bytes after its header at ``offset``).
    """
    count = -(-len(slices) // shard_size)
    shards, locations, writer = [], {}, None
    try:
        with progress_bar(slices, "caching", "slice", progress) as bar:
            for position, (volume, index) in enumerate(bar):
                if position % shard_size == 0:
                    if writer is not None:
                        writer.close()
                    shards.append({"file": f"slices-{len(shards):05d}-of-{count:05d}.tfrecord", "records": 0, "bytes": 0})
                    writer = tf.io.TFRecordWriter(str(directory / shards[-1]["file"]))
                record = _record(volume, index, *read_slices(volume, index, with_target=True))
                writer.write(record)
                locations.setdefault(volume.path.name, []).append([len(shards) - 1, shards[-1]["bytes"], len(record)])
                shards[-1]["records"] += 1
                shards[-1]["bytes"] += len(record) + RECORD_FRAMING
    finally:
        if writer is not None:
            writer.close()
    return shards, locations


def _summary(index, cache_dir, built):
    return {
        "built": built,
        "cache_dir": str(cache_dir),
        "volumes": len(index["volumes"]),
        "slices": sum(volume["num_slices"] for volume in index["volumes"]),
        "shards": len(index["shards"]),
        "skipped": len(index["skipped"]),
    }


def build_cache(source_dir, cache_dir, shard_size=DEFAULT_SHARD_SIZE, skip_bad_files=False, progress=True):
    """Convert a directory of fastMRI train / validation files into a TFRecord cache.

    Args:
        source_dir: a directory of single-coil or multi-coil fastMRI files with targets (all of the
            first good file's kind).
        cache_dir: the cache directory: created, or replaced when it holds a cache or nothing. A
            cache of the source's current files with the same shard size is left as it is.
        shard_size: slices (records) per shard file, a positive int.
        skip_bad_files: skip a corrupt or non-conforming file with a warning (recorded in the
            index: a pipeline reading the cache then behaves as one reading the files).
        progress: a progress bar over the slices.

    Returns:
        dict: ``built`` (False when the cache was already up to date), ``cache_dir``, ``volumes``,
        ``slices``, ``shards``, ``skipped`` (number of bad files skipped).

    Raises:
        ConfigError: for a ``shard_size`` that is not a positive int.
        DataError: naming the file, for a bad source file (unless ``skip_bad_files``) or one whose
            values are NaN / Inf; naming the directory for a missing or empty source, or a
            destination that exists and is neither a cache nor empty.
    """
    if not isinstance(shard_size, int) or isinstance(shard_size, bool) or shard_size < 1:
        raise ConfigError(f"shard_size={shard_size!r}: expected a positive integer")
    source_dir, cache_dir = Path(source_dir), Path(cache_dir)
    sources = _source_files(source_dir)  # before reading: a file changed meanwhile makes the cache stale
    _check_destination(cache_dir)
    index = _up_to_date(cache_dir, source_dir, shard_size, skip_bad_files)
    if index is not None:
        return _summary(index, cache_dir, built=False)
    volumes, skipped = check_files([source_dir / name for name in sources], None, True, skip_bad_files)
    volumes = select_volumes(source_dir, volumes, skipped)
    slices = [(volume, index) for volume in volumes for index in range(volume.num_slices)]
    with _atomic_directory(cache_dir) as tmp:
        shards, locations = _write_shards(tmp, slices, shard_size, progress)
        index = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "package_version": __version__,
            "source_dir": str(source_dir.resolve()),
            "multicoil": len(volumes[0].kspace_shape) == 3,
            "shard_size": shard_size,
            "sources": sources,
            "skipped": skipped,
            "shards": shards,
            "volumes": [_volume_entry(volume, locations[volume.path.name]) for volume in volumes],
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")  # last: the directory is renamed after
    return _summary(index, cache_dir, built=True)
