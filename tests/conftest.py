"""Shared fixtures: every zoo model at its small (test) size, trained for real and exported once."""

from __future__ import annotations

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


@pytest.fixture(scope="session", autouse=True)
def every_manifest_follows_the_schema(tmp_path_factory):
    """After the session: every manifest.json any test wrote validates against the shipped schema
    (tests that corrupt a manifest on purpose write the copy under another name; a user's own
    file named manifest.json, which edgezoo refuses to replace, is not edgezoo's)."""
    yield
    import json

    import jsonschema

    from edgezoo.manifest import SCHEMA_PATH

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    for path in tmp_path_factory.getbasetemp().rglob("manifest.json"):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = None
        if not (isinstance(data, dict) and "schema_version" in data):
            continue  # not edgezoo's: a test's stand-in for a user's own file of that name
        errors = sorted(validator.iter_errors(data), key=str)
        assert not errors, f"{path}: {errors[0].message}"


@pytest.fixture(scope="session")
def zoo_export(tmp_path_factory):
    """``zoo_export(name)``: that model's small variant, exported with int8 once per session."""
    from edgezoo import zoo
    from edgezoo.pipeline import export

    done = {}

    def get(name: str):
        if name not in done:
            spec = zoo.get(name).small_variant()
            done[name] = (spec, export(spec, int8=True, out=tmp_path_factory.mktemp(name) / "out", calib_samples=64))
        return done[name]

    return get


@pytest.fixture
def cli_process(tmp_path):
    """Runs the installed `edgezoo` console script in its own process, from a folder outside the
    source tree: for what needs a real process (the entry point itself, signals, two at once)."""
    exe = Path(sys.executable).parent / "edgezoo"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *map(str, args)], cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ})

    return run


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``edgezoo.cli.main`` in this process, from a folder outside the source tree, its output
    captured as a finished process's would be (exit code, stdout, stderr): the same code as the
    console script without a new interpreter importing torch and the converters each time.
    Anything but edgezoo's own one-line errors propagates, as a traceback would."""
    import contextlib
    import io

    from edgezoo import cli as edgezoo_cli

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.chdir(tmp_path)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = edgezoo_cli.main([str(a) for a in args])
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
        return subprocess.CompletedProcess(["edgezoo", *map(str, args)], code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def user_models(tmp_path) -> Path:
    """A copy of tests/fixtures/user_models.py, as a user's own file."""
    path = tmp_path / "user_models.py"
    path.write_text((FIXTURES / "user_models.py").read_text())
    return path
