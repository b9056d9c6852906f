"""The TFRecord cache: same batches as the HDF5 files, stale / foreign detection, atomic writing, the ``cache-tfrecords`` command."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from data.test_h5 import corrupt
from pipeline_helpers import copy_files, demo_files_copy, singlecoil_dir  # noqa: F401
from test_cli import run_main

from fastmri_recon.data.datasets import (
    CacheError,
    MulticoilConfig,
    SinglecoilConfig,
    TFRecordCache,
    build_cache,
    multicoil_dataset,
    singlecoil_dataset,
)
from fastmri_recon.data.datasets.tfrecord import INDEX_FILE, SCHEMA_VERSION, example_features
from fastmri_recon.data.datasets.volumes import scan_volumes
from fastmri_recon.data.h5 import read_volume
from fastmri_recon.errors import ConfigError, DataError


def batches(dataset, passes=1):
    """Every batch of ``passes`` passes over a dataset, as nested NumPy arrays."""
    return [tf.nest.map_structure(lambda t: t.numpy(), batch) for _ in range(passes) for batch in dataset]


def assert_same_batches(first, second):
    assert len(first) == len(second) > 0
    tf.nest.map_structure(np.testing.assert_array_equal, first, second)


@pytest.fixture(scope="module")
def multicoil_dir(demo_dir, tmp_path_factory):
    """Three multi-coil volumes (the demo's train and val files), 3 slices of 4 x 64 x 32 each."""
    return demo_files_copy(demo_dir, tmp_path_factory, "multicoil")


@pytest.fixture(scope="module")
def caches(singlecoil_dir, multicoil_dir, tmp_path_factory):  # noqa: F811
    """``{"singlecoil": cache, "multicoil": cache}`` of the two directories (shards of 2 slices)."""
    root = tmp_path_factory.mktemp("caches")
    for name, source in (("singlecoil", singlecoil_dir), ("multicoil", multicoil_dir)):
        assert build_cache(source, root / name, shard_size=2, progress=False)["built"]
    return {"singlecoil": root / "singlecoil", "multicoil": root / "multicoil"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, training",
    [
        ({"batch_size": 2, "seed": 3, "phase_augmentation": True}, True),
        ({"slice_selection": "random", "edge_slices": 1, "accelerations": (4, 8)}, True),
        ({"batch_size": 2, "grid_shape": (48, 36)}, False),
    ],
)
def test_cached_singlecoil_batches_are_the_files_batches(singlecoil_dir, caches, options, training):  # noqa: F811
    config = SinglecoilConfig(**options)
    cached = dataclasses.replace(config, cache_dir=caches["singlecoil"])
    assert cached.cache_dir == str(caches["singlecoil"])
    expected = batches(singlecoil_dataset(singlecoil_dir, config, training), passes=2)  # new shuffle and masks per pass
    assert_same_batches(batches(singlecoil_dataset(singlecoil_dir, cached, training), passes=2), expected)


@pytest.mark.parametrize("training", [True, False])
def test_cached_multicoil_batches_with_sensitivity_maps_are_the_files_batches(multicoil_dir, caches, training):
    config = MulticoilConfig(batch_size=2, sensitivity_maps="acs", mask_type="equispaced_fraction", accelerations=(4, 8))
    cached = dataclasses.replace(config, cache_dir=str(caches["multicoil"]))
    result = batches(multicoil_dataset(multicoil_dir, cached, training))
    assert_same_batches(result, batches(multicoil_dataset(multicoil_dir, config, training)))
    (kspace, _, smaps), target = result[0]
    assert kspace.shape == smaps.shape == (2, 4, 64, 32) and target.shape == (2, 32, 32)


@pytest.mark.slow
def test_sharded_cached_pipelines_are_the_files_shards(multicoil_dir, caches):
    config = MulticoilConfig(batch_size=2)
    names = []
    for index in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        cached = multicoil_dataset(multicoil_dir, dataclasses.replace(config, cache_dir=caches["multicoil"]), True, context)
        assert_same_batches(batches(cached), batches(multicoil_dataset(multicoil_dir, config, True, context)))
        names.append({v.path.name for v in TFRecordCache(caches["multicoil"], multicoil_dir).volumes()[index::2]})
    assert names[0].isdisjoint(names[1]) and len(names[0] | names[1]) == 3


def test_index_and_records_hold_the_files_slices(multicoil_dir, caches):
    cache = TFRecordCache(caches["multicoil"], multicoil_dir, multicoil=True)
    assert cache.volumes() == scan_volumes(multicoil_dir, True, True)
    index = json.loads((caches["multicoil"] / INDEX_FILE).read_text())
    assert index["schema_version"] == SCHEMA_VERSION and index["multicoil"] and index["skipped"] == []
    assert index["sources"] == {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(multicoil_dir.glob("*.h5"))}
    shards = sorted(caches["multicoil"].glob("*.tfrecord"))
    assert [s["file"] for s in index["shards"]] == [p.name for p in shards] and len(shards) == 5  # 9 slices by 2
    assert [s["records"] for s in index["shards"]] == [2, 2, 2, 2, 1]
    spec = {
        key: tf.io.FixedLenFeature([], tf.string) if key in ("kspace", "target", "file_name", "acquisition") else tf.io.FixedLenFeature([size], tf.int64)
        for key, size in (("kspace", 0), ("target", 0), ("file_name", 0), ("acquisition", 0), ("slice_index", 1), ("kspace_shape", 3), ("padding", 2))
    }
    records = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset([str(s) for s in shards])]
    volumes = {p.name: read_volume(p) for p in multicoil_dir.glob("*.h5")}
    assert [(r["file_name"].numpy().decode(), int(r["slice_index"][0])) for r in records] == [
        (name, index) for name in sorted(volumes) for index in range(3)
    ]
    for record in records:
        volume = volumes[record["file_name"].numpy().decode()]
        kspace = tf.io.decode_raw(record["kspace"], tf.complex64).numpy().reshape(record["kspace_shape"].numpy())
        np.testing.assert_array_equal(kspace, volume.kspace[int(record["slice_index"][0])])
        target = tf.io.decode_raw(record["target"], tf.float32).numpy().reshape(volume.target.shape[1:])
        np.testing.assert_array_equal(target, volume.target[int(record["slice_index"][0])])
        assert record["acquisition"].numpy().decode() == volume.attrs["acquisition"]
        assert tuple(record["padding"].numpy()) == (volume.header.padding_left, volume.header.padding_right)


