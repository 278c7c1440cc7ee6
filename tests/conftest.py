"""Shared fixtures: a small MobileNetV2 (width 0.5, 64x64) trained for real on digits, exported once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def edgezoo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("edgezoo-home")
    os.environ["EDGEZOO_HOME"] = str(home)
    os.environ["EDGEZOO_QUIET"] = "1"
    return home


@pytest.fixture(scope="session")
def small_mobilenet():
    """The flagship's model card at a width and resolution that keep the suite fast; same code path."""
    from edgezoo import registry
    from edgezoo.registry import Stage

    spec = registry.get("mobilenet")
    return dataclasses.replace(
        spec,
        build_kwargs={"num_classes": 10, "width_mult": 0.5},
        recipe=dataclasses.replace(spec.recipe, stages=(Stage(12, 3e-3),)),
    ).with_input_shapes([(1, 3, 64, 64)])


@pytest.fixture(scope="session")
def matrix_export(small_mobilenet, tmp_path_factory):
    from edgezoo.pipeline import export

    return export(small_mobilenet, int8=True, out=tmp_path_factory.mktemp("matrix") / "out", calib_samples=64)


@pytest.fixture
def cli(tmp_path):
    """Runs the installed `edgezoo` console script from a folder outside the source tree."""
    exe = Path(sys.executable).parent / "edgezoo"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *map(str, args)], cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ})

    return run


@pytest.fixture
def user_models(tmp_path) -> Path:
    """A copy of tests/fixtures/user_models.py, as a user's own file."""
    path = tmp_path / "user_models.py"
    path.write_text((FIXTURES / "user_models.py").read_text())
    return path
