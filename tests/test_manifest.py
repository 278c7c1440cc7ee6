"""The manifest is a typed, versioned schema: a JSON Schema made from the types ships in the
package, every manifest the suite writes follows it (checked in conftest), and a manifest of
another version or shape is refused in one line."""

from __future__ import annotations

import json

import jsonschema
import pytest

from edgezoo.errors import BadInput
from edgezoo.manifest import SCHEMA_PATH, SCHEMA_VERSION, Manifest, json_schema, read_manifest, render_schema


def test_the_shipped_schema_is_the_one_the_types_make():
    assert SCHEMA_PATH.read_text() == render_schema(), "regenerate: python -c 'from edgezoo.manifest import *; SCHEMA_PATH.write_text(render_schema())'"
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_the_schema_ships_in_the_installed_package():
    from importlib import resources

    assert json.loads(resources.files("edgezoo").joinpath("manifest.schema.json").read_text())["$id"] == f"edgezoo-manifest-{SCHEMA_VERSION}"


@pytest.fixture
def written(user_models, tmp_path):
    from edgezoo.pipeline import export

    result = export(f"{user_models}:TinyNet", input_shape="1,3,16,16", formats="onnx", out=tmp_path / "out")
    return result.manifest_path


def test_a_written_manifest_reads_back_as_the_same_types(written):
    manifest = read_manifest(written)
    assert isinstance(manifest, Manifest) and manifest.schema_version == SCHEMA_VERSION
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert manifest.artifact("onnx", "fp32").ok and manifest.inputs[0].shape == [1, 3, 16, 16]


@pytest.mark.parametrize("change,needle", [
    (lambda m: m.update(schema_version=0), "has schema version 0; this edgezoo reads version 1"),
    (lambda m: m.pop("schema_version"), "has no schema version"),
    (lambda m: m.update(threads="two"), "expected an integer"),
    (lambda m: m["artifacts"][0].update(bytes=None, colour="red"), "unknown fields ['colour']"),
    (lambda m: m.pop("reference"), "lacks ['reference']"),
])
def test_another_version_or_shape_is_refused_in_one_line(written, change, needle):
    data = json.loads(written.read_text())
    change(data)
    broken = written.with_name("broken.json")
    broken.write_text(json.dumps(data))
    with pytest.raises(BadInput) as refused:
        read_manifest(broken)
    assert needle in str(refused.value) and "\n" not in str(refused.value)
    assert str(broken) in str(refused.value)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "{" * 100_000])
def test_what_is_not_a_manifest_is_refused_in_one_line(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(BadInput) as refused:
        read_manifest(path)
    assert "\n" not in str(refused.value) and "broken.json" in str(refused.value)
