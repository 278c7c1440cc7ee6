"""The README's device estimates: MobileNetV2-1.0-224 estimated on each profiled device beside its
published latency, with the estimator's leave-one-out error over the calibration points.

    .venv/bin/python benchmarks/estimates.py --references   # re-measure the reference graphs' costs, then render
    .venv/bin/python benchmarks/estimates.py --host         # measure this machine into devices/profiles/devhost.toml
    .venv/bin/python benchmarks/estimates.py                # render from devices/profiles/

The calibration models (MobileNet V1, V3 Large, V3 Small) and the checked one (MobileNetV2) are
built from devices/reference_models.py at ImageNet's shape, exported to ONNX, and their graphs'
costs (MACs, bytes moved) stored in devices/profiles/reference_costs.json; the estimator fits each
device's efficiencies on the calibration models' published figures only.

``--host`` makes the one profile whose figures are measured rather than published: this machine's.
The same four architectures are exported as edgezoo exports (ONNX and TFLite, fp32 and static int8,
random calibration: latency does not depend on the values) and timed by ``edgezoo bench`` (a process
per file, runtime and thread count, interleaved rounds). MobileNetV2 is then predicted from the
other three here exactly as on the published devices, and checked against its own measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- estimates:begin (benchmarks/estimates.py writes this) -->", "<!-- estimates:end -->"


def measure_references() -> None:
    import torch

    from edgezoo.devices.estimate import REFERENCE_COSTS, graph_costs
    from edgezoo.devices.reference_models import CALIBRATION_MODELS, CHECK_MODELS, build

    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CALIBRATION_MODELS + CHECK_MODELS:
            path = Path(tmp) / f"{name}.onnx"
            torch.onnx.export(build(name), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)
            models[name] = {p: [[o.kind, o.macs, o.bytes] for o in graph_costs(path, p)] for p in ("fp32", "int8")}
            print(name, f"{sum(o[1] for o in models[name]['fp32']) / 1e6:.0f} M MACs", flush=True)
    REFERENCE_COSTS.write_text(json.dumps({"input": "1x3x224x224, 1000 classes", "op": ["kind", "macs", "bytes"], "models": models}) + "\n")


HOST_PROFILE = "devhost"
HOST_RUNTIMES = {"onnx": "onnxruntime", "tflite": "litert"}


def _cpuinfo() -> dict:
    info = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            info.setdefault(key, value)
    return info


def _memory_gbs() -> float:
    """Copy bandwidth of a 512 MiB array (read + write), best of five: what one pass over memory costs."""
    import time

    import numpy as np

    a = np.ones(64 * 2**20, np.float64)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def _reference_files(folder: Path) -> dict[Path, tuple[str, str]]:
    """The reference architectures as edgezoo exports them: {file: (model, precision)}."""
    import numpy as np
    import torch

    from edgezoo.devices.reference_models import CALIBRATION_MODELS, CHECK_MODELS, build
    from edgezoo.export import FORMATS
    from edgezoo.export.base import ExportContext
    from edgezoo.quantize.calibration import CalibrationSet

    files = {}
    for name in CALIBRATION_MODELS + CHECK_MODELS:
        rng = np.random.default_rng(0)
        samples = [(rng.random((1, 3, 224, 224), dtype=np.float32),) for _ in range(8)]
        work = folder / f"{name}-work"
        work.mkdir()
        ctx = ExportContext(model=build(name), example_inputs=(torch.from_numpy(samples[0][0]),), input_names=["image"], output_names=["logits"],
                            calibration=CalibrationSet(samples, "uniform random (latency only)"), workdir=work)
        for fmt in (FORMATS["onnx"], FORMATS["tflite"]):
            fp32, int8 = folder / fmt.file_name(name, "fp32"), folder / fmt.file_name(name, "int8")
            fmt.export_fp32(ctx, fp32)
            fmt.quantize_int8(ctx, fp32, int8, "static")
            files[fp32], files[int8] = (name, "fp32"), (name, "int8")
        print(name, "exported", flush=True)
    return files


def measure_host(threads: tuple[int, ...] = (1, 2)) -> Path:
    """This machine as a device profile: its specification from /proc/cpuinfo, its memory bandwidth
    measured, and the reference architectures' latencies measured by edgezoo bench."""
    import datetime
    import os

    from edgezoo.bench import bench
    from edgezoo.devices.estimate import PROFILES_DIR
    from edgezoo.devices.reference_models import CHECK_MODELS

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    cores = len(os.sched_getaffinity(0))
    clock = float(info.get("cpu MHz", "0")) / 1000
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    vnni = bool({"avx512_vnni", "avx_vnni"} & flags)
    simd = ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16") if f in flags)
    with tempfile.TemporaryDirectory() as tmp:
        files = _reference_files(Path(tmp))
        report = bench(list(files), threads=list(threads), runtimes=list(HOST_RUNTIMES.values()), rounds=3, seconds_per_row=1.0)
    measured = []
    for row in report.rows:
        if row.status != "ok" or row.latency is None:
            raise SystemExit(f"{row.path} in {row.runtime} at {row.threads} threads: {row.error}")
        model, precision = files[Path(row.path)]
        measured.append((model, row.runtime, precision, row.threads, row.latency.p50_ms))
    # Amdahl's serial fraction from the calibration models' own 1- and 2-thread pairs.
    by_key = {(m, r, p, t): ms for m, r, p, t, ms in measured}
    pairs = [by_key[m, r, p, 2] / by_key[m, r, p, 1] for m, r, p, t, _ in measured if t == 1 and (m, r, p, 2) in by_key and m not in CHECK_MODELS]
    serial = min(max(sum(2 * q - 1 for q in pairs) / len(pairs), 0.0), 1.0) if pairs else 0.1
    when = datetime.date.today().isoformat()
    lines = [
        "# This machine, as a device profile: written by benchmarks/estimates.py --host (not by hand).",
        f'name = "{HOST_PROFILE}"',
        f'title = "development host: {info.get("model name", "unknown CPU")}, {cores} cores"',
        f'core = "{info.get("model name", "unknown")}"',
        "# Figures measured on this machine, not published: the estimator's error is shown, not bounded.",
        "measured = true",
        f"cores = {cores}",
        f"clock_ghz = {clock:.2f}",
        f'simd = "{simd}"',
        "# Peak per core: SIMD lanes x 2 FMA pipes; int8 4x fp32 with VNNI's 4-way dot product, else 2x.",
        f"fp32_gmacs_per_core = {clock * lanes * 2:.1f}",
        f"int8_gmacs_per_core = {clock * lanes * 2 * (4 if vnni else 2):.1f}",
        f"memory_gbs = {_memory_gbs():.1f}",
        f"runtimes = {sorted(set(HOST_RUNTIMES.values()))!r}".replace("'", '"'),
        "# Fitted on the calibration models' 1- and 2-thread latencies measured here.",
        f"serial_fraction = {serial:.3f}",
        "",
        "[sources]",
        'spec = "/proc/cpuinfo (model name, cpu MHz, flags) and the CPUs this process may run on; memory_gbs: numpy copy of 512 MiB, best of 5"',
        f'measured = "edgezoo bench on this machine, {when}: p50 of 3 interleaved rounds, a process per file, runtime and thread count; files exported as edgezoo exports them (static int8)"',
    ]
    for model, runtime, precision, t, ms in sorted(measured):
        section = "check" if model in CHECK_MODELS else "calibration"
        lines += ["", f"[[{section}]]", f'model = "{model}"', f'runtime = "{runtime}"', f'precision = "{precision}"', f"threads = {t}",
                  f"latency_ms = {ms:.3f}", 'source = "measured"']
    path = PROFILES_DIR / f"{HOST_PROFILE}.toml"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
    return path


