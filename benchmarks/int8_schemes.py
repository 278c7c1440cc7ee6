"""Why a model card picks its int8 scheme: both schemes measured on the same checkpoint, in one run.

    .venv/bin/python benchmarks/int8_schemes.py            # measure, write results/int8_schemes.json, update README
    .venv/bin/python benchmarks/int8_schemes.py --render   # only re-render the README from the stored results

For every zoo model whose card chooses int8 "weights" (or --models), exports int8 with the card's
scheme and with "static" (full-integer, calibrated), every format, and records each artifact's
held-out metric, whether it kept the card's int8 bound, and its latency. Exits 1 if the card's own
scheme misses its bound anywhere: the choice it documents would then be wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "int8_schemes.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- int8-schemes:begin (benchmarks/int8_schemes.py writes this) -->", "<!-- int8-schemes:end -->"
SCHEMES = ("weights", "static")


def measure(name: str, out: Path) -> dict:
    from edgezoo import registry
    from edgezoo.pipeline import export

    card = registry.get(name)
    entry = {"model": name, "card_scheme": card.int8_scheme, "schemes": {}}
    for scheme in SCHEMES:
        manifest = export(dataclasses.replace(card, int8_scheme=scheme), int8=True, out=out / f"{name}-{scheme}").manifest
        ref = manifest["reference"]
        entry.update(metric_name=ref["metric_name"], torch=ref["metric"], bound=card.tolerance.int8_metric_drop,
                     higher_is_better=_higher_is_better(ref["metric_name"]))
        entry["schemes"][scheme] = {
            a["format"]: {"metric": a["metric"], "ok": a["status"] == "ok", "latency_ms": a.get("latency_ms"), "error": a["error"]}
            for a in manifest["artifacts"] if a["precision"] == "int8"
        }
    return entry


def _higher_is_better(metric_name: str) -> bool:
    from edgezoo.data.base import METRICS

    return METRICS[metric_name].higher_is_better


def _cell(result: dict) -> str:
    if result["metric"] is None:
        return f"not made: {(result['error'] or '').replace('|', '/')[:120]}"
    latency = "" if result["latency_ms"] is None else f", {result['latency_ms']:.3g} ms"
    return f"{result['metric']:.4g}{latency}{'' if result['ok'] else ' (misses bound)'}"


def render(entries: list[dict]) -> str:
    formats = list(entries[0]["schemes"][SCHEMES[0]]) if entries else []
    header = "| model | metric: torch | int8 bound | scheme | " + " | ".join(formats) + " |"
    lines = [header, "|" + "---|" * (len(formats) + 4)]
    for e in entries:
        sign = "-" if e["higher_is_better"] else "+"
        for scheme in SCHEMES:
            chosen = " (card's choice)" if scheme == e["card_scheme"] else ""
            cells = [_cell(e["schemes"][scheme][f]) for f in formats]
            lines.append(f"| {e['model']} | {e['metric_name']}: {e['torch']:.4g} | {sign}{e['bound']:g} | {scheme}{chosen} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--models", default=None, help="comma-separated (default: every model whose card picks int8 weights)")
    args = parser.parse_args()
    if args.render:
        entries = json.loads(RESULTS.read_text())
    else:
        from edgezoo import registry

        names = args.models.split(",") if args.models else [n for n in registry.names() if registry.get(n).int8_scheme == "weights"]
        with tempfile.TemporaryDirectory() as tmp:
            entries = [measure(n, Path(tmp)) for n in names]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(entries, indent=1) + "\n")
    from edgezoo.report import replace_block

    text = README.read_text()
    if BEGIN in text:  # the README shows the block once it holds a measured run
        README.write_text(replace_block(text, BEGIN, END, render(entries)))
    print(render(entries))
    return 0 if all(r["ok"] for e in entries for r in e["schemes"][e["card_scheme"]].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
