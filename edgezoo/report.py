"""Tables from manifests: the terminal table after an export, and markdown for the README."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .bench_results import RUNTIME_LABELS, BenchReport, Ratio
from .fileio import atomic_open, write_text_atomic
from .hostinfo import SATURATES
from .manifest import Manifest
from .metrics import METRICS
from .verify_results import VerifyReport


def human_count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


LATENCY = "latency ms"


def export_table(manifest: Manifest) -> Table:
    ref = manifest.reference
    metric_name = ref.metric_name or "metric"
    table = Table(title=Text(f"{manifest.model}: {ref.eval_source}, {manifest.threads} threads on this host"), title_justify="left",
                  caption=Text(f"{LATENCY}: median over 3 rounds taking torch and the files in turn, after all were made, in this "
                               "process; `edgezoo bench DIR` gives each file and runtime its own process"))
    for col, justify in (("format", "left"), ("precision", "left"), ("ran as", "left"), ("size", "right"), (metric_name, "right"),
                         ("Δ vs torch", "right"), ("agree", "right"), ("max|Δ|", "right"), (LATENCY, "right"), ("status", "left")):
        table.add_column(col, justify=justify)
    bar = ref.bar
    said = Text("reference") if bar is None or bar.met else Text.assemble(("MISSES THE BAR", "bold red"), f" ({bar.direction} {bar.value:.4g})")
    pr = manifest.pruning
    if pr is not None:
        table.title = Text(f"{table.title}; pruned {pr.ratio:.0%} of the channels: MACs {human_count(pr.macs_before)} -> {human_count(pr.macs_after)} "
                           f"({pr.macs_after / pr.macs_before - 1:+.0%}), parameters {human_count(pr.params_before)} -> {human_count(pr.params_after)}, "
                           f"torch {metric_name} {pr.metric_before:.4f} -> {pr.metric_after:.4f} after {pr.finetune_epochs} fine-tuning epochs")
    table.add_row("torch", "fp32", "fp32", "-", _fmt(ref.metric, ".4f"), "", "", "", _fmt(ref.latency_ms, ".2f"), said)
    aware = []
    for a in manifest.artifacts:
        status = Text("ok", "green") if a.ok else Text.assemble(("FAILED", "bold red"), " ", a.error or "")
        aa, latency = a.accuracy_aware, _fmt(a.latency_ms, ".2f")
        if aa is not None:
            changed = "" if aa.all_int8_changed is None else f" ({aa.all_int8_changed:.1%} of predictions changed)"
            aware.append(f"{a.format} {_fmt(aa.all_int8_metric, '.4g')}{changed}")
            if aa.all_int8_latency_ms is not None:
                latency = f"{latency} (all int8 {aa.all_int8_latency_ms:.2f})"
        kept = None if aa is None or not aa.kept_float else f"{len(aa.kept_float)}/{aa.candidates} layers float, {_fmt(a.int8_fraction, '.0%')} 8-bit"
        table.add_row(
            escape(a.format), " ".join(filter(None, (a.precision, a.int8_scheme, kept))), a.precision_ran or "-", human_bytes(a.bytes), _fmt(a.metric, ".4f"),
            _delta(a.metric_delta, ref.metric_name), _fmt(a.agreement, ".3f"), _fmt(a.max_abs_diff, ".1e"), latency, status,
        )
    if aware:
        aa = next(a.accuracy_aware for a in manifest.artifacts if a.accuracy_aware is not None)
        table.caption = Text(f"{table.caption}\n--max-drop {aa.max_drop:g}, decided on the {aa.selection}: torch {aa.torch_metric:.4g}, "
                             f"full int8 {', '.join(aware)}; layers stay float only where full int8 lost more"
                             f"{' (or changed a larger share of the predictions)' if aa.all_int8_changed is not None else ''}. "
                             f"The {metric_name} column is the held-out test split's")
    if manifest.qat is not None:
        q = manifest.qat
        table.caption = Text(f"{table.caption}\n--qat: int8 rows are the model fine-tuned {q.epochs} epochs under simulated int8 (distilled from "
                             f"the trained model, the torch row): {metric_name} {q.int8_simulated:.4g} simulated in torch"
                             f"{f'; weights within 7 bits ({SATURATES})' if q.weight_bits == 7 else ''}")
    bound = manifest.int8_bound
    if bound is not None:
        held = f"at most {_delta(bound.metric_drop, ref.metric_name).lstrip('+')} of {metric_name} lost" if bound.metric_drop is not None \
            else f"mean cosine to torch's outputs at least {bound.min_cosine:g}"
        table.caption = Text(f"{table.caption}\nint8 held to {held} ({bound.how})")
    notes = sorted({f"{a.format}: {note}" for a in manifest.artifacts for note in a.notes})
    if notes:
        table.caption = Text(f"{table.caption}\n" + "\n".join(notes))
    return table


def _delta(delta: float | None, metric_name: str | None) -> str:
    """A metric's change in its own units: accuracy in points, the others as they are."""
    if delta is None:
        return "-"
    measure = METRICS.get(metric_name)
    return measure.say_change(delta) if measure is not None else f"{delta:+.2g}"


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` marker lines replaced by ``body``:
    how the benchmark scripts write their generated tables into the README."""
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def update_per_model_results(results, readme, begin: str, end: str, render, measure=None, models=()) -> str:
    """A benchmark script's per-model results: ``results`` (a JSON list of entries, each with a
    "model") merged with ``measure(name)`` for each of ``models`` (none: only re-render), written
    back atomically, and rendered by ``render(entries)`` into ``readme`` between the markers.
    Returns what was rendered."""
    import json


    results = Path(results)
    stored = {e["model"]: e for e in json.loads(results.read_text())} if results.exists() else {}
    if models:
        for name in models:
            stored[name] = measure(name)
        results.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(results, json.dumps([stored[n] for n in sorted(stored)], indent=1) + "\n")
    body = render([stored[n] for n in sorted(stored)])
    text = Path(readme).read_text()
    if begin in text:
        write_text_atomic(Path(readme), replace_block(text, begin, end, body))
    return body


def duration(seconds: float) -> str:
    """Seconds as a person reads them: "42 s" or "2.5 min"."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _schemes(manifest: Manifest) -> str:
    """The card's int8 scheme, and each runtime that gets the other: "weights; openvino static"."""
    overrides = manifest.int8_scheme_by_format or {}
    return "; ".join([manifest.int8_scheme or "static", *(f"{f} {s}" for f, s in overrides.items())])


def zoo_markdown(manifests: list[Manifest]) -> str:
    """Model x format x precision: status, size and metric; a failed cell says why."""
    cases = [(a.format, a.precision) for a in manifests[0].artifacts] if manifests else []
    header = "| model | metric: torch (bar) | training | int8 scheme | " + " | ".join(f"{f} {p}" for f, p in cases) + " |"
    lines = [header, "|" + "---|" * (len(cases) + 4)]
    for m in manifests:
        ref = m.reference
        said_bar = f" ({'>=' if ref.bar.direction == 'at least' else '<='} {ref.bar.value:.4g})" if ref.bar else ""
        took = "not recorded" if m.training is None or m.training.seconds is None else f"{duration(m.training.seconds)}, {m.training.threads} thread{'' if m.training.threads == 1 else 's'}"
        row = [m.model, f"{ref.metric_name}: {_fmt(ref.metric, '.4g')}{said_bar}", took, _schemes(m)]
        for case in cases:
            a = m.artifact(*case)
            if a is None:
                row.append("not made")
            elif a.ok:
                row.append(f"ok, {human_bytes(a.bytes)}, {_fmt(a.metric, '.4g')}")
            else:
                row.append(f"FAILED: {a.error.replace('|', '/')}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ---- edgezoo bench's results ----------------------------------------------------------------------

def write_bench(report: BenchReport, out: Path, plots: bool = True) -> list[Path]:
    """bench.json, bench.md and the plots, each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.json", out / "bench.md"]
    write_text_atomic(out / "bench.json", report.to_json())
    write_text_atomic(out / "bench.md", bench_markdown(report))
    if plots:
        written += _plots(report, out)
    return written


def _ratio_text(r: Ratio | None) -> str:
    return "-" if r is None else f"{r.median:.2f}x ({r.low:.2f}-{r.high:.2f})"


def bench_rows(report: BenchReport) -> list[dict[str, str]]:
    """Each row's cells by column name (COLUMNS), as the terminal, bench.md and the README show them."""
    out = []
    for r in report.rows:
        lat = r.latency
        out.append({"artifact": r.label, "runtime": RUNTIME_LABELS.get(r.runtime, r.runtime), "device": r.device, "threads": str(r.threads),
                    "ran as": r.precision_ran or "-", "size": human_bytes(r.bytes),
                    "metric": _fmt(r.metric, ".4g") + (" *" if r.on_pareto_front else ""), "load s": _fmt(r.load_s, ".2f"),
                    "p50 ms": _fmt(lat and lat.p50_ms, ".3f") if r.estimated_ms is None else f"≈{r.estimated_ms:.3g}", "p90 ms": _fmt(lat and lat.p90_ms, ".3f"), "p99 ms": _fmt(lat and lat.p99_ms, ".3f"),
                    "per s": _fmt(r.throughput_per_s, ".1f"), "peak mem": human_bytes(r.peak_rss_growth_bytes),
                    "vs fp32": _ratio_text(r.vs_fp32), "vs torch": _ratio_text(r.vs_torch),
                    "status": _bench_status(r)})
    return out


def _bench_status(r) -> str:
    if r.status == "estimated":
        return f"estimated, not measured (plain roofline {r.roofline_ms:.3g} ms; fitted on {r.estimate_basis})"
    return "ok" if r.ok else f"{r.status.upper()}: {r.error}"


BENCH_COLUMNS = ["artifact", "runtime", "device", "threads", "ran as", "size", "metric", "load s", "p50 ms", "p90 ms", "p99 ms", "per s",
                 "peak mem", "vs fp32", "vs torch", "status"]
# The terminal's: one device column only when several were asked for, no throughput (bench.md has both).
TERMINAL_BENCH_COLUMNS = [c for c in BENCH_COLUMNS if c not in ("device", "per s")]


def bench_markdown(report: BenchReport) -> str:
    head = [f"# edgezoo bench: {report.model or ', '.join(report.sources)}", "",
            f"Host: {report.host.cpu} ({report.host.cpu_count} cores, {report.host.machine}). {report.rounds} interleaved rounds, "
            f"{report.seconds_per_row:g} s of calls per row; each row in its own process. Ratios: times faster than the named row, "
            "median over rounds (lowest-highest). metric: the file's "
            f"{report.metric_name or 'task metric'} on held-out data, from its export's check; * on the latency/metric Pareto front.", ""]
    lines = ["| " + " | ".join(BENCH_COLUMNS) + " |", "|" + "---|" * len(BENCH_COLUMNS)]
    lines += ["| " + " | ".join(row[c].replace("|", "/") for c in BENCH_COLUMNS) + " |" for row in bench_rows(report)]
    return "\n".join(head + lines) + "\n"


def _plots(report: BenchReport, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    top = max(report.threads)
    scored = [r for r in report.rows if r.ok and r.latency and r.metric is not None and r.threads == top]
    if scored:
        # Points are numbered and named in the legend: files of one model often share a metric,
        # and names written beside the points would overprint one another.
        fig, ax = plt.subplots(figsize=(10, 5))
        scored.sort(key=lambda r: r.latency.p50_ms)
        for i, r in enumerate(scored, 1):
            ax.scatter(r.latency.p50_ms, r.metric, marker="o" if r.on_pareto_front else "x", color="tab:red" if r.on_pareto_front else "tab:gray",
                       label=f"{i}: {r.key}{' (Pareto front)' if r.on_pareto_front else ''}")
            ax.annotate(str(i), (r.latency.p50_ms, r.metric), fontsize=7, xytext=(2, 4 + 7 * (i % 3)), textcoords="offset points")
        front = [r for r in scored if r.on_pareto_front]
        if len(front) > 1:
            ax.plot([r.latency.p50_ms for r in front], [r.metric for r in front], color="tab:red", lw=1)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_xscale("log")
        ax.set_xlabel(f"p50 latency, ms ({top} threads, log scale)")
        ax.set_ylabel(f"{report.metric_name} ({'higher' if report.higher_is_better else 'lower'} is better)")
        ax.set_title(f"{report.model}: latency against {report.metric_name} on {report.host.cpu}", fontsize=9)
        made.append(_save(fig, out / "bench-latency-vs-metric.png"))
        plt.close(fig)
    if len(report.threads) > 1:
        fig, ax = plt.subplots(figsize=(10, 5))
        series: dict[str, list] = {}
        for r in report.rows:
            if r.ok and r.latency:
                series.setdefault(f"{r.key} ({r.device})", []).append((r.threads, r.latency.p50_ms))
        for name, points in series.items():
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xticks(report.threads)
        ax.set_yscale("log")
        ax.set_xlabel("threads")
        ax.set_ylabel("p50 latency, ms (log scale)")
        ax.set_title(f"{report.model or 'bench'}: latency against threads on {report.host.cpu}", fontsize=9)
        if series:  # every row failed or was estimated: nothing to name
            ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
        made.append(_save(fig, out / "bench-latency-vs-threads.png"))
        plt.close(fig)
    return made


def _save(fig, path: Path) -> Path:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    return path


def bench_table(report: BenchReport) -> Table:
    """`edgezoo bench`'s rows in the terminal (edgezoo.bench.BenchReport)."""
    columns = TERMINAL_BENCH_COLUMNS if len(report.devices) == 1 else ["device", *TERMINAL_BENCH_COLUMNS]
    title = f"{report.model or ', '.join(report.sources)}: {report.rounds} interleaved rounds on {report.host.cpu} ({report.host.cpu_count} cores)"
    table = Table(title=Text(title), title_justify="left",
                  caption=Text("vs fp32 / vs torch: times faster than that row, median over rounds (lowest-highest); * on the Pareto front"))
    for col in columns:
        table.add_column(col, justify="left" if col in ("artifact", "runtime", "device", "ran as", "status") else "right", no_wrap=col != "status")
    for row in bench_rows(report):
        status = row["status"]
        table.add_row(*(escape(row[c]) for c in columns[:-1]), Text(status, "green" if status == "ok" else "yellow" if status.startswith("estimated") else "bold red"))
    return table


# ---- edgezoo verify's results ---------------------------------------------------------------------

VERIFY_COLUMNS = ["artifact", "runtime", "core", "inputs", "samples", "max |Δ|", "relative", "steps", "bound", "status"]


def verify_rows(report: VerifyReport) -> list[dict[str, str]]:
    from .devices.arm64 import CORES

    out = []
    for r in report.rows:
        core = CORES.get(r.core)
        out.append({"artifact": r.label, "runtime": RUNTIME_LABELS.get(r.runtime, r.runtime),
                    "core": r.core + (f" ({core.found_in.split(',')[0]})" if core else ""), "inputs": ", ".join(r.inputs) or "-",
                    "samples": str(r.samples), "max |Δ|": _fmt(r.max_abs_diff, ".2g"), "relative": _fmt(r.max_rel_diff, ".2g"),
                    "steps": _fmt(r.max_units, ".3g"), "bound": r.bound or "-",
                    "status": "ok" if r.ok else f"{r.status.upper()}: {r.error}"})
    return out


def _verify_caption(report: VerifyReport) -> str:
    return (f"Each file run by the aarch64 builds of its runtime ({', '.join(f'{k} {v}' for k, v in report.guest_versions.items())}) under "
            f"{report.emulator}, against the same file on this host ({report.host.cpu}), on {report.samples} seeded input sets. "
            "relative: max |Δ| over the largest output value (float outputs); steps: max |Δ| in quantization steps (quantized outputs). "
            "Emulated: says nothing of a device's latency.")


def verify_markdown(report: VerifyReport) -> str:
    head = [f"# edgezoo verify --arch {report.arch}: {report.model or ', '.join(report.sources)}", "", _verify_caption(report), ""]
    lines = ["| " + " | ".join(VERIFY_COLUMNS) + " |", "|" + "---|" * len(VERIFY_COLUMNS)]
    lines += ["| " + " | ".join(row[c].replace("|", "/") for c in VERIFY_COLUMNS) + " |" for row in verify_rows(report)]
    return "\n".join(head + lines) + "\n"


def write_verify(report: VerifyReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "verify.json", report.to_json())
    write_text_atomic(out / "verify.md", verify_markdown(report))
    return [out / "verify.json", out / "verify.md"]


def verify_table(report: VerifyReport) -> Table:
    table = Table(title=Text(f"{report.model or ', '.join(report.sources)} on emulated {report.arch}"), title_justify="left",
                  caption=Text(_verify_caption(report)))
    columns = [c for c in VERIFY_COLUMNS if c != "inputs"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("artifact", "runtime", "core", "bound", "status") else "right", no_wrap=col != "status")
    for row in verify_rows(report):
        status = row["status"]
        table.add_row(*(escape(row[c]) for c in columns[:-1]), Text(status, "green" if status == "ok" else "bold red"))
    return table