def test_records_are_located_in_place_as_protobuf_parses_them():
    features = {
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a.h5", b"", b"x" * 300])),
        "none": tf.train.Feature(bytes_list=tf.train.BytesList(value=[])),
        "ints": tf.train.Feature(int64_list=tf.train.Int64List(value=[0, 1, 127, 128, 300, 2**40])),
    }
    serialised = tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
    found = example_features(memoryview(serialised))
    assert [serialised[start:stop] for start, stop in found["name"]] == [b"a.h5", b"", b"x" * 300]
    assert found["none"] == [] and found["ints"] == [0, 1, 127, 128, 300, 2**40]


def test_stale_caches_name_the_cache(singlecoil_dir, tmp_path):  # noqa: F811
    source = tmp_path / "source"
    paths = copy_files(sorted(singlecoil_dir.glob("*.h5")), source)
    cache = tmp_path / "cache"
    build_cache(source, cache, progress=False)
    config = SinglecoilConfig(cache_dir=cache)
    stat = os.stat(paths[1])
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same size, newer
    with pytest.raises(CacheError, match=f"{cache}: stale cache: .*changed \\(size or modification time\\): {Path(paths[1]).name}"):
        singlecoil_dataset(source, config)
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert batches(singlecoil_dataset(source, config, training=False))  # back as it was: usable again
    copy_files([Path(paths[0])], source / "more")[0].rename(source / "extra.h5")
    with pytest.raises(CacheError, match=f"{cache}: stale cache: .*added: extra.h5"):
        singlecoil_dataset(source, config)
    (source / "extra.h5").unlink()
    Path(paths[2]).unlink()
    with pytest.raises(CacheError, match=f"stale cache: .*removed: {Path(paths[2]).name}"):
        singlecoil_dataset(source, config)
    assert build_cache(source, cache, progress=False)["built"]  # rebuilt over the stale one
    assert len(batches(singlecoil_dataset(source, config, training=False))) == 6


