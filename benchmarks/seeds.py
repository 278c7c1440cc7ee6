"""Each zoo model's small variant (the test suite's size) trained with several seeds: the held-out
metric of each against the card's bar, so that no test rests on one seed's lucky trajectory.

    .venv/bin/python benchmarks/seeds.py                          # every model, seeds 0,1,2
    .venv/bin/python benchmarks/seeds.py --models dqn --seeds 0,1,2,3,4
    .venv/bin/python benchmarks/seeds.py --models mobilenet --threads 1,2   # each seed at 1 and at 2 threads
    .venv/bin/python benchmarks/seeds.py --render                 # only re-render the README block

Checkpoints are cached in $EDGEZOO_HOME by recipe (the seed is part of it). Results merge into
results/seeds.json (several runs may write at once) and the README block is re-rendered.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "seeds.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- seeds-table:begin (benchmarks/seeds.py writes this) -->", "<!-- seeds-table:end -->"


def measure(name: str, seed: int, threads: int | None = None) -> dict:
    from edgezoo import zoo
    from edgezoo.hostinfo import host as _host
    from edgezoo.train import evaluate, trained_model

    import torch

    card = zoo.get(name).small_variant()
    # --threads overrides the thread count the recipe trains on (a recipe may name its own)
    recipe = dataclasses.replace(card.recipe, seed=seed, threads=threads or card.recipe.threads)
    spec = dataclasses.replace(card, recipe=recipe)
    threads = recipe.threads or torch.get_num_threads()
    started = time.perf_counter()
    model, path = trained_model(spec, retrain=True)  # a cached checkpoint may have been trained with another thread count
    seconds = time.perf_counter() - started
    data = spec.load_data(spec.inputs[0].shape)
    metric = evaluate(model, data, "test")
    bar = spec.bar(data)
    return {"model": name, "recipe": recipe_fingerprint(card), "seed": seed, "metric_name": spec.metric_name, "metric": metric,
            "bar": None if bar is None else bar[0], "higher_is_better": data.measure.higher_is_better,
            "cleared": None if bar is None else data.measure.clears(metric, bar[0]),
            "seconds": round(seconds, 1), "cpu": _host().cpu, "threads": threads, **_trainer_steps(path)}


def _trainer_steps(checkpoint: Path) -> dict:
    """The steps a trainer that stops on its own took (the DQN's): how close a seed came to its budget."""
    from edgezoo.train import training_metrics

    steps = training_metrics(checkpoint).get("steps")
    return {} if steps is None else {"steps": int(steps)}


def recipe_fingerprint(card) -> str:
    """What a small variant trains, less the seed and thread count a run varies: a changed recipe,
    width or input size makes the stored runs of the old one stale."""
    import hashlib

    fields = dataclasses.asdict(card.recipe)
    fields.pop("seed"), fields.pop("threads")
    blob = json.dumps({"build": card.build_kwargs, "inputs": [i.shape[1:] for i in card.inputs], "recipe": fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def render(entries: list[dict]) -> str:
    from edgezoo import zoo

    by_model: dict[str, list[dict]] = {}
    for e in entries:
        by_model.setdefault(e["model"], []).append(e)
    lines = ["| model (small variant) | metric | bar | per training seed | cleared | measured on |", "|---|---|---|---|---|---|"]
    for name in zoo.names():
        current = recipe_fingerprint(zoo.get(name).small_variant())
        runs = sorted((e for e in by_model.get(name, []) if e.get("recipe") == current), key=lambda e: (e["cpu"], e["seed"], e.get("threads") or 0))
        if not runs:
            why = "recipe changed since measured" if by_model.get(name) else "not measured yet"
            lines.append(f"| {name} | {why}: run `benchmarks/seeds.py --models {name}` | | | | |")
            continue
        for cpu in sorted({e["cpu"] for e in runs}):
            on_cpu = [e for e in runs if e["cpu"] == cpu]
            first = on_cpu[0]
            said_bar = "-" if first["bar"] is None else f"{'>=' if first['higher_is_better'] else '<='} {first['bar']:.4g}"
            per_seed = ", ".join(f"{e['seed']}{_threads(e)}: {e['metric']:.4g}{_steps(e)}" for e in on_cpu)
            cleared = sum(bool(e["cleared"]) for e in on_cpu)
            lines.append(f"| {name} | {first['metric_name']} | {said_bar} | {per_seed} | {cleared} of {len(on_cpu)} | {cpu} |")
    return "\n".join(lines)


def _key(entry: dict) -> tuple:
    """A run is one model, seed and thread count on one kind of CPU (another CPU's float kernels
    can train another model, so its runs stand beside this one's rather than replace them)."""
    return entry["model"], entry["seed"], entry.get("threads"), entry["cpu"]


def _steps(entry: dict) -> str:
    return f" in {entry['steps']:,} steps" if entry.get("steps") else ""


def _threads(entry: dict) -> str:
    """Training's thread count beside the seed (float sums, and so trajectories, depend on it)."""
    return "" if entry.get("threads") is None else f" ({entry['threads']} thr)"


@contextlib.contextmanager
def _locked():
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _store(entry: dict) -> None:
    """Merges one result into the stored ones: the same model, seed and threads are replaced, and
    so are that model's runs of another recipe (or of one not recorded)."""
    with _locked():
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        kept = [e for e in stored if e["model"] != entry["model"] or (e.get("recipe") == entry["recipe"] and _key(e) != _key(entry))]
        stored = kept + [entry]
        stored.sort(key=lambda e: (e["model"], e["cpu"], e["seed"], e.get("threads") or 0))
        RESULTS.write_text(json.dumps(stored, indent=1) + "\n")


def _write_readme() -> list[dict]:
    """Renders what is stored (read under the lock: another run may have stored more)."""
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    with _locked():
        entries = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, render(entries)))
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated subset (default: every registered model)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    parser.add_argument("--threads", default=None,
                        help="comma-separated torch thread counts to train each seed at (default: the recipe's, else torch's: one per core)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if not args.render:
        from edgezoo import zoo

        for name in args.models.split(",") if args.models else zoo.names():
            for threads in [int(t) for t in args.threads.split(",")] if args.threads else [None]:
                for seed in (int(s) for s in args.seeds.split(",")):
                    entry = measure(name, seed, threads)
                    _store(entry)
                    print(json.dumps(entry), flush=True)
    print(render(_write_readme()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
