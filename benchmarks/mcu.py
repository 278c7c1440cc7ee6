"""The README's microcontroller table: each model's full-integer int8 .tflite bundled for TensorFlow
Lite Micro (`edgezoo bundle --model NAME --target mcu`), with the flash and tensor arena TFLM's own
interpreter measured, the operators to register, and how far TFLM's outputs are from LiteRT's.
A model TFLM cannot run is a row saying why (the operator it lacks).

    .venv/bin/python benchmarks/mcu.py                      # cnn, mlp, dqn; merge into results, write README
    .venv/bin/python benchmarks/mcu.py --models lstm,gcn    # others
    .venv/bin/python benchmarks/mcu.py --render             # only re-render the README block

Results: results/mcu.json (one entry per model).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "mcu.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- mcu-table:begin (benchmarks/mcu.py writes this) -->", "<!-- mcu-table:end -->"


def measure(name: str, work: Path) -> dict:
    from edgezoo import zoo
    from edgezoo.devices.bundle import make_bundle
    from edgezoo.errors import BadInput
    from edgezoo.pipeline import export

    card = zoo.get(name)
    result = export(card, int8=True, formats=["tflite"], int8_scheme="static", out=work / name)
    row = next(a for a in result.manifest.artifacts if a.precision == "int8")
    entry = {"model": name, "input": " ".join("x".join(map(str, i.shape)) for i in result.manifest.inputs),
             "metric_name": result.manifest.reference.metric_name, "torch": result.manifest.reference.metric,
             "litert_int8": row.metric, "litert_ok": row.ok}
    try:
        mcu = make_bundle(work / name, "mcu", out=work / f"{name}-mcu").bundle.mcu
    except BadInput as exc:
        return entry | {"refused": str(exc)}
    return entry | {k: mcu[k] for k in ("flash_bytes", "arena_bytes", "arena_min_bytes", "ops", "tflm_vs_litert_max_units", "tflite_micro")}


def _steps(x: float) -> str:
    return "identical" if x == 0 else f"{x:.0f} step" + ("" if round(x) == 1 else "s")


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def render(entries: list[dict]) -> str:
    lines = ["| model | input | LiteRT int8 metric (torch) | flash | tensor arena | operators to register | TFLM vs LiteRT |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        metric = f"{e['metric_name']} {e['litert_int8']:.4g} ({e['torch']:.4g})" if e.get("litert_int8") is not None else "-"
        if "refused" in e:
            lines.append(f"| {e['model']} | {e['input']} | {metric} | refused: {e['refused'].replace('|', '/')} | | | |")
            continue
        lines.append(f"| {e['model']} | {e['input']} | {metric} | {_kb(e['flash_bytes'])} | {_kb(e['arena_bytes'])} "
                     f"(runs in {e['arena_min_bytes']} bytes) | {', '.join(e['ops'])} | {_steps(e['tflm_vs_litert_max_units'])} |")
    versions = sorted({e["tflite_micro"] for e in entries if e.get("tflite_micro")})
    lines.append("")
    lines.append("Full-size zoo models, static int8 TFLite. Flash: the .tflite's bytes (the C array's). Tensor arena: the smallest "
                 "in which TensorFlow Lite Micro's interpreter (tflite-micro " + ", ".join(versions) + ", on this 64-bit host) "
                 "allocates and runs the model, rounded up to 1 KiB; TFLM vs LiteRT: the largest difference of the outputs on 3 "
                 "seeded inputs, in quantization steps.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--models", default="cnn,mlp,dqn", help="comma-separated zoo models (default cnn,mlp,dqn)")
    args = parser.parse_args()
    from edgezoo.report import update_per_model_results

    models = [] if args.render else args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        print(update_per_model_results(RESULTS, README, BEGIN, END, render, lambda name: measure(name, Path(tmp)), models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
