import hashlib
import json

import numpy as np
import pytest
from conftest import TINY_DEMO

from fastmri_recon.data.demo import DemoConfig, birdcage_maps, build_demo_dataset, template_path
from fastmri_recon.data.h5 import FastMRIFile, read_volume
from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_ifftc

FOLDERS = [f"{c}_{s}" for c in ("singlecoil", "multicoil") for s in ("train", "val", "test")]


def test_template_is_found_in_nilearn_wheel():
    assert template_path().name == "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def test_layout_and_splits(demo_dir):
    info = json.loads((demo_dir / "demo_info.json").read_text())
    assert sorted(info["files"]) == sorted(FOLDERS)
    for folder in FOLDERS:
        assert sorted(p.name for p in (demo_dir / folder).glob("*.h5")) == info["files"][folder]
    patients = {}
    for split in ("train", "val", "test"):
        patients[split] = {read_volume(p).attrs["patient_id"] for p in (demo_dir / f"singlecoil_{split}").glob("*.h5")}
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert not (patients["val"] & patients["test"])


@pytest.mark.parametrize("coil", ["singlecoil", "multicoil"])
def test_train_files_follow_fastmri_schema(demo_dir, coil):
    size = TINY_DEMO.image_size
    for path in sorted((demo_dir / f"{coil}_val").glob("*.h5")):
        volume = read_volume(path)
        expected = (TINY_DEMO.slices, TINY_DEMO.coils, 2 * size, size) if coil == "multicoil" else (TINY_DEMO.slices, 2 * size, size)
        assert volume.kspace.shape == expected and volume.kspace.dtype == np.complex64
        assert volume.target.shape == (TINY_DEMO.slices, size, size)
        assert volume.header.target_shape == (size, size)
        assert (volume.header.padding_left, volume.header.padding_right) == (0, size)
        assert volume.attrs["acquisition"] == "AXT1"
        # targets are the magnitude / RSS of the fully-sampled noisy k-space, cropped as fastMRI's
        images = np.abs(np_ifftc(volume.kspace))
        if coil == "multicoil":
            images = np.sqrt(np.sum(images**2, axis=1))
        np.testing.assert_allclose(volume.target, center_crop(images, (size, size)), rtol=1e-4, atol=1e-9)
        assert volume.attrs["max"] == pytest.approx(float(volume.target.max()))
        # magnitudes of the order of real fastMRI files
        assert 1e-6 < volume.target.max() < 1e-2


def test_test_files_carry_mask_and_undersampled_kspace(demo_dir):
    accelerations = set()
    for path in sorted((demo_dir / "multicoil_test").glob("*.h5")):
        with FastMRIFile(path) as handle:
            assert handle.target_key is None
            mask = handle.mask
            kspace = handle.kspace()
            assert np.all(kspace[..., mask == 0] == 0)
            assert np.all(np.abs(kspace[..., mask == 1]).sum(axis=(0, 1, 2)) > 0)
            accelerations.add(handle.attrs["acceleration"])
            assert handle.attrs["num_low_frequency"] >= 1
    assert accelerations == {4, 8}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    config = DemoConfig(train_subjects=1, val_subjects=1, test_subjects=1, slices=2, image_size=16, coils=2)

    def digests(out):
        build_demo_dataset(out, config, progress=False)
        return {p.relative_to(out): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*.h5"))}

    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert first == second and len(first) == 6
    other = DemoConfig(**{**config.__dict__, "seed": 1})
    build_demo_dataset(tmp_path / "c", other, progress=False)
    changed = hashlib.sha256((tmp_path / "c/singlecoil_train/demo_000.h5").read_bytes()).hexdigest()
    assert changed != first[next(iter(first))]


def test_rebuild_is_skipped_and_smaller_build_removes_stale_files(tmp_path):
    config = DemoConfig(train_subjects=2, val_subjects=1, test_subjects=1, slices=1, image_size=16, coils=2)
    assert build_demo_dataset(tmp_path, config, progress=False)["built"]
    assert not build_demo_dataset(tmp_path, config, progress=False)["built"]
    smaller = DemoConfig(**{**config.__dict__, "train_subjects": 1})
    build_demo_dataset(tmp_path, smaller, progress=False)
    assert sorted(p.name for p in (tmp_path / "singlecoil_train").glob("*.h5")) == ["demo_000.h5"]


def test_birdcage_maps():
    maps = birdcage_maps(8, (64, 32))
    assert maps.shape == (8, 64, 32) and maps.dtype == np.complex64
    rss = np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))
    assert rss.mean() == pytest.approx(1.0, rel=1e-5)
    # each coil is most sensitive near its own position on the circle: coil 0 sits at +x (right)
    assert np.abs(maps[0, 32, -1]) > np.abs(maps[0, 32, 0])


@pytest.mark.parametrize("field, value", [("coils", 1), ("image_size", 15), ("snr", 0.0), ("slices", 0)])
def test_invalid_config(field, value):
    with pytest.raises(ConfigError, match=field):
        DemoConfig(**{field: value})


def test_every_file_holds_a_field_map(demo_dir):
    from fastmri_recon.data.demo import load_template, simulate_subject

    size = TINY_DEMO.image_size
    for folder in FOLDERS:
        for path in sorted((demo_dir / folder).glob("*.h5")):
            with FastMRIFile(path) as handle:
                field_map = handle.field_map()
            assert field_map.shape == (TINY_DEMO.slices, size, size) and field_map.dtype == np.float32
            assert 20 < np.abs(field_map).max() < 200  # Hz: a 40 Hz smooth field and a 120 Hz bump
    data = simulate_subject(load_template(), TINY_DEMO, 0)
    with FastMRIFile(demo_dir / "singlecoil_train" / "demo_000.h5") as handle:
        np.testing.assert_array_equal(handle.field_map(), data["b0_map"])
        np.testing.assert_array_equal(handle.kspace(), data["singlecoil"])
