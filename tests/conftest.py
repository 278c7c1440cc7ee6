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


def _narrow(names, cores: int) -> list[str]:
    """The zoo models among ``names`` whose small variants train on fewer threads than ``cores``."""
    from edgezoo import zoo

    return [n for n in names if n in zoo.names() and (zoo.get(n).small_variant().recipe.threads or cores) < cores]


def _training_seconds() -> dict[str, float]:
    """Each model's small-variant training time as benchmarks/seeds.py measured it (median over the
    stored runs): scheduling only, so a missing or unreadable file orders nothing."""
    import json
    import statistics

    try:
        runs = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "seeds.json").read_text())
        by_model: dict[str, list[float]] = {}
        for run in runs:
            by_model.setdefault(run["model"], []).append(float(run["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: statistics.median(seconds) for name, seconds in by_model.items()}


def pytest_collection_modifyitems(session, config, items):
    """Within each parametrized test over zoo models, the models trained in the background workers
    come after the others, shortest training first (about the order the workers finish them, the
    longest first): the workers train while the tests handle the models trained in the foreground.
    Only positions held by such a test's cases change; every test still runs."""
    cores = len(os.sched_getaffinity(0))
    names = [item.callspec.params.get("name") for item in items if hasattr(item, "callspec")]
    narrow = set(_narrow(dict.fromkeys(n for n in names if isinstance(n, str)), cores))
    if not narrow:
        return
    seconds = _training_seconds()

    def model(item) -> str | None:
        name = item.callspec.params.get("name") if hasattr(item, "callspec") else None
        return name if isinstance(name, str) else None

    groups: dict = {}
    for index, item in enumerate(items):
        if model(item) is not None:
            groups.setdefault((item.path, item.originalname), []).append(index)
    for indices in groups.values():
        group = sorted((items[i] for i in indices), key=lambda item: (model(item) in narrow, seconds.get(model(item), 0.0) if model(item) in narrow else 0.0))
        for i, item in zip(indices, group):
            items[i] = item


@pytest.fixture(scope="session", autouse=True)
def narrow_recipes_train_alongside(edgezoo_home, request, tmp_path_factory):
    """The small variants whose recipes train on fewer threads than this machine has cores (the
    one-thread recipes: the DQN's, and the small convolutional nets', which train about as fast on
    one thread as on two) train in background processes from the session's start, one per core,
    each taking the next unclaimed model in the order the tests first name them
    (tests/background_training.py). The first tests convert and check files, about one core's
    work, and the matrix's exports too: the workers fill the other core, and both while a test
    waits for a checkpoint. A test that needs one sooner waits on edgezoo.train's lock and loads
    it; one no worker has reached yet, it trains itself; a worker that fails leaves no checkpoint.
    At the lowest priority (nice 19): at equal priority a one-thread training beside the tests'
    two-thread torch work stalled it (measured on 2 cores: the small GPT's training took 131 s
    beside it against 35 s alone; 39 s beside it at nice 19)."""
    cores = len(os.sched_getaffinity(0))
    named = dict.fromkeys(item.callspec.params["name"] for item in request.session.items
                          if hasattr(item, "callspec") and isinstance(item.callspec.params.get("name"), str))
    # Longest first: the one that would finish last starts first (the DQN's 3-6 minutes).
    seconds = _training_seconds()
    narrow = sorted(_narrow(named, cores), key=lambda n: -seconds.get(n, 0.0))
    if not narrow:
        yield []
        return
    folder = tmp_path_factory.mktemp("background-training")
    (folder / "claims").mkdir()
    script = Path(__file__).parent / "background_training.py"
    processes, logs = [], []
    for worker in range(min(cores, len(narrow))):
        logs.append(folder / f"worker-{worker}.txt")
        with open(logs[-1], "w") as out:
            # Isolated (-I) and from outside the source tree: its edgezoo/ folder is not the installed package.
            processes.append(subprocess.Popen([sys.executable, "-I", str(script), str(folder / "claims"), *narrow], cwd=folder,
                                              stdout=out, stderr=subprocess.STDOUT, env={**os.environ}))
    yield narrow
    for process in processes:
        if process.poll() is None:  # a session that never reached those models
            process.kill()
    # Loud, not a silent fallback: a background run that broke would leave the tests to train in
    # the foreground, and the suite slower for no visible reason.
    for process, log in zip(processes, logs):
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
