"""Shared fixtures: every zoo model at its small (test) size, trained for real and exported once."""

from __future__ import annotations

import os
import signal
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
def narrow_recipes_train_alongside(edgezoo_home, request, tmp_path_factory):
    """The small variants whose recipes train on fewer threads than this machine has cores (the
    DQN's one) start training in a background process when the session starts, into its checkpoint
    cache, while the first tests run: those convert and check files, about one core's work.
    Measured on 2 cores: the tests before test_matrix took 218 s beside the DQN's training and 245 s
    without it; the DQN was done in 166 s, before the matrix needs it. A test that needs the
    checkpoint sooner waits on edgezoo.train's lock and loads it; a background run that fails
    leaves no checkpoint, and the test trains it itself. Only models a collected test names.
    At the lowest priority (nice 19): it takes a core only when the tests leave one idle. At equal
    priority it stalled the tests' own multi-threaded work: measured on 2 cores, the small GPT's
    training (2 threads) took 131 s beside it against 35 s alone; 39 s beside it at nice 19."""
    from edgezoo import zoo

    cores = len(os.sched_getaffinity(0))
    named = {item.callspec.params.get("name") for item in request.session.items if hasattr(item, "callspec")}
    narrow = [n for n in zoo.names() if n in named and (zoo.get(n).small_variant().recipe.threads or cores) < cores]
    if not narrow:
        yield []
        return
    code = ("import os\nimport sys\nos.nice(19)\nfrom edgezoo import zoo\nfrom edgezoo.train import trained_model\n"
            "for name in sys.argv[1:]:\n    trained_model(zoo.get(name).small_variant())\n")
    log = tmp_path_factory.mktemp("background-training") / "log.txt"
    with open(log, "w") as out:
        # Isolated (-I) and from outside the source tree: its edgezoo/ folder is not the installed package.
        process = subprocess.Popen([sys.executable, "-I", "-c", code, *narrow], cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ})
    yield narrow
    if process.poll() is None:  # a session that never reached those models
        process.kill()
    # Loud, not a silent fallback: a background run that broke would leave the tests to train in
    # the foreground, and the suite slower for no visible reason.
    assert process.wait() in (0, -signal.SIGKILL), f"background training of {narrow} failed: {log.read_text()[-2000:]}"


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
