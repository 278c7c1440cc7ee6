"""What the walls between converters cost: the flagship's export (checkpoint cached) with every
converter, quantizer and first run in a child process per format, against the same steps run in
the exporting process, interleaved in one run. With the walls the formats also go side by side
(a child each); in one process they go one after another (the converters share one interpreter):
the ratio is what a user sees, walls and parallel formats together.

    .venv/bin/python benchmarks/isolation.py [--rounds 3]    # measure, write results/isolation.json, update README
    .venv/bin/python benchmarks/isolation.py --render        # only re-render the README block
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "isolation.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- isolation:begin (benchmarks/isolation.py writes this) -->", "<!-- isolation:end -->"
GOAL = 1.15  # isolated at most 15% slower


def measure(rounds: int, model: str) -> dict:
    from edgezoo import zoo
    from edgezoo.hostinfo import host as _host
    from edgezoo.pipeline import export
    from edgezoo.train import trained_model

    trained_model(zoo.get(model))  # training is not part of what is compared
    seconds: dict[str, list[float]] = {"isolated": [], "in_process": []}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = ("isolated", "in_process") if r % 2 == 0 else ("in_process", "isolated")
            for how in order:
                started = time.perf_counter()
                result = export(model, int8=True, out=Path(tmp) / f"{how}-{r}", isolate=how == "isolated")
                seconds[how].append(round(time.perf_counter() - started, 1))
                ok = ok and result.ok
    host = _host()
    return {"model": model, "command": f"edgezoo export --model {model} --int8", "rounds": rounds, "seconds": seconds,
            "all_ok": ok, "cpu": host.cpu, "cores": host.cpu_count, "measured": time.strftime("%Y-%m-%d")}


def render(results: dict | None) -> str:
    if results is None:
        return "Not measured yet: run `benchmarks/isolation.py`."
    isolated, in_process = (statistics.median(results["seconds"][k]) for k in ("isolated", "in_process"))
    ratio = isolated / in_process
    spread = ", ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(results["seconds"]["isolated"], results["seconds"]["in_process"]))
    return (f"Measured {results['measured']} on {results['cpu']} ({results['cores']} cores), `{results['command']}` with the "
            f"checkpoint cached, {results['rounds']} interleaved rounds: **{isolated:.0f} s** with each format's steps in a child "
            f"process, {in_process:.0f} s in the exporting process: **{ratio:.2f}x** (goal <= {GOAL:.2f}x; "
            f"{'met' if ratio <= GOAL else 'missed'}). Per round, isolated/in-process: {spread} s. "
            f"{'All artifacts ok in every run.' if results['all_ok'] else 'Some artifacts failed: see the run.'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="mobilenet")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if args.render:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else None
    else:
        results = measure(args.rounds, args.model)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, render(results)))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
