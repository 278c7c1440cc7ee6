"""What quantization-aware fine-tuning keeps, per runtime: each model exported with post-training
static int8 and with --qat in one run, every int8 file's held-out metric against the trained torch
model's, and its latency against the fp32 file's of the same export.

    .venv/bin/python benchmarks/qat.py --models dqn          # measure, merge into results/qat.json, update README
    .venv/bin/python benchmarks/qat.py --render              # only re-render the README from the stored results

Results merge into results/qat.json (one entry per model).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "qat.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- qat:begin (benchmarks/qat.py writes this) -->", "<!-- qat:end -->"
FORMATS = ("onnx", "tflite", "openvino")


def measure(name: str, out: Path, epochs: int | None) -> dict:
    from edgezoo import zoo
    from edgezoo.metrics import METRICS
    from edgezoo.pipeline import export

    card = zoo.get(name)
    entry = {"model": name, "runs": {}}
    for run, kwargs in (("static", {"int8": True, "int8_scheme": "static"}), ("qat", {"qat": True, "qat_epochs": epochs})):
        m = export(card, out=out / f"{name}-{run}", **kwargs).manifest
        measure_ = METRICS[m.reference.metric_name]
        entry.update(metric_name=m.reference.metric_name, torch=m.reference.metric, bound=card.tolerance.int8_metric_drop)
        fp32 = {a.format: a.latency_ms for a in m.artifacts if a.precision == "fp32"}
        cells = {}
        for a in m.artifacts:
            if a.precision != "int8":
                continue
            kept = a.metric is not None and measure_.worse_by(a.metric, m.reference.metric) <= card.tolerance.int8_metric_drop + 1e-9
            cells[a.format] = {"metric": a.metric, "ok": a.ok, "kept_bound": kept, "error": a.error, "latency_ms": a.latency_ms,
                               "fp32_latency_ms": fp32.get(a.format)}
        entry["runs"][run] = cells
        if m.qat is not None:
            entry["qat"] = {"epochs": m.qat.epochs, "int8_simulated": m.qat.int8_simulated}
    return entry


def _cell(c: dict | None) -> str:
    if c is None:
        return "-"
    if c["metric"] is None:
        return "not made: " + (c["error"] or "").replace("|", "/")[:110]
    text = f"{c['metric']:.4g}"
    if c["latency_ms"] is not None and c["fp32_latency_ms"]:
        text += f", {c['latency_ms'] / c['fp32_latency_ms']:.2f}x fp32's time"
    return text + ("" if c["kept_bound"] else " (misses bound)")


def render(entries: list[dict]) -> str:
    lines = ["| model | metric: torch | int8 bound | int8 | " + " | ".join(FORMATS) + " |", "|" + "---|" * (len(FORMATS) + 4)]
    for e in entries:
        head = f"| {e['model']} | {e['metric_name']}: {e['torch']:.4g} | {e['bound']:g} |"
        lines.append(f"{head} post-training static | " + " | ".join(_cell(e["runs"]["static"].get(f)) for f in FORMATS) + " |")
        q = e.get("qat", {})
        lines.append(f"{head} --qat ({q.get('epochs')} epochs; {q.get('int8_simulated', float('nan')):.4g} simulated in torch) | "
                     + " | ".join(_cell(e["runs"]["qat"].get(f)) for f in FORMATS) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--models", default="dqn", help="comma-separated zoo models (default dqn)")
    parser.add_argument("--epochs", type=int, default=None, help="QAT epochs (default: the card's default)")
    args = parser.parse_args()
    from edgezoo.report import update_per_model_results

    models = [] if args.render else args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        print(update_per_model_results(RESULTS, README, BEGIN, END, render, lambda name: measure(name, Path(tmp), args.epochs), models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
