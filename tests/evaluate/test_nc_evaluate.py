"""Evaluating non-Cartesian models and the density-compensated adjoint: the same loop, metrics and outputs."""

import json

import nibabel
import numpy as np
import pytest

from fastmri_recon.data.datasets import (
    NonCartesianConfig,
    Volume3DConfig,
    demo_volumes,
    noncartesian_dataset,
)
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.errors import ConfigError
from fastmri_recon.data.acquisition import NonCartesianAcquisition
from fastmri_recon.evaluate.evaluate import evaluate_directory, undersampled_volumes
from fastmri_recon.evaluate.tables import markdown_table, write_results
from fastmri_recon.models.registry import build

RADIAL = NonCartesianAcquisition(NonCartesianConfig(trajectory="radial", acceleration=4))
SHAPE_3D = (8, 16, 16)


def adjoint(shape=(32, 32)):
    return build("nc-adjoint", image_shape=shape)


@pytest.mark.slow
@pytest.mark.parametrize("coils", ["singlecoil", "multicoil"])
def test_adjoint_on_demo(demo_dir, coils):
    result = evaluate_directory(adjoint(), "nc-adjoint", demo_dir / f"{coils}_val", RADIAL, progress=False)
    assert len(result.summary) == 2 and result.acquisition == "radial x4" and result.num_params == 0
    means = result.summary.means()
    assert 15 < means["PSNR"] < 40 and 0 < means["SSIM"] < 1 and 0 < means["NMSE"] < 1
    assert set(result.summary.per_volume) == {"demo_001.h5", "demo_002.h5"}
    # deterministic simulation: the same numbers again; fewer spokes are worse
    again = evaluate_directory(adjoint(), "nc-adjoint", demo_dir / f"{coils}_val", RADIAL, progress=False)
    assert again.summary.per_volume == result.summary.per_volume
    harder = NonCartesianAcquisition(NonCartesianConfig(trajectory="radial", acceleration=16))
    assert evaluate_directory(adjoint(), "x16", demo_dir / f"{coils}_val", harder, progress=False).summary.means()["PSNR"] < means["PSNR"]


@pytest.mark.slow
def test_inputs_are_the_validation_pipelines(demo_dir):
    """Evaluation feeds every volume's slices, in order, exactly as the training run's validation pipeline."""
    names, volumes, scale = undersampled_volumes(adjoint(), demo_dir / "multicoil_val", RADIAL, batch_size=2)
    assert names == ["demo_001.h5", "demo_002.h5"] and scale == 1e6
    batches = [[[t.numpy() for t in inputs] for inputs in batches] for _, _, batches in volumes]
    assert [[len(b[0]) for b in volume] for volume in batches] == [[2, 1], [2, 1]]  # 3 slices per volume
    flat = [np.concatenate(parts) for parts in zip(*[b for volume in batches for b in volume])]
    expected, _ = next(iter(noncartesian_dataset(demo_dir / "multicoil_val", NonCartesianConfig(batch_size=6), training=False)))
    assert len(flat) == len(expected) == 4  # kspace, trajectory, density, maps
    for got, want in zip(flat, expected):
        np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.slow
def test_density_compensation_off(demo_dir):
    plain = NonCartesianAcquisition(RADIAL.pipeline, density_compensation=False)
    (_, _, density), _ = next(iter(plain.dataset(demo_dir / "singlecoil_val")))
    np.testing.assert_array_equal(density.numpy(), 1.0)
    result = evaluate_directory(adjoint(), "adjoint", demo_dir / "singlecoil_val", plain, progress=False)
    assert result.acquisition == "radial x4, no density compensation"
    compensated = evaluate_directory(adjoint(), "dc-adjoint", demo_dir / "singlecoil_val", RADIAL, progress=False)
    assert compensated.summary.means()["PSNR"] > result.summary.means()["PSNR"]


def test_acquisition_must_match_the_model(demo_dir):
    with pytest.raises(ConfigError, match="nc: reconstructs noncartesian acquisitions: evaluate it with a trajectory"):
        evaluate_directory(adjoint(), "nc", demo_dir / "singlecoil_val", MaskSampler("random", [0.08], [4]), progress=False)
    with pytest.raises(ConfigError, match="zf: reconstructs cartesian acquisitions: evaluate it with a mask .*'radial x4'"):
        evaluate_directory(build("zero-filled"), "zf", demo_dir / "singlecoil_val", RADIAL, progress=False)
    with pytest.raises(ConfigError, match="nc3d: works on 3D images \\(8, 16, 16\\), not on a 'radial x4' acquisition"):
        evaluate_directory(adjoint(SHAPE_3D), "nc3d", demo_dir / "singlecoil_val", RADIAL, progress=False)
    with pytest.raises(ConfigError, match="expected a NonCartesianConfig or a Volume3DConfig"):
        NonCartesianAcquisition(MaskSampler("random", [0.08], [4]))


@pytest.mark.slow
def test_volumes_in_memory_and_nifti(tmp_path):
    volumes = demo_volumes(2, SHAPE_3D, seed=1)
    spirals = NonCartesianAcquisition(Volume3DConfig(trajectory="stack_of_spirals", volume_shape=SHAPE_3D))
    result = evaluate_directory(adjoint(SHAPE_3D), "nc-adjoint", volumes, spirals, progress=False)
    assert result.directory == "2 volumes in memory" and set(result.summary.per_volume) == {"volume_000", "volume_001"}
    assert result.summary.means()["PSNR"] > 15 and result.example[2].shape == SHAPE_3D[1:]
    for index, volume in enumerate(volumes):
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / f"subject_{index}.nii.gz")
    from_files = evaluate_directory(adjoint(SHAPE_3D), "nc-adjoint", tmp_path, spirals, progress=False)
    assert set(from_files.summary.per_volume) == {"subject_0.nii.gz", "subject_1.nii.gz"}
    for name, expected in zip(sorted(from_files.summary.per_volume), result.summary.per_volume.values()):
        assert from_files.summary.per_volume[name]["PSNR"] == pytest.approx(expected["PSNR"], abs=0.05)


@pytest.mark.slow
def test_results_files(demo_dir, tmp_path):
    results = [
        evaluate_directory(adjoint(), "nc-adjoint", demo_dir / "singlecoil_val", RADIAL, progress=False),
        evaluate_directory(build("ncpdnet", image_shape=(32, 32), n_iter=1, n_primal=2, n_filters=4), "ncpdnet", demo_dir / "singlecoil_val", RADIAL, progress=False),
    ]
    assert "| ncpdnet | radial x4 | 2 |" in markdown_table(results)
    paths = write_results(tmp_path, results)
    assert sorted(p.name for p in paths) == ["reconstructions.png", "results.csv", "results.json", "results.md"]
    stored = json.loads((tmp_path / "results.json").read_text())
    assert [r["acquisition"] for r in stored] == ["radial x4", "radial x4"] and stored[1]["num_params"] > 0
