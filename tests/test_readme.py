"""The README's commands and figures come from the code, not from a hand."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_block() -> list[str]:
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [l for l in block.strip().splitlines() if l.strip()]


def test_readme_starts_with_the_two_commands():
    install_and_run, install_and_test = _first_block()
    assert "-c constraints.txt" in install_and_run and install_and_run.endswith("edgezoo export --model mobilenet --int8")
    assert "-c constraints.txt" in install_and_test and "[test]" in install_and_test and "pytest" in install_and_test
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()


def test_constraints_pin_every_dependency_and_what_the_install_brought():
    """Every requirement in pyproject.toml (the test extras too) has one exact pin in constraints.txt,
    and each pinned package this environment holds is at its pinned version: the README's install
    is the tested set (DEVELOPERS.md, "The tested set")."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, version

    canon = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731 (PEP 503)
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned and canon(name) not in pins, f"constraints.txt: {line!r} is not one exact pin"
            pins[canon(name)] = pinned
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    unpinned = [r for r in wanted if canon(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) not in pins]
    assert not unpinned, f"add pins for {unpinned} to constraints.txt"
    moved = {}
    for name, pinned in pins.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            continue
        if have.split("+", 1)[0] != pinned.split("+", 1)[0]:
            moved[name] = (pinned, have)
    assert not moved, f"installed versions differ from constraints.txt (pinned, installed): {moved}"


def test_ci_runs_the_readme_test_command():
    assert "README.md" in (ROOT / ".ci" / "run").read_text()


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block(begin: str, end: str) -> str:
    return (ROOT / "README.md").read_text().split(begin + "\n", 1)[1].split("\n" + end, 1)[0]


def test_benchmark_block_is_generated_from_stored_results():
    bench = _script("spine")
    results = json.loads(bench.RESULTS.read_text())
    assert _block("<!-- spine-benchmark:begin (benchmarks/spine.py writes this) -->", "<!-- spine-benchmark:end -->") == bench.render(results)


def test_zoo_table_is_generated_from_stored_manifests():
    bench = _script("zoo")
    manifests = bench.load()
    assert _block(bench.BEGIN, bench.END) == bench.render(manifests)
    from edgezoo import zoo

    assert {m.model for m in manifests} <= set(zoo.names())  # nothing stale
    rows = [line.split("|")[1].strip() for line in _block(bench.BEGIN, bench.END).splitlines()[2:] if line.startswith("|")]
    assert sorted(rows) == zoo.names()  # every registered model has its row, measured or saying it is not


def test_int8_schemes_block_is_generated_from_stored_results():
    schemes = _script("int8_schemes")
    entries = json.loads(schemes.RESULTS.read_text())
    assert _block(schemes.BEGIN, schemes.END) == schemes.render(entries)
    from edgezoo import zoo

    # every card that picks int8 weights for a runtime shows what both schemes measured on it, and
    # what it picks for each runtime kept the bound there
    assert {e["model"] for e in entries} == {n for n in zoo.names() if schemes.picks_weights(zoo.get(n))}
    for e in entries:
        assert e["card"] == {f: zoo.get(e["model"]).int8_scheme_for(f) for f in e["fp32"]}, e["model"]
    assert schemes.card_choices_keep_their_bound(entries)


def test_training_goal_line_names_every_model_over_the_goal():
    bench = _script("zoo")
    from types import SimpleNamespace

    from edgezoo.manifest import Training

    timed = lambda name, seconds: SimpleNamespace(model=name, training=None if seconds is None else Training(seconds, 2))
    line = bench.training_goal([timed("a", 100.0), timed("b", 200.0), timed("c", 400.0), timed("d", None)])
    assert "missed by b (3.3 min), c (6.7 min)" in line and "not timed" in line and "d" in line.split("not timed")[1]
    assert "met by all 2 timed models (longest: b, 2.8 min)" in bench.training_goal([timed("a", 10.0), timed("b", 170.0)])


def test_what_export_leaves_is_generated_from_the_format_table():
    tables = _script("readme_tables")
    for (begin, end), body in tables.blocks().items():
        assert _block(begin, end) == body


def test_seeds_block_is_generated_from_stored_results():
    seeds = _script("seeds")
    entries = json.loads(seeds.RESULTS.read_text())
    assert _block(seeds.BEGIN, seeds.END) == seeds.render(entries)
    from edgezoo import zoo

    assert {e["model"] for e in entries} <= set(zoo.names())  # nothing stale


def test_isolation_block_is_generated_from_stored_results():
    isolation = _script("isolation")
    stored = json.loads(isolation.RESULTS.read_text()) if isolation.RESULTS.exists() else None
    assert _block(isolation.BEGIN, isolation.END) == isolation.render(stored)


def test_flagship_bench_block_is_generated_from_stored_results():
    flagship = _script("flagship_bench")
    assert _block(flagship.BEGIN, flagship.END) == flagship.render()


def test_arm64_table_is_generated_from_stored_results_and_every_file_agreed():
    arm64 = _script("arm64")
    stored = json.loads(arm64.RESULTS.read_text())
    assert _block(arm64.BEGIN, arm64.END) == arm64.render(stored)
    from edgezoo import zoo

    assert set(stored) == set(zoo.names())
    for name, report in stored.items():
        assert {r["core"] for r in report["rows"]} == {"cortex-a72", "cortex-a76"}, name
        assert all(r["status"] == "ok" for r in report["rows"]), name


def test_estimates_block_is_generated_from_the_profiles():
    estimates = _script("estimates")
    assert _block(estimates.BEGIN, estimates.END) == estimates.render()


def test_compression_block_is_generated_from_stored_results():
    compression = _script("compression")
    assert _block(compression.BEGIN, compression.END) == compression.render(compression.load())


def test_one_script_regenerates_the_whole_benchmark_section():
    import subprocess
    import sys

    section = _script("benchmark_section")
    readme = (ROOT / "README.md").read_text()
    for part in section.PARTS:
        module = _script(part)
        assert module.BEGIN in readme and module.END in readme, part  # each part owns a block of the section
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "benchmark_section.py"), "--only", "spine,nope"], capture_output=True, text=True)
    assert run.returncode == 2 and "nope" in run.stderr


def test_qat_block_is_generated_from_stored_results():
    qat = _script("qat")
    entries = json.loads(qat.RESULTS.read_text())
    assert _block(qat.BEGIN, qat.END) == qat.render(entries)
    for e in entries:  # what the README says QAT keeps, it kept: ONNX Runtime and OpenVINO within the card's bound
        for fmt in ("onnx", "openvino"):
            assert e["runs"]["qat"][fmt]["kept_bound"], (e["model"], fmt)


def test_mcu_block_is_generated_from_stored_results_for_cnn_mlp_and_dqn():
    mcu = _script("mcu")
    entries = json.loads(mcu.RESULTS.read_text())
    assert _block(mcu.BEGIN, mcu.END) == mcu.render(entries)
    made = {e["model"]: e for e in entries if "refused" not in e}
    assert {"cnn", "mlp", "dqn"} <= set(made)
    for e in made.values():  # flash and arena stated, TFLM within a step of LiteRT
        assert e["flash_bytes"] > 0 and e["arena_bytes"] >= e["arena_min_bytes"] > 0 and e["tflm_vs_litert_max_units"] <= 1
