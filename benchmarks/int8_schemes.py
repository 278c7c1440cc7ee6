"""Why a model card picks its int8 scheme: both schemes measured on the same checkpoint, in one run.

    .venv/bin/python benchmarks/int8_schemes.py            # measure, write results/int8_schemes.json, update README
    .venv/bin/python benchmarks/int8_schemes.py --render   # only re-render the README from the stored results

For every zoo model whose card chooses int8 "weights" for some runtime (or --models), exports int8
with each scheme, "weights" and "static" (full-integer, calibrated), and static with --max-drop at
the card's bound (the fewest layers kept float: edgezoo.accuracy_aware), every format, and records
each artifact's held-out metric, whether it kept the card's int8 bound, and its latency against the
fp32 artifact's, timed in the same run. Exits 1 if the card's choice for a runtime misses its
bound: the choice it documents would then be wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "int8_schemes.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- int8-schemes:begin (benchmarks/int8_schemes.py writes this) -->", "<!-- int8-schemes:end -->"
SCHEMES = ("weights", "static")
AWARE = "static --max-drop"  # static int8 with the fewest layers kept float for the card's bound


def measure(name: str, out: Path) -> dict:
    from edgezoo import zoo
    from edgezoo.pipeline import export

    from edgezoo.hostinfo import host

    card = zoo.get(name)
    entry = {"model": name, "cpu": host().cpu, "fp32": {}, "schemes": {}}
    for scheme in (*SCHEMES, AWARE):
        if scheme == AWARE:
            manifest = export(card, int8=True, max_drop=card.tolerance.int8_metric_drop, out=out / f"{name}-aware").manifest
        else:
            manifest = export(card, int8=True, int8_scheme=scheme, out=out / f"{name}-{scheme}").manifest
        ref = manifest.reference
        entry.update(metric_name=ref.metric_name, torch=ref.metric, bound=card.tolerance.int8_metric_drop,
                     higher_is_better=_measure(ref.metric_name).higher_is_better)
        for a in manifest.artifacts:
            result = {"metric": a.metric, "ok": a.ok, "latency_ms": a.latency_ms, "error": a.error,
                      "kept_bound": a.metric is not None and _measure(ref.metric_name).worse_by(a.metric, ref.metric) <= entry["bound"] + 1e-9}
            if a.precision == "int8":
                entry["schemes"].setdefault(scheme, {})[a.format] = result
                if a.accuracy_aware is not None:
                    result.update(kept_float=len(a.accuracy_aware.kept_float), candidates=a.accuracy_aware.candidates)
            elif scheme == AWARE:  # its own run's fp32, for a ratio timed in one run
                entry.setdefault("fp32_aware_run", {})[a.format] = result
            elif scheme == SCHEMES[0]:  # fp32 is the same file under either scheme: timed once
                entry["fp32"][a.format] = result
    entry["card"] = {f: card.int8_scheme_for(f) for f in entry["fp32"]}
    return entry


def picks_weights(card) -> bool:
    return "weights" in (card.int8_scheme, *card.int8_scheme_by_format.values())


def _measure(metric_name: str):
    from edgezoo.metrics import METRICS

    return METRICS[metric_name]


def _cell(result: dict, fp32: dict | None = None, chosen: bool = False) -> str:
    if result["metric"] is None:
        return f"not made: {_short(result['error'])}"
    latency = "" if result["latency_ms"] is None else f", {result['latency_ms']:.3g} ms"
    if fp32 and fp32.get("latency_ms") and result["latency_ms"] is not None:
        latency += f" ({result['latency_ms'] / fp32['latency_ms']:.2f}x fp32)"
    if "kept_float" in result:
        latency += f", {result['kept_float']}/{result['candidates']} layers float" if result["kept_float"] else ", all int8"
    failed = "" if result["ok"] else " (misses bound)" if not result["kept_bound"] else f" (failed: {_short(result['error'])})"
    text = f"{result['metric']:.4g}{latency}{failed}"
    return f"**{text}**" if chosen else text


def _short(error: str | None) -> str:
    return (error or "").replace("|", "/")[:120]


def render(entries: list[dict]) -> str:
    formats = list(entries[0]["fp32"]) if entries else []
    header = "| model | metric: torch | int8 bound | precision | " + " | ".join(formats) + " |"
    lines = [header, "|" + "---|" * (len(formats) + 4)]
    for e in entries:
        sign = "-" if e["higher_is_better"] else "+"
        head = f"| {e['model']} | {e['metric_name']}: {e['torch']:.4g} | {sign}{e['bound']:g} |"
        lines.append(f"{head} fp32 | " + " | ".join(_cell(e["fp32"][f]) for f in formats) + " |")
        for scheme in SCHEMES:
            cells = [_cell(e["schemes"][scheme][f], e["fp32"][f], chosen=e["card"][f] == scheme) for f in formats]
            lines.append(f"{head} int8 {scheme} | " + " | ".join(cells) + " |")
        if AWARE in e["schemes"]:
            cells = [_cell(e["schemes"][AWARE][f], e["fp32_aware_run"][f]) for f in formats]
            lines.append(f"{head} int8 {AWARE} {e['bound']:g} | " + " | ".join(cells) + " |")
    hosts: dict[str, list[str]] = {}
    for e in entries:
        hosts.setdefault(e.get("cpu") or "a host not recorded", []).append(e["model"])
    said = "; ".join(f"{cpu} ({', '.join(models)})" for cpu, models in hosts.items())
    return "\n".join(lines) + f"\n\nMeasured on {said}, each model's rows in one run."


def card_choices_keep_their_bound(entries: list[dict]) -> bool:
    return all(e["schemes"][scheme][f]["ok"] for e in entries for f, scheme in e["card"].items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--models", default=None, help="comma-separated (default: every model whose card picks int8 weights)")
    args = parser.parse_args()
    if args.render:
        entries = json.loads(RESULTS.read_text())
    else:
        from edgezoo import zoo

        names = args.models.split(",") if args.models else [n for n in zoo.names() if picks_weights(zoo.get(n))]
        # --models re-measures those (each model's figures come from one run) and keeps the others.
        stored = {e["model"]: e for e in json.loads(RESULTS.read_text())} if args.models and RESULTS.exists() else {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                stored[name] = measure(name, Path(tmp))
        entries = [stored[n] for n in sorted(stored) if n in zoo.names()]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(entries, indent=1) + "\n")
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    text = README.read_text()
    if BEGIN in text:  # the README shows the block once it holds a measured run
        write_text_atomic(README, replace_block(text, BEGIN, END, render(entries)))
    print(render(entries))
    return 0 if card_choices_keep_their_bound(entries) else 1


if __name__ == "__main__":
    sys.exit(main())
