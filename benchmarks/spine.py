"""Benchmark for the flagship command, written into the README (never typed by hand).

    .venv/bin/python benchmarks/spine.py            # measure, write results/spine.json, update README
    .venv/bin/python benchmarks/spine.py --render   # only re-render the README from results/spine.json

Measures, in one run on this host: the wall time of `edgezoo export --model mobilenet --int8` with
the checkpoint cached (goal: <= 90 s), and each int8 artifact's latency over its fp32 twin at
224x224, 2 threads (goal: <= 0.6x in ONNX Runtime and LiteRT). fp32 and int8 are timed in
alternating rounds so that a noisy neighbour hits both alike. Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "spine.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- spine-benchmark:begin (benchmarks/spine.py writes this) -->", "<!-- spine-benchmark:end -->"
GOALS = {"export_s": 90.0, "int8_over_fp32": {"onnx": 0.6, "tflite": 0.6}}


def measure(threads: int, rounds: int, runs: int) -> dict:
    from edgezoo import zoo
    from edgezoo.devices.runners import measure_latency
    from edgezoo.export import FORMATS
    from edgezoo.manifest import read_manifest
    from edgezoo.hostinfo import host as _host
    from edgezoo.pipeline import _versions
    from edgezoo.train import trained_model

    trained_model(zoo.get("mobilenet"))  # training is not part of the timed command
    exe = Path(sys.executable).parent / "edgezoo"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), "export", "--model", "mobilenet", "--int8", "--threads", str(threads), "--out", str(out)],
                              capture_output=True, text=True, cwd=tmp)
        export_s = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"export failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        manifest = read_manifest(out / "manifest.json")
        sample = [np.random.default_rng(0).random(manifest.inputs[0].shape, dtype="float32")]
        latency = {}
        for fmt in FORMATS.values():
            runners = {p: fmt.runner(out / manifest.artifact(fmt.name, p).path, threads) for p in ("fp32", "int8")}
            samples = {p: [] for p in runners}
            for _ in range(rounds):
                for p, r in runners.items():
                    samples[p].append(measure_latency(r, sample, warmup=5, runs=runs)["latency_ms"])
            latency[fmt.name] = {p: statistics.median(v) for p, v in samples.items()}
            latency[fmt.name]["ratio"] = latency[fmt.name]["int8"] / latency[fmt.name]["fp32"]
            latency[fmt.name]["precision_ran"] = {p: manifest.artifact(fmt.name, p).precision_ran for p in runners}
    return {
        "command": "edgezoo export --model mobilenet --int8",
        "export_s": export_s,
        "threads": threads,
        "input_shape": manifest.inputs[0].shape,
        "reference": {"metric_name": manifest.reference.metric_name, "metric": manifest.reference.metric, "latency_ms": manifest.reference.latency_ms},
        "artifacts": [{k: getattr(a, k) for k in ("format", "precision", "bytes", "metric", "metric_delta", "agreement", "status")} for a in manifest.artifacts],
        "latency_ms": latency,
        "goals": GOALS,
        "host": dataclasses.asdict(_host()),
        "versions": _versions(list(FORMATS.values())),
        "measured": time.strftime("%Y-%m-%d"),
    }


def verdicts(results: dict) -> dict[str, bool]:
    v = {"export_s": results["export_s"] <= GOALS["export_s"]}
    for fmt, bound in GOALS["int8_over_fp32"].items():
        v[f"{fmt} int8/fp32"] = results["latency_ms"][fmt]["ratio"] <= bound
    return v


def render(results: dict) -> str:
    from edgezoo.report import human_bytes

    labels = {"onnx": "ONNX Runtime", "tflite": "LiteRT (XNNPACK)", "openvino": "OpenVINO (CPU)"}
    size = {(a["format"], a["precision"]): a for a in results["artifacts"]}
    lines = [
        f"Measured {results['measured']} on {results['host']['cpu']} ({results['host']['cpu_count']} cores), "
        f"{results['threads']} threads, input {'x'.join(map(str, results['input_shape']))}; "
        f"torch eager fp32: {results['reference']['latency_ms']:.1f} ms, test accuracy {results['reference']['metric']:.4f}.",
        "",
        f"`{results['command']}` with the checkpoint cached: **{results['export_s']:.0f} s** (goal <= {GOALS['export_s']:.0f} s).",
        "",
        "| runtime | fp32 ms | int8 ms | int8 / fp32 | goal | fp32 size | int8 size | int8 accuracy change |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fmt, lat in results["latency_ms"].items():
        goal = GOALS["int8_over_fp32"].get(fmt)
        ran = lat["precision_ran"]["fp32"]
        delta = size[(fmt, "int8")]["metric_delta"]
        lines.append(
            f"| {labels.get(fmt, fmt)}{' (fp32 ran as ' + ran + ')' if ran not in ('fp32',) else ''} | {lat['fp32']:.2f} | {lat['int8']:.2f} | "
            f"{lat['ratio']:.2f}x | {'<= %.1fx' % goal if goal else '-'} | {human_bytes(size[(fmt, 'fp32')]['bytes'])} | "
            f"{human_bytes(size[(fmt, 'int8')]['bytes'])} | {delta * 100:+.2f} pt |"
        )
    return "\n".join(lines)


def update_readme(results: dict) -> None:
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, render(results)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true", help="re-render the README from the stored results only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    if args.render:
        results = json.loads(RESULTS.read_text())
    else:
        results = measure(args.threads, args.rounds, args.runs)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    update_readme(results)
    print(render(results))
    missed = [k for k, ok in verdicts(results).items() if not ok]
    if missed:
        print(f"goals missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
