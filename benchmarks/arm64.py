"""The README's ARM64 table: every zoo model's .onnx and .tflite files, fp32 and int8, run by the
aarch64 builds of onnxruntime and ai-edge-litert under QEMU as Cortex-A72 and Cortex-A76
(`edgezoo verify`), against this host's outputs.

    .venv/bin/python benchmarks/arm64.py                       # every model; merge into results, write README
    .venv/bin/python benchmarks/arm64.py --models mlp,gcn      # a subset
    .venv/bin/python benchmarks/arm64.py --render              # only re-render the README block

The flagship is verified as `edgezoo export --model mobilenet --int8` leaves it (224x224); the other
models at their small (test-suite) size, which share every layer type with the full size and train
in seconds (emulation checks the runtimes' arithmetic, which the weights' values do not change).
Results: results/arm64.json (each model's verify.json, merged).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "arm64.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- arm64-table:begin (benchmarks/arm64.py writes this) -->", "<!-- arm64-table:end -->"


def verify_model(name: str, work: Path) -> dict:
    from edgezoo import zoo
    from edgezoo.pipeline import export
    from edgezoo.verify import verify

    card = zoo.get(name)
    spec = card if name == "mobilenet" else card.small_variant()
    out = work / name
    export(spec, int8=True, out=out)
    report = verify([out])
    return json.loads(report.to_json()) | {"size": "full" if spec is card else "small"}


def render(stored: dict) -> str:
    from edgezoo import zoo
    from edgezoo.bench_results import RUNTIME_LABELS

    lines = ["| model | file | runtime | Cortex-A72 | Cortex-A76 |", "|---|---|---|---|---|"]
    facts = set()
    for name in zoo.names():
        report = stored.get(name)
        if report is None:
            lines.append(f"| {name} | not verified yet: run `benchmarks/arm64.py --models {name}` | | | |")
            continue
        facts.add((report["emulator"], json.dumps(report["guest_versions"], sort_keys=True), report["host"]["cpu"]))
        by_file: dict = {}
        for r in report["rows"]:
            by_file.setdefault((r["label"], r["runtime"]), {})[r["core"]] = r
        for (label, runtime), cores in by_file.items():
            cells = [_cell(cores.get(c)) for c in ("cortex-a72", "cortex-a76")]
            size = "" if report["size"] == "full" else " (small)"
            lines.append(f"| {name}{size} | {label} | {RUNTIME_LABELS.get(runtime, runtime)} | {cells[0]} | {cells[1]} |")
    said = "; ".join(f"{emu}, guest {', '.join(f'{k} {v}' for k, v in json.loads(v).items())}, against {cpu}" for emu, v, cpu in sorted(facts))
    return "\n".join(lines) + f"\n\nCells: the largest difference from this host's outputs over 3 seeded input sets, relative to the largest " \
                              f"output (float outputs; bound 1e-4) or in quantization steps (quantized outputs; bound 1). Measured with {said}."


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["status"] != "ok":
        return f"**{r['status']}**: {r['error']}"
    if r["max_units"] is not None and r["max_rel_diff"] is None:
        return f"ok, {r['max_units']:.3g} steps"
    if r["max_units"] is None:
        return f"ok, {r['max_rel_diff']:.1e} rel"
    return f"ok, {r['max_rel_diff']:.1e} rel, {r['max_units']:.3g} steps"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated subset (default: every registered model)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    if not args.render:
        from edgezoo import zoo

        with tempfile.TemporaryDirectory(prefix="edgezoo-arm64-") as tmp:
            for name in args.models.split(",") if args.models else zoo.names():
                stored[name] = verify_model(name, Path(tmp))
                failed += [f"{name} {r['label']} {r['core']}" for r in stored[name]["rows"] if r["status"] != "ok"]
                RESULTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
                print(name, "ok" if not failed else failed, flush=True)
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    table = render(stored)
    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, table))
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
