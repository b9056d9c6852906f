"""A small JSON Schema checker for the weights manifest, reading the package's schema file.

``jsonschema`` is only a test dependency: the package validates manifests with this checker, which
interprets the subset of JSON Schema (draft 2020-12) that ``weights_manifest.schema.json`` uses, so
the schema file stays the single source of truth, except for the sampling enums, which
`hub.manifest.manifest_schema` fills from the mask and trajectory registries. A keyword outside `SUPPORTED_KEYWORDS` raises
``ValueError`` rather than being ignored; the tests check that ``jsonschema`` and this checker agree.
"""

import json
import numbers
import re
from importlib import resources

SCHEMA_FILE = "weights_manifest.schema.json"

ANNOTATIONS = {"$schema", "$defs", "title", "description", "default"}
SUPPORTED_KEYWORDS = ANNOTATIONS | {
    "$ref", "type", "required", "properties", "additionalProperties", "enum", "const", "pattern",
    "minimum", "exclusiveMinimum", "minItems", "items",
}  # fmt: skip


def load_schema():
    """The manifest's JSON Schema (``fastmri_recon/weights_manifest.schema.json``) as a dict."""
    return json.loads(resources.files("fastmri_recon").joinpath(SCHEMA_FILE).read_text())


def _is_type(value, kind):
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return kind == "number" or float(value).is_integer()


def _resolve(root, reference):
    if not reference.startswith("#/"):
        raise ValueError(f"unsupported $ref {reference!r}: only local references '#/...'")
    node = root
    for part in reference[2:].split("/"):
        node = node[part]
    return node


def _location(path):
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "(top level)"


def check(instance, schema, root=None, path=()):
    """Validate ``instance`` against ``schema``.

    Args:
        instance: a JSON value (dicts, lists, str, numbers, bool, None).
        schema: a schema (or sub-schema) written with `SUPPORTED_KEYWORDS`.
        root: the document ``$ref`` resolves in (default: ``schema``).
        path: location of ``instance`` in the document, for the messages.

    Returns:
        list of str: one message per violation, ``"location: what is wrong"``; empty when valid.

    Raises:
        ValueError: if the schema uses a keyword this checker does not implement.
    """
    root = schema if root is None else root
    unknown = set(schema) - SUPPORTED_KEYWORDS
    if unknown:
        raise ValueError(f"schema keyword(s) not supported by the manifest checker: {', '.join(sorted(unknown))}")
    if "$ref" in schema:
        return check(instance, _resolve(root, schema["$ref"]), root, path)
    where = _location(path)
    if "type" in schema and not _is_type(instance, schema["type"]):
        return [f"{where}: expected {schema['type']}, got {type(instance).__name__} {instance!r:.60}"]
    errors = []
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{where}: expected {schema['const']!r}, got {instance!r:.60}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r:.60} is not one of {schema['enum']}")
    if isinstance(instance, str) and "pattern" in schema and not re.search(schema["pattern"], instance):
        errors.append(f"{where}: {instance!r:.60} does not match {schema['pattern']}")
    if _is_type(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{where}: {instance} is less than {schema['minimum']}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: {instance} is not greater than {schema['exclusiveMinimum']}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{where}: expected at least {schema['minItems']} item(s)")
        if "items" in schema:
            for index, item in enumerate(instance):
                errors += check(item, schema["items"], root, (*path, index))
    if isinstance(instance, dict):
        errors += _check_object(instance, schema, root, path)
    return errors


def _check_object(instance, schema, root, path):
    errors = [f"{_location(path)}: missing required field '{key}'" for key in schema.get("required", []) if key not in instance]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if key in properties:
            errors += check(value, properties[key], root, (*path, key))
        elif extra is False:
            errors.append(f"{_location(path)}: unknown field '{key}' (known: {', '.join(properties)})")
        elif isinstance(extra, dict):
            errors += check(value, extra, root, (*path, key))
    return errors


def schema_keywords(schema):
    """Every keyword used anywhere in ``schema`` (property names excluded), for the tests."""
    found = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= schema_keywords(sub)
            elif key in ("items", "additionalProperties"):
                found |= schema_keywords(value)
    return found
