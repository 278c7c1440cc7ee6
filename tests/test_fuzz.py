"""A short coverage-guided fuzzing run of every loader of untrusted files (tests/fuzzing.py; the
script runs as long as asked): only values or one-line refusals, no payload executed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("fuzzing.py")
TARGETS = ["weights_pt", "weights_safetensors", "calib_npy", "calib_folder", "manifest"]  # tests/fuzzing.py TARGETS


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_smoke(target, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), target, "--runs", "3000", "--work", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3000 runs" in result.stderr
    assert (tmp_path / "corpus").is_dir() and not (tmp_path / "payload-ran").exists()  # its files stay in --work
