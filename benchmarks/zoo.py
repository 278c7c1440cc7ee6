"""The README's model x format x precision table, generated from real exports (never typed by hand).

    .venv/bin/python benchmarks/zoo.py            # export every zoo model with --int8, store manifests, update README
    .venv/bin/python benchmarks/zoo.py --render   # only re-render the README from results/zoo.json

Each model is trained on first use (cached in $EDGEZOO_HOME). Exits 1 if any artifact failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "zoo.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- zoo-table:begin (benchmarks/zoo.py writes this) -->", "<!-- zoo-table:end -->"


def render(manifests: list) -> str:
    """The table of the stored manifests, plus a row for each registered model not measured yet."""
    from edgezoo import zoo
    from edgezoo.report import zoo_markdown

    table = zoo_markdown(manifests)
    measured = {m.model for m in manifests}
    missing = [n for n in zoo.names() if n not in measured]
    table += "".join(f"\n| {n} | not measured yet: run `benchmarks/zoo.py --models {n}` |" for n in missing)
    return table + "\n\n" + training_goal(manifests)


def load() -> list:
    """The stored manifests, read as the typed schema."""
    from edgezoo.manifest import Manifest

    return [Manifest.from_dict(m, f"{RESULTS.name} entry {i}") for i, m in enumerate(json.loads(RESULTS.read_text()))]


TRAINING_GOAL_S = 180  # each default recipe trains in at most 3 minutes on 2 cores


def training_goal(manifests: list) -> str:
    """One line on the training-time goal, from the seconds recorded with each checkpoint."""
    from edgezoo.report import duration

    took = {m.model: None if m.training is None else m.training.seconds for m in manifests}
    over = [f"{n} ({duration(s)})" for n, s in took.items() if s is not None and s > TRAINING_GOAL_S]
    unknown = [n for n, s in took.items() if s is None]
    timed = {n: s for n, s in took.items() if s is not None}
    line = f"Training goal, at most {TRAINING_GOAL_S // 60} minutes per model on 2 cores: "
    if over:
        line += f"missed by {', '.join(over)}"
    elif timed:
        longest = max(timed, key=timed.get)
        line += f"met by all {len(timed)} timed models (longest: {longest}, {duration(timed[longest])})"
    else:
        line += "no training time recorded"
    return line + (f"; not timed (checkpoint trained elsewhere): {', '.join(unknown)}." if unknown else ".")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--models", default=None, help="comma-separated subset (default: every registered model)")
    args = parser.parse_args()
    if args.render:
        manifests = load()
    else:
        from edgezoo import zoo
        from edgezoo.pipeline import export

        names = args.models.split(",") if args.models else zoo.names()
        # --models re-measures those and keeps the stored manifests of the others.
        stored = {m.model: m for m in load()} if args.models and RESULTS.exists() else {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                stored[name] = export(name, int8=True, out=Path(tmp) / name).manifest
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps([stored[n].to_dict() for n in sorted(stored)], indent=1) + "\n")
        manifests = [stored[n] for n in sorted(stored) if n in zoo.names()]
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, render(manifests)))
    print(render(manifests))
    return 0 if all(m.ok for m in manifests) else 1


if __name__ == "__main__":
    sys.exit(main())
