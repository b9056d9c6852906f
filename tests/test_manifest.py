import json
from pathlib import Path

import jsonschema
import pytest

import fastmri_recon
from fastmri_recon.data.masks import mask_type_names
from fastmri_recon.data.trajectories import trajectory_kind_names
from fastmri_recon.errors import ConfigError
from fastmri_recon.hub.manifest import manifest_schema, validate_manifest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(fastmri_recon.__file__).parent / "weights_manifest.schema.json").read_text())


def test_schema_is_valid_and_manifest_follows_it():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(json.loads((ROOT / "weights_manifest.json").read_text()), SCHEMA)


def test_schema_rejects_an_incomplete_entry():
    manifest = {"manifest_version": 1, "models": [{"name": "unet-demo"}]}
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(manifest))
    assert any("architecture" in error.message for error in errors)


def sampling_fields(schema):
    entry = schema["$defs"]["entry"]["properties"]
    acquisition = entry["acquisition"]["properties"]
    return acquisition["trajectory"], acquisition["mask_type"], entry["metrics"]["items"]["properties"]["mask_type"]


def test_schema_enums_are_the_registries():
    trajectory, mask_type, metric_mask_type = sampling_fields(manifest_schema())
    assert trajectory["enum"] == ["cartesian", *trajectory_kind_names()]
    assert "stack_of_radial" in trajectory["enum"] and "stack_of_spirals" in trajectory["enum"]
    assert mask_type["enum"] == metric_mask_type["enum"] == list(mask_type_names())
    assert all("enum" not in field for field in sampling_fields(SCHEMA))  # the file lists none: no copy to drift


def test_filled_schema_is_valid_and_manifest_follows_it():
    jsonschema.Draft202012Validator.check_schema(manifest_schema())
    manifest = json.loads((ROOT / "weights_manifest.json").read_text())
    jsonschema.validate(manifest, manifest_schema())
    validate_manifest(manifest)


@pytest.mark.parametrize("field, value", [("trajectory", "stack-of-radial"), ("trajectory", "rosette"), ("mask_type", "randm")])
def test_unregistered_sampling_names_are_refused(field, value):
    manifest = json.loads((ROOT / "weights_manifest.json").read_text())
    manifest["models"][0]["acquisition"][field] = value
    with pytest.raises(ConfigError, match=f"models\\[0\\].acquisition.{field}: '{value}' is not one of"):
        validate_manifest(manifest, "manifest")
