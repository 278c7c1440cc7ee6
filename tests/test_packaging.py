"""One installed package: export/, quantize/, devices/ live under edgezoo, never at the top level."""

import importlib.util



def test_subpackages_install_under_edgezoo():
    import edgezoo.devices
    import edgezoo.export
    import edgezoo.quantize

    for module in (edgezoo.export, edgezoo.quantize, edgezoo.devices):
        assert module.__name__.startswith("edgezoo.")


def test_no_top_level_export_or_quantize_modules():
    for name in ("export", "quantize", "devices"):
        assert importlib.util.find_spec(name) is None, name


def test_format_table_is_the_only_list():
    from edgezoo.cli import build_parser
    from edgezoo.export import FORMATS

    assert list(FORMATS) == ["onnx", "tflite", "openvino"]
    help_text = build_parser()._subparsers._group_actions[0].choices["export"].format_help()
    assert "onnx,tflite,openvino" in help_text


def test_list_shows_the_flagship(cli_process):
    result = cli_process("list")  # the installed console script itself
    assert result.returncode == 0, result.stderr
    assert "mobilenet" in result.stdout and "1x3x224x224" in result.stdout and "300 M" in result.stdout  # MobileNetV2 at 224: 300 M MACs, as published


def test_openvino_and_nncf_send_no_telemetry():
    import os
    import subprocess
    import sys

    code = (
        "import edgezoo.pipeline\n"
        "import openvino.tools.ovc.convert_impl as c, nncf.telemetry.wrapper as w\n"
        "print(c.tm.__name__, isinstance(w.telemetry, w.NNCFTelemetryStub))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}  # CI alone opts out
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["openvino.tools.ovc.telemetry_stub", "True"]


def test_edgezoo_export_stays_callable_after_the_subpackage_is_imported(user_models, tmp_path):
    """`edgezoo.export(...)` is the documented Python entry point, and `edgezoo.export` is also the
    exporters' package: importing the package (as the first call does) once replaced the function
    with a module, so the second call raised "'module' object is not callable"."""
    import subprocess
    import sys

    code = (
        "import edgezoo, sys\n"
        f"args = dict(input_shape='1,3,16,16', formats='onnx')\n"
        f"first = edgezoo.export({str(user_models) + ':TinyNet'!r}, out={str(tmp_path / 'a')!r}, **args)\n"
        "from edgezoo.export import FORMATS\n"
        f"second = edgezoo.export({str(user_models) + ':TinyNet'!r}, out={str(tmp_path / 'b')!r}, **args)\n"
        "print(first.ok, second.ok, list(edgezoo.export.FORMATS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "True True ['onnx', 'tflite', 'openvino']"
