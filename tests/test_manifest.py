import json
from pathlib import Path

import jsonschema

import fastmri_recon

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(fastmri_recon.__file__).parent / "weights_manifest.schema.json").read_text())


def test_schema_is_valid_and_manifest_follows_it():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(json.loads((ROOT / "weights_manifest.json").read_text()), SCHEMA)


def test_schema_rejects_an_incomplete_entry():
    manifest = {"manifest_version": 1, "models": [{"name": "unet-demo"}]}
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(manifest))
    assert any("architecture" in error.message for error in errors)
