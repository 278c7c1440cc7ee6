"""A runtime that crashes in native code fails its row; it does not take the export down."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from edgezoo.devices.isolated import ArtifactCrashed, probe

from edgezoo.manifest import read_manifest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def crashing(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", str(FIXTURES))  # the probe's child imports the runner by name
    sys.modules.pop("crashing_runtimes", None)
    import crashing_runtimes

    return crashing_runtimes


def test_probe_turns_a_native_abort_into_an_error_naming_the_signal(crashing, tmp_path):
    with pytest.raises(ArtifactCrashed, match=r"fake-rt crashed \(SIGABRT\) loading and running the artifact"):
        probe(crashing.aborting_runner, "fake-rt", tmp_path / "m.bin", 1, [np.zeros(3, np.float32)])


def test_probe_kills_a_runtime_that_hangs(crashing, tmp_path):
    with pytest.raises(ArtifactCrashed, match=r"fake-rt did not finish .* in 3 s"):
        probe(crashing.hanging_runner, "fake-rt", tmp_path / "m.bin", 1, [np.zeros(3, np.float32)], timeout=3)


def test_probe_passes_on_a_python_error_with_its_last_line(crashing, tmp_path):
    with pytest.raises(RuntimeError, match=r"fake-rt failed loading and running the artifact: ValueError: cannot read m.bin"):
        probe(crashing.raising_runner, "fake-rt", tmp_path / "m.bin", 1, [np.zeros(3, np.float32)])


def test_litert_abort_fails_one_row_and_the_other_formats_land(tmp_path):
    """Measured: LiteRT 2.3 aborts (SIGABRT) loading ai-edge-quantizer's full-integer int8 of the
    GPT. In-process that killed edgezoo with no manifest. If this starts passing, LiteRT fixed it:
    find another file it aborts on, or keep only the probe tests above."""
    from edgezoo import zoo
    from edgezoo.pipeline import export

    spec = dataclasses.replace(zoo.get("gpt").small_variant(), int8_scheme="static")
    result = export(spec, int8=True, formats="tflite,openvino", out=tmp_path / "out", calib_samples=16)
    rows = {(a.format, a.precision): a for a in read_manifest(tmp_path / "out" / "manifest.json").artifacts}
    crashed = rows["tflite", "int8"]
    assert crashed["status"] == "failed" and "crashed (SIGABRT)" in crashed["error"] and crashed["path"] is None
    assert not (tmp_path / "out" / "gpt_int8.tflite").exists()
    assert rows["tflite", "fp32"].status == "ok" and rows["openvino", "fp32"].status == "ok"
    assert (tmp_path / "out" / "gpt_openvino.xml").exists() and not result.ok
