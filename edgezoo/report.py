"""Tables from manifests: the terminal table after an export, and markdown for the README."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .manifest import Manifest
from .metrics import METRICS


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


def export_table(manifest: Manifest) -> Table:
    ref = manifest.reference
    metric_name = ref.metric_name or "metric"
    table = Table(title=Text(f"{manifest.model}: {ref.eval_source}, {manifest.threads} threads on this host"), title_justify="left")
    for col, justify in (("format", "left"), ("precision", "left"), ("ran as", "left"), ("size", "right"), (metric_name, "right"),
                         ("Δ vs torch", "right"), ("agree", "right"), ("max|Δ|", "right"), ("latency ms", "right"), ("status", "left")):
        table.add_column(col, justify=justify)
    bar = ref.bar
    said = Text("reference") if bar is None or bar.met else Text.assemble(("MISSES THE BAR", "bold red"), f" ({bar.direction} {bar.value:.4g})")
    table.add_row("torch", "fp32", "fp32", "-", _fmt(ref.metric, ".4f"), "", "", "", _fmt(ref.latency_ms, ".2f"), said)
    for a in manifest.artifacts:
        status = Text("ok", "green") if a.ok else Text.assemble(("FAILED", "bold red"), " ", a.error or "")
        table.add_row(
            escape(a.format), " ".join(filter(None, (a.precision, a.int8_scheme))), a.precision_ran or "-", human_bytes(a.bytes), _fmt(a.metric, ".4f"),
            _delta(a.metric_delta, ref.metric_name), _fmt(a.agreement, ".3f"), _fmt(a.max_abs_diff, ".1e"), _fmt(a.latency_ms, ".2f"), status,
        )
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
        took = "not recorded" if m.training is None or m.training.seconds is None else f"{duration(m.training.seconds)}, {m.training.threads} threads"
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
