"""A format is one entry in one table: a Format defined here, in the test, flows through export,
the manifest, the terminal table and `--formats` with no other change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgezoo.manifest import read_manifest


@pytest.fixture
def renamed_onnx(monkeypatch):
    from edgezoo import export as export_package

    onnx = export_package.FORMATS["onnx"]
    fmt = dataclasses.replace(onnx, name="onnx_copy", label="ONNX copy (test)", stem_tag="_copy",
                              fp32_converter="copy-exporter", int8_converter="copy-quantizer")
    monkeypatch.setitem(export_package.FORMATS, fmt.name, fmt)
    return fmt


def test_a_new_format_flows_through_export_manifest_table_and_cli(renamed_onnx, user_models, tmp_path, capsys):
    from edgezoo import cli
    from edgezoo.fileio import sha256_file

    out = tmp_path / "out"
    code = cli.main(["export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--formats", "onnx_copy", "--out", str(out)])
    assert code == 0
    manifest = read_manifest(out / "manifest.json")
    rows = manifest.artifacts
    assert [(r.format, r.precision, r.status) for r in rows] == [("onnx_copy", "fp32", "ok"), ("onnx_copy", "int8", "ok")]
    assert [r.path for r in rows] == ["tinynet_copy.onnx", "tinynet_copy_int8.onnx"]
    for row in rows:
        assert row.sha256 == sha256_file(out / row.path)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tinynet_copy.onnx", "tinynet_copy_int8.onnx"]
    assert "onnx_copy" in capsys.readouterr().out  # the terminal table


def test_a_new_formats_converter_is_named_when_it_fails(renamed_onnx, user_models, tmp_path, monkeypatch, capsys):
    from edgezoo import cli
    from edgezoo import export as export_package

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fixtures"))  # the child finds the converter by name
    from crashing_runtimes import raising_converter

    monkeypatch.setitem(export_package.FORMATS, "onnx_copy", dataclasses.replace(renamed_onnx, export_fp32=raising_converter))
    out = tmp_path / "out"
    code = cli.main(["export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--formats", "onnx_copy,onnx", "--out", str(out)])
    assert code == 1
    rows = {r.format: r for r in read_manifest(out / "manifest.json").artifacts}
    assert rows["onnx_copy"].error == "copy-exporter failed: RuntimeError: no such op"
    assert rows["onnx"].status == "ok"


def test_unknown_format_lists_the_table(renamed_onnx):
    from edgezoo.errors import BadInput
    from edgezoo.pipeline import parse_formats

    with pytest.raises(BadInput, match="choose from onnx,tflite,openvino,onnx_copy"):
        parse_formats("onnx_cop,nope")


def test_a_formats_functions_must_be_importable_by_name(renamed_onnx):
    def local(ctx, path):
        return None

    with pytest.raises(TypeError, match="must be defined at a module's top level"):
        dataclasses.replace(renamed_onnx, export_fp32=local)
