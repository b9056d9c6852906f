"""The sectioned configuration (`training.config.SECTIONS`): files in sections, ``--set`` overrides, flat files as before."""

import dataclasses
import json

import pytest
from test_cli import run_main

from fastmri_recon.errors import ConfigError
from fastmri_recon.training.config import SECTIONS, TrainConfig, flatten_sections, from_dict, nest, set_override


def test_every_field_is_in_exactly_one_section():
    fields = [field for keys in SECTIONS.values() for field in keys.values()]
    assert sorted(fields) == sorted(field.name for field in dataclasses.fields(TrainConfig))


def test_sections_and_the_flat_form_give_the_same_configuration():
    flat = {"model": "pdnet", "model_config": {"n_iter": 2}, "mask_type": "equispaced", "accelerations": [4, 8],
            "coils": "multicoil", "edge_slices": 2, "epochs": 3, "learning_rate": 3e-4, "seed": 5}  # fmt: skip
    sectioned = nest(flat)
    assert sectioned["model"] == {"name": "pdnet", "config": {"n_iter": 2}} and sectioned["data"]["edge_slices"] == 2
    assert flatten_sections(sectioned) == flat
    assert from_dict(sectioned) == from_dict(flat)
    mixed = {"model": "pdnet", "loop": {"epochs": 3}, "seed": 5}  # flat keys beside sections
    assert from_dict(mixed) == from_dict({"model": "pdnet", "epochs": 3, "seed": 5})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"loop": {"epoch": 3}}, "unknown key loop.epoch (keys of loop: loss, optimizer"),
        ({"data": 3}, "section data=3: expected a mapping"),
        ({"epochs": 2, "loop": {"epochs": 3}}, "loop.epochs given twice"),
        ({"model": {"nme": "unet"}}, "unknown key model.nme"),
    ],
)
def test_bad_sections_are_named(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        from_dict(values, "run.yaml")


def test_set_override_sets_fields_and_mapping_entries():
    values = {"model_config": {"n_iter": 2, "image_net_params": {"filters": [4]}}}
    assert set_override(values, "data.edge_slices=2") == "edge_slices"
    assert set_override(values, "loop.learning_rate=3e-4") == "learning_rate"
    assert set_override(values, "model.config.n_filters=8") == "model_config"
    assert set_override(values, "model.config.image_net_params.n_convs=1") == "model_config"
    assert set_override(values, "acquisition.accelerations=[4, 8]") == "accelerations"
    assert values == {
        "model_config": {"n_iter": 2, "n_filters": 8, "image_net_params": {"filters": [4], "n_convs": 1}},
        "edge_slices": 2, "learning_rate": 3e-4, "accelerations": [4, 8],
    }  # fmt: skip
    for bad, message in [
        ("edge_slices=2", "expected SECTION.KEY=VALUE"),
        ("dat.edge_slices=2", "unknown section 'dat'"),
        ("data.edge_slices", "expected SECTION.KEY=VALUE"),
        ("loop.epochs.x=2", "loop.epochs is not a mapping"),
        ("loop.epochs=[1", "not valid YAML"),
    ]:
        with pytest.raises(ConfigError, match=message):
            set_override({}, bad)


def test_pipeline_options_reach_the_pipeline():
    cartesian = from_dict({"edge_slices": 2, "grid_shape": [40, 36]}).pipeline(0)
    assert cartesian.edge_slices == 2 and cartesian.grid_shape == (40, 36)
    assert from_dict({"model": "ncpdnet", "edge_slices": 0.25}).pipeline(0).edge_slices == 0.25
    with pytest.raises(ConfigError, match="grid_shape=.*a Cartesian option, but model 'ncpdnet'"):
        from_dict({"model": "ncpdnet", "grid_shape": [32, 32]})
    with pytest.raises(ConfigError, match="edge_slices=2: not an option of the 3D model"):
        from_dict({"model": "ncpdnet-3d", "edge_slices": 2})



@pytest.mark.parametrize("values, message", [
    ({"edge_slices": 0.7}, r"edge_slices=0.7: expected an int >= 0 \(slices\) or a float in \[0, 0.5\)"),
    ({"model": "ncpdnet", "slice_selection": "some"}, r"slice_selection='some': expected one of \('all', 'random'\)"),
    ({"coils": "multicoil", "virtual_coils": 0}, "virtual_coils=0"),
    ({"scale_factor": -1.0}, r"scale_factor=-1.0: expected a finite number > 0"),
])  # fmt: skip
def test_data_values_are_checked_when_the_configuration_is_made_by_the_pipeline(values, message):
    """One validator per value: the pipeline configuration's, run by TrainConfig itself (not first at training time)."""
    with pytest.raises(ConfigError, match=message):
        from_dict(values)

def test_train_reads_a_sectioned_file_and_set(demo_dir, tmp_path, capfd):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {{name: pdnet, config: {{n_iter: 2}}}}\ndata: {{data_dir: {demo_dir}}}\nloop: {{epochs: 3}}\n")
    argv = ["train", "--config", str(config), "--set", "data.edge_slices=1", "--set", "model.config.n_filters=4",
            "--set", "loop.learning_rate=3e-4", "--epochs", "1", "--dry-run"]  # fmt: skip
    status, out, err = run_main(argv, capfd)
    assert status == 0, err
    resolved = json.loads(out)["config"]
    assert resolved["model"] == "pdnet" and resolved["model_config"] == {"n_iter": 2, "n_filters": 4}
    assert resolved["edge_slices"] == 1 and resolved["learning_rate"] == 3e-4 and resolved["epochs"] == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "loop.epochs=2", "--epochs", "3"], "epochs given by --set and by its own option"),
        (["--set", "data.edge_slice=2"], "unknown key data.edge_slice"),
        (["--set", "data.edge_slices=0.7"], "edge_slices=0.7"),
    ],
)
def test_train_bad_set_one_line_status_2(demo_dir, capfd, extra, message):
    status, _, err = run_main(["train", "--data-dir", str(demo_dir), *extra, "--dry-run"], capfd)
    err = [line for line in err if "cuInit" not in line]
    assert status == 2 and len(err) == 1 and message in err[0], err