def render() -> str:
    from edgezoo.devices import estimate as est

    refs, ops = est.reference_costs(), est.reference_ops()
    lines = ["| device | runtime | precision | threads | published ms | estimate ms | error | plain roofline ms | fitted on | leave-one-out error (points) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in est.profile_names():
        profile = est.load_profile(name)
        for check in profile.get("check", []):
            u, basis = est.fit(profile, check["runtime"], check["precision"])
            cost = refs[check["model"]][check["precision"]]
            guess = None if u is None else est.predict(profile, check["precision"], cost, u, check["threads"])
            roof = est.roofline_ms(profile, check["precision"], ops[check["model"]][check["precision"]], check["threads"])
            loo = est.leave_one_out(profile, check["runtime"], check["precision"])
            loo_text = (f"mean {sum(abs(p['error']) for p in loo) / len(loo):.0%}, max {max(abs(p['error']) for p in loo):.0%} ({len(loo)})"
                        if loo else "none: too few points")
            said = "-" if guess is None else f"{guess:.1f}"
            error = "-" if guess is None else f"{guess / check['latency_ms'] - 1:+.0%}"
            lines.append(f"| {profile['title']} | {check['runtime']} | {check['precision']} | {check['threads']} | {check['latency_ms']} | {said} | "
                         f"{error} | {roof:.1f} | {basis} | {loo_text} |")
    return "\n".join(lines) + ("\n\nMobileNetV2-1.0-224 (1000 classes) estimated from its graph's costs and each device's profile "
                               "(devices/profiles/*.toml, every figure with its source); published: XNNPACK's end-to-end benchmarks (Raspberry Pi 4, Pixel 3a) and ncnn's benchncnn (Raspberry Pi 5, Jetson Nano; the minimum of its runs). "
                               f"The development host's row ({HOST_PROFILE}) is the estimator checked where the answer can be measured: "
                               "its calibration and check figures are this machine's own, measured by `benchmarks/estimates.py --host` "
                               "on the files edgezoo exports (so its 'published ms' column is measured). "
                               "The plain roofline takes the whole graph at the cores' peak MACs or full bandwidth.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", action="store_true", help="re-measure the reference graphs' costs first")
    parser.add_argument("--host", action="store_true", help=f"measure this machine into devices/profiles/{HOST_PROFILE}.toml first")
    args = parser.parse_args()
    if args.references:
        measure_references()
    if args.host:
        measure_host()
    from edgezoo.report import replace_block
    from edgezoo.fileio import write_text_atomic

    table = render()
    write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, table))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
