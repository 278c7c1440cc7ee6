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


def _model(item) -> str | None:
    """The zoo model a parametrized test case names (its ``name`` parameter), if any."""
    name = item.callspec.params.get("name") if hasattr(item, "callspec") else None
    return name if isinstance(name, str) else None


def _waits_for(item) -> list[str]:
    """The zoo models a test trains or waits for: its ``name`` parameter and its @pytest.mark.trains."""
    marker = item.get_closest_marker("trains")
    return [n for n in [_model(item), *(marker.args if marker else ())] if n is not None]


def _background_models(items) -> list[str]:
    """The zoo models the collected tests name whose small variants train on fewer threads than
    this machine has cores: the background worker's. First the one that the most tests outside the
    matrix wait for (they run just before the matrix, once the worker has it: the DQN's ten), then
    longest training first."""
    from collections import Counter

    from edgezoo import zoo

    cores = len(os.sched_getaffinity(0))
    seconds = _training_seconds()
    named = dict.fromkeys(name for name in map(_model, items) if name in zoo.names())
    narrow = sorted((n for n in named if (zoo.get(n).small_variant().recipe.threads or cores) < cores), key=lambda n: -seconds.get(n, 0.0))
    outside = Counter(n for item in items if item.path.name != "test_matrix.py" for n in set(_waits_for(item)) if n in narrow)
    if outside:
        first = max(narrow, key=lambda n: (outside[n], seconds.get(n, 0.0)))
        narrow.remove(first)
        narrow.insert(0, first)
    return narrow


def _training_seconds() -> dict[str, float]:
    """Each model's small-variant training time as benchmarks/seeds.py measured it: the median over
    the stored runs of the seed and thread count the suite trains (a DQN seed's steps vary 3.5-fold
    between seeds), else of its thread count, else of all. Scheduling only, so a missing or
    unreadable file orders nothing."""
    import json
    import statistics

    from edgezoo import zoo

    try:
        runs = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "seeds.json").read_text())
        by_model: dict[str, dict[int, list[float]]] = {}
        for run in runs:
            if run["model"] in zoo.names():
                recipe = zoo.get(run["model"]).small_variant().recipe
                same_threads = run.get("threads") == recipe.threads
                closeness = 2 if same_threads and run.get("seed") == recipe.seed else 1 if same_threads else 0
                by_model.setdefault(run["model"], {}).setdefault(closeness, []).append(float(run["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: statistics.median(kinds[max(kinds)]) for name, kinds in by_model.items()}


def pytest_configure(config):
    config.addinivalue_line("markers", "trains(*models): the zoo models whose small variants this test trains or waits for")


def pytest_collection_modifyitems(session, config, items):
    """Every test that needs a model the background worker trains (its ``name`` parameter, or the
    models its @pytest.mark.trains names) runs after all the others: until then the worker has the
    idle core to itself, and what it has trained by then the tests find cached instead of training
    it themselves or waiting on its lock. Of those, the ones that need only the worker's first
    model (the DQN, its longest) come first: it is ready by then (measured on a 2-core AVX2 AMD
    EPYC: the DQN at 8 minutes, the other tests done at 10), and while they run the worker goes
    on training for the matrix; at the end, with nothing left to train, they had left the
    worker's core idle for two minutes. Then the matrix, then the rest. Within each parametrized
    test the models go shortest training first (the worker takes them longest first, so the two
    meet in the middle), and the other tests follow in the worker's order.
    Only the order changes; every test still runs."""
    background = _background_models(items)
    rank = {name: i for i, name in enumerate(reversed(background))}
    if not rank:
        return

    def waits_for(item) -> list[str]:
        return [n for n in _waits_for(item) if n in rank]

    late = [item for item in items if waits_for(item)]
    if late:
        chosen = set(map(id, late))
        matrix = [item for item in late if item.path.name == "test_matrix.py"]
        others = sorted((item for item in late if item.path.name != "test_matrix.py"), key=lambda item: -min(rank[n] for n in waits_for(item)))
        ready_first = [item for item in others if set(waits_for(item)) == {background[0]}]
        rest = [item for item in others if set(waits_for(item)) != {background[0]}]
        items[:] = [item for item in items if id(item) not in chosen] + ready_first + matrix + rest
    groups: dict = {}
    for index, item in enumerate(items):
        if _model(item) is not None:
            groups.setdefault((item.path, item.originalname), []).append(index)
    for indices in groups.values():
        group = sorted((items[i] for i in indices), key=lambda item: (_model(item) in rank, rank.get(_model(item), 0)))
        for i, item in zip(indices, group):
            items[i] = item


@pytest.fixture(scope="session", autouse=True)
def narrow_recipes_train_alongside(edgezoo_home, request, tmp_path_factory):
    """The small variants whose recipes train on fewer threads than this machine has cores (the
    one-thread recipes: the DQN's, and the small convolutional nets', GAN's, diffusion model's and
    LSTM's, which train about as fast on one thread as on two) train in a background worker from
    the session's start (tests/background_training.py), longest first. The tests before the matrix
    convert and check files, about one core's work: the worker has the other. The matrix takes the
    same models shortest first (pytest_collection_modifyitems), so the tests train the short ones
    themselves while the worker, coming from the other end, trains the long ones; neither trains
    what the other is training. One worker, not one per core: two shared the tests' idle core, and
    the DQN, the longest, took 15 minutes in one of them; 11.5 alone in the worker (measured on a
    2-core AMD EPYC, where its seed needs 115,000 steps).
    At the lowest priority (nice 19): at equal priority a one-thread training beside the tests'
    two-thread torch work stalled it (measured on 2 cores: the small GPT's training took 131 s
    beside it against 35 s alone; 39 s beside it at nice 19)."""
    narrow = _background_models(request.session.items)
    if not narrow:
        yield []
        return
    log = tmp_path_factory.mktemp("background-training") / "log.txt"
    script = Path(__file__).parent / "background_training.py"
    with open(log, "w") as out:
        # Isolated (-I) and from outside the source tree: its edgezoo/ folder is not the installed package.
        process = subprocess.Popen([sys.executable, "-I", str(script), *narrow], cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
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
