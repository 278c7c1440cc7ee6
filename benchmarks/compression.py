"""The README's compression section: each convolutional zoo model exported as it is and pruned
(`edgezoo export --model NAME --int8` and `... --prune R --int8`), both folders benchmarked together
by `edgezoo bench` (interleaved, a process per file and runtime), so the speed-ups are ratios from
one run. MACs and parameters at the export's input shape, size on disk, the held-out metric of
each file (from its export's check), and latency per runtime and precision, before and after.

    .venv/bin/python benchmarks/compression.py                         # the flagship at 0.25
    .venv/bin/python benchmarks/compression.py --models cnn,resnet --ratio 0.3
    .venv/bin/python benchmarks/compression.py --render                # only re-render from results/

Results merge into results/compression.json (one entry per model and ratio).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "compression.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- compression:begin (benchmarks/compression.py writes this) -->", "<!-- compression:end -->"
GOALS = {"macs": 0.40, "drop_points": 1.0, "speedup": 1.4}  # the flagship's (issue: compression)


def _export(model: str, out: Path, ratio: float | None, max_drop: float | None = None) -> Path:
    if (out / "manifest.json").is_file():  # written last: a finished export, reused (a failed row stays failed)
        return out
    exe = Path(sys.executable).parent / "edgezoo"
    args = [str(exe), "export", "--model", model, "--int8", "--out", str(out)] + ([] if ratio is None else ["--prune", str(ratio)])
    args += [] if max_drop is None else ["--max-drop", str(max_drop)]
    proc = subprocess.run(args, capture_output=True, text=True)
    # Exit 1 with a manifest: some artifact failed its check (its row says why, and so does the table).
    if proc.returncode != 0 and not (proc.returncode == 1 and (out / "manifest.json").is_file()):
        sys.exit(f"{' '.join(args[1:])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out


def measure(model: str, ratio: float, threads: int, rounds: int, seconds: float, work: Path, max_drop: float | None = None) -> dict:
    from edgezoo.bench import bench
    from edgezoo.manifest import read_manifest

    from edgezoo.export import FORMATS

    base = _export(model, work / f"{model}", None)
    # --max-drop applies to the pruned model's int8 files (accuracy-aware: the fewest layers kept float)
    pruned = _export(model, work / f"{model}-pruned{round(ratio * 100)}{'' if max_drop is None else f'-maxdrop{max_drop:g}'}", ratio, max_drop)
    mb, mp = read_manifest(base / "manifest.json"), read_manifest(pruned / "manifest.json")
    # The files themselves (bench compares one export folder at a time), each in its format's runtime.
    files = [folder / a.path for folder, m in ((base, mb), (pruned, mp)) for a in m.artifacts if a.ok]
    native = {"onnx": "onnxruntime", "tflite": "litert", "openvino": "openvino"}  # bench's runtime for each format
    assert set(native) == set(FORMATS), "a new format needs its bench runtime here"
    report = bench(files, threads=[threads], runtimes=sorted(set(native.values())), rounds=rounds, seconds_per_row=seconds)
    rows = []
    for a in mb.artifacts:
        b = mp.artifact(a.format, a.precision)
        if not a.ok or (b is not None and not b.ok):  # made but failed its check (not kept), or not made: said, not timed
            why = "; ".join(f"{side}: {x.error}" for side, x in (("unpruned", a), ("pruned", b)) if x is not None and not x.ok)
            rows.append({"format": a.format, "precision": a.precision, "runtime": native[a.format],
                         "bytes": [a.bytes if a.ok else None, b.bytes if b is not None and b.ok else None],
                         "metric": [a.metric, None if b is None else b.metric], "p50_ms": None, "speedup": None, "speedup_range": None, "failed": why})
            continue
        rb = [r for r in report.rows if r.path and Path(r.path) == base / a.path and r.latency and r.runtime == native[a.format]]
        rp = [r for r in report.rows if r.path and b and Path(r.path) == pruned / b.path and r.latency and r.runtime == native[a.format]]
        for x in rb:
            y = next((r for r in rp if r.runtime == x.runtime), None)
            if y is None:
                continue
            # Per round, the unpruned file's median over the pruned one's: the spread of the ratio.
            ratios = [u / v for u, v in zip(x.latency.round_p50_ms, y.latency.round_p50_ms)]
            rows.append({"format": a.format, "precision": a.precision, "runtime": x.runtime, "bytes": [a.bytes, b.bytes], "metric": [a.metric, b.metric],
                         "p50_ms": [x.latency.p50_ms, y.latency.p50_ms], "speedup": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)],
                         "kept_float": None if b.accuracy_aware is None else len(b.accuracy_aware.kept_float)})
    p = mp.pruning
    return {"model": model, "ratio": ratio, "threads": threads, "rounds": rounds, "cpu": report.host.cpu, "finetune_epochs": p.finetune_epochs,
            "finetune": "card stages",  # edgezoo.prune.finetune_stages (session 18's predecessor fine-tuned at the export size)
            "max_drop": max_drop,
            "macs": [p.macs_before, p.macs_after], "params": [p.params_before, p.params_after], "metric_name": mb.reference.metric_name,
            "torch_metric": [mb.reference.metric, mp.reference.metric], "input": mb.inputs[0].shape, "rows": rows}


def render(entries: list[dict]) -> str:
    from edgezoo.bench_results import RUNTIME_LABELS
    from edgezoo.report import human_bytes, human_count

    if not entries:
        return "Not measured yet: run `benchmarks/compression.py`."
    cpus = sorted({e["cpu"] for e in entries})
    lines = ["| model | pruned | MACs | parameters | torch metric | file | runtime | size | metric | p50 ms | speed-up |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        how = "over the card's stages"  # every entry's: edgezoo.prune.finetune_stages
        if e.get("max_drop") is not None:
            how += f"; int8 accuracy-aware (`--max-drop {e['max_drop']:g}`)"
        where = f", {e['cpu']}" if len(cpus) > 1 else ""
        # The entry's cells open its first row; the rows after it leave them blank.
        opening = (f"| {e['model']} ({'x'.join(map(str, e['input'][1:]))}) | {e['ratio']:.0%} of channels, {e['finetune_epochs']} epochs fine-tuning {how}{where} | "
                   f"{human_count(e['macs'][0])} -> {human_count(e['macs'][1])} ({e['macs'][1] / e['macs'][0] - 1:+.0%}) | "
                   f"{human_count(e['params'][0])} -> {human_count(e['params'][1])} | {e['metric_name']} {e['torch_metric'][0]:.4f} -> {e['torch_metric'][1]:.4f} |")
        for i, r in enumerate(e["rows"]):
            head = opening if i == 0 else "| | | | | |"
            if r.get("failed"):
                size = " -> ".join("not kept" if b is None else human_bytes(b) for b in r["bytes"])
                metric = " -> ".join("not measured" if m is None else f"{m:.4f}" for m in r["metric"])
                lines.append(f"{head} {r['format']} {r['precision']} | {RUNTIME_LABELS.get(r['runtime'], r['runtime'])} | {size} | {metric} | - | FAILED, {r['failed']} |")
                continue
            lo, hi = r["speedup_range"]
            kept = f" ({r['kept_float']} {'layer' if r['kept_float'] == 1 else 'layers'} float)" if r.get("kept_float") else ""
            lines.append(f"{head} {r['format']} {r['precision']}{kept} | {RUNTIME_LABELS.get(r['runtime'], r['runtime'])} | {human_bytes(r['bytes'][0])} -> {human_bytes(r['bytes'][1])} | "
                         f"{r['metric'][0]:.4f} -> {r['metric'][1]:.4f} | {r['p50_ms'][0]:.2f} -> {r['p50_ms'][1]:.2f} | {r['speedup']:.2f}x ({lo:.2f}-{hi:.2f}) |")
    said = [(f"Measured on {' and '.join(cpus)}{' (each row says which)' if len(cpus) > 1 else ''} with `edgezoo bench` ({entries[0]['threads']} threads, {entries[0]['rounds']} interleaved rounds, a process per "
             "file and runtime); speed-up: the unpruned file's p50 over the pruned one's, median over rounds (lowest-highest). Metric: each "
             "file's own, over the held-out split, from its export's check.")]
    for flagship in (e for e in entries if e["model"] == "mobilenet"):
        fewer = 1 - flagship["macs"][1] / flagship["macs"][0]
        drop = (flagship["torch_metric"][0] - flagship["torch_metric"][1]) * 100
        slow = [r for r in flagship["rows"] if r["runtime"] in ("onnxruntime", "litert") and (r.get("failed") or r["speedup"] < GOALS["speedup"])]
        variant = "" if flagship.get("max_drop") is None else f" with --max-drop {flagship['max_drop']:g}"
        said.append(f"Flagship goals at {flagship['ratio']:.0%}{variant}: at least {GOALS['macs']:.0%} fewer MACs ({fewer:.0%}: {'met' if fewer >= GOALS['macs'] else 'MISSED'}), "
                    f"at most {GOALS['drop_points']:g} point of accuracy lost ({f'{drop:.1f} points lost' if drop > 0 else f'{-drop:.1f} points gained'}: "
                    f"{'met' if drop <= GOALS['drop_points'] else 'MISSED'}), "
                    f"at least {GOALS['speedup']}x faster in ONNX Runtime and LiteRT, fp32 and int8 ("
                    + ("met" if not slow else "MISSED by " + ", ".join(f"{r['runtime']} {r['precision']} " + ("(failed its check)" if r.get("failed") else f"{r['speedup']:.2f}x")
                                                                   for r in slow)) + ").")
        # Pruned and int8 together against the unpruned fp32 file, per runtime (p50s of the same bench run).
        together = []
        for runtime in ("onnxruntime", "litert", "openvino"):
            fp32 = next((r for r in flagship["rows"] if r["runtime"] == runtime and r["precision"] == "fp32" and not r.get("failed")), None)
            int8 = next((r for r in flagship["rows"] if r["runtime"] == runtime and r["precision"] == "int8" and not r.get("failed")), None)
            if fp32 and int8:
                together.append(f"{RUNTIME_LABELS.get(runtime, runtime)} {fp32['p50_ms'][0] / int8['p50_ms'][1]:.2f}x "
                                f"({fp32['p50_ms'][0]:.2f} -> {int8['p50_ms'][1]:.2f} ms, {human_bytes(fp32['bytes'][0])} -> {human_bytes(int8['bytes'][1])})")
        if together:
            said.append(f"Pruned {flagship['ratio']:.0%}{variant} and int8 together against the unpruned fp32 file: " + ", ".join(together) + ".")
    return "\n".join(lines) + "\n\n" + " ".join(said)


def load() -> list[dict]:
    """The stored entries in the README's order: the flagship first, then by model and ratio."""
    entries = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    return sorted(entries, key=lambda e: (e["model"] != "mobilenet", e["model"], e["ratio"], e.get("max_drop") or 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet", help="comma-separated zoo models (default: the flagship)")
    parser.add_argument("--ratio", type=float, default=0.25, help="fraction of channels pruned (default 0.25)")
    parser.add_argument("--max-drop", type=float, default=None, metavar="X",
                        help="the pruned export's int8 made accuracy-aware (edgezoo export --max-drop X); a row of its own")
    parser.add_argument("--threads", type=int, default=2, help="threads per runtime (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved bench rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of timed runs per file, runtime and round (default 2)")
    parser.add_argument("--work", default=None, help="folder for the exports, reused when complete (default: a temporary one)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    entries = load()
    if not args.render:
        with tempfile.TemporaryDirectory() as tmp:
            work = (Path(args.work) if args.work else Path(tmp)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            for model in [m.strip() for m in args.models.split(",") if m.strip()]:
                entry = measure(model, args.ratio, args.threads, args.rounds, args.seconds, work, args.max_drop)
                same = (model, args.ratio, args.max_drop)
                entries = [e for e in entries if (e["model"], e["ratio"], e.get("max_drop")) != same] + [entry]
                RESULTS.write_text(json.dumps(entries, indent=1) + "\n")
                print(render([entry]), flush=True)
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    body = render(load())
    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, body))
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