def test_foreign_and_broken_caches_name_the_cache(demo_dir, caches, multicoil_dir, tmp_path):
    with pytest.raises(CacheError, match=f"{caches['multicoil']}: a cache of {multicoil_dir.resolve()}, not of"):
        multicoil_dataset(demo_dir / "multicoil_val", MulticoilConfig(cache_dir=caches["multicoil"]))
    with pytest.raises(CacheError, match=f"{caches['multicoil']}: a multi-coil cache in a single-coil pipeline"):
        singlecoil_dataset(multicoil_dir, SinglecoilConfig(cache_dir=caches["multicoil"]))
    with pytest.raises(CacheError, match=f"{tmp_path}: not a TFRecord cache \\(no index.json\\)"):
        multicoil_dataset(multicoil_dir, MulticoilConfig(cache_dir=tmp_path))
    with pytest.raises(CacheError, match=f"{tmp_path / 'missing'}: no such directory"):
        multicoil_dataset(multicoil_dir, MulticoilConfig(cache_dir=tmp_path / "missing"))
    copy = tmp_path / "copy"
    copy_files(sorted(caches["multicoil"].iterdir()), copy)
    index = json.loads((copy / INDEX_FILE).read_text())
    (copy / INDEX_FILE).write_text(json.dumps({**index, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(CacheError, match=f"{copy}: a cache of schema version {SCHEMA_VERSION + 1}"):
        TFRecordCache(copy, multicoil_dir)
    (copy / INDEX_FILE).write_text(json.dumps({**index, "format": "something else"}))
    with pytest.raises(CacheError, match="not a TFRecord cache index"):
        TFRecordCache(copy, multicoil_dir)
    (copy / INDEX_FILE).write_text(json.dumps(index))
    shard = copy / index["shards"][-1]["file"]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(CacheError, match=f"{copy}: incomplete cache: shard {shard.name} is .* expected"):
        TFRecordCache(copy, multicoil_dir)
    with pytest.raises(ConfigError, match="cache_dir"):
        MulticoilConfig(cache_dir="")


def test_unreadable_records_raise_naming_the_shard(singlecoil_dir, caches, tmp_path):  # noqa: F811
    copy = tmp_path / "copy"
    copy_files(sorted(caches["singlecoil"].iterdir()), copy)
    index = json.loads((copy / INDEX_FILE).read_text())
    first = index["volumes"][0]
    first["records"][0] = first["records"][1]  # slice 0's entry points at slice 1's record
    (copy / INDEX_FILE).write_text(json.dumps(index))
    dataset = singlecoil_dataset(singlecoil_dir, SinglecoilConfig(cache_dir=copy), training=False)
    shard = copy / index["shards"][0]["file"]
    offset = first["records"][1][1]
    with pytest.raises(tf.errors.OpError, match=f"{shard}: cannot read the record at offset {offset} \\(slice 0 of {first['name']}\\): it holds slice 1"):
        batches(dataset)
    data = bytearray(shard.read_bytes())
    data[offset : offset + 8] = bytes(8)  # a zero length: not the record the index describes (same shard size)
    shard.write_bytes(bytes(data))
    with pytest.raises(tf.errors.OpError, match=f"{shard}: cannot read the record at offset {offset} .*not a record of"):
        batches(singlecoil_dataset(singlecoil_dir, SinglecoilConfig(cache_dir=copy), training=False))


@pytest.mark.slow
def test_bad_files_skipped_when_cached_behave_as_in_the_files_pipeline(singlecoil_dir, tmp_path):  # noqa: F811
    copy_files(sorted(singlecoil_dir.glob("*.h5"))[:2], tmp_path / "source")
    message = corrupt("truncated", tmp_path / "source" / "bad.h5")
    with pytest.raises(DataError, match=f"bad.h5.*{message}"):
        build_cache(tmp_path / "source", tmp_path / "cache", progress=False)
    with pytest.warns(UserWarning, match="skipping a bad file"):
        info = build_cache(tmp_path / "source", tmp_path / "cache", skip_bad_files=True, progress=False)
    assert (info["volumes"], info["slices"], info["skipped"]) == (2, 6, 1)
    cached = SinglecoilConfig(cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=f"bad.h5.*{message}"):  # as the HDF5 pipeline
        singlecoil_dataset(tmp_path / "source", cached)
    with pytest.warns(UserWarning, match=f"skipping a bad file: .*bad.h5.*{message}"):
        result = batches(singlecoil_dataset(tmp_path / "source", dataclasses.replace(cached, skip_bad_files=True)))
    with pytest.warns(UserWarning):
        assert_same_batches(result, batches(singlecoil_dataset(tmp_path / "source", SinglecoilConfig(skip_bad_files=True))))


def test_an_error_while_writing_leaves_no_partial_cache(singlecoil_dir, tmp_path):  # noqa: F811
    source, cache = tmp_path / "source", tmp_path / "out" / "cache"
    copy_files(sorted(singlecoil_dir.glob("*.h5")), source)
    message = corrupt("nan", source / "zz_nan.h5")  # structure fine, a NaN in slice 1 of the last file
    with pytest.raises(DataError, match=f"zz_nan.h5: kspace slices 1 .*{message}"):
        build_cache(source, cache, shard_size=2, progress=False)
    assert list((tmp_path / "out").iterdir()) == []  # neither the cache nor a temporary folder
    (source / "zz_nan.h5").unlink()
    assert build_cache(source, cache, progress=False)["built"]
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    corrupt("nan", source / "zz_nan.h5")  # the cache is now stale: a rebuild starts and fails
    with pytest.raises(DataError, match="NaN"):
        build_cache(source, cache, progress=False)
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before  # the previous cache, untouched
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cache"]


def test_build_keeps_an_up_to_date_cache_and_refuses_other_folders(singlecoil_dir, caches, tmp_path):  # noqa: F811
    index = (caches["singlecoil"] / INDEX_FILE).read_text()
    info = build_cache(singlecoil_dir, caches["singlecoil"], shard_size=2, progress=False)
    assert info == {"built": False, "cache_dir": str(caches["singlecoil"]), "volumes": 3, "slices": 9, "shards": 5, "skipped": 0}
    assert (caches["singlecoil"] / INDEX_FILE).read_text() == index
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=f"{tmp_path}: exists and is not a TFRecord cache"):
        build_cache(singlecoil_dir, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="shard_size=0"):
        build_cache(singlecoil_dir, tmp_path / "cache", shard_size=0, progress=False)
    with pytest.raises(DataError, match="no such directory"):
        build_cache(tmp_path / "missing", tmp_path / "cache", progress=False)


def test_command_builds_a_cache_the_pipeline_reads(singlecoil_dir, tmp_path, capfd):  # noqa: F811
    args = ["cache-tfrecords", str(singlecoil_dir), str(tmp_path / "cache"), "--shard-size", "4", "--quiet"]
    status, out, err = run_main(args, capfd)
    assert status == 0 and out.strip() == f"cache built: 9 slices of 3 volumes in 3 shards in {tmp_path / 'cache'}", err
    config = SinglecoilConfig(batch_size=3, cache_dir=tmp_path / "cache")
    assert len(batches(singlecoil_dataset(singlecoil_dir, config, training=False))) == 3
    status, out, _ = run_main(args, capfd)
    assert status == 0 and "cache already up to date" in out
    for argv, fragment in (([str(tmp_path / "missing"), str(tmp_path / "c")], "no such directory"), ([str(singlecoil_dir), str(tmp_path / "c"), "--shard-size", "0"], "--shard-size")):
        status, _, err = run_main(["cache-tfrecords", *argv], capfd)
        err = [line for line in err if not line.startswith(("E0000", "W0000", "I0000"))]
        assert status == 2 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0]


@pytest.mark.slow
def test_installed_command_bad_input_is_one_line_and_status_2(tmp_path):
    exe = Path(sys.executable).with_name("fastmri-recon")
    result = subprocess.run(
        [str(exe), "cache-tfrecords", str(tmp_path / "missing"), str(tmp_path / "cache")], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2 and result.stderr == f"error: {tmp_path / 'missing'}: no such directory\n"
    assert not (tmp_path / "cache").exists()
