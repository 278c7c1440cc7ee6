"""`edgezoo verify --arch arm64`: every .onnx and .tflite artifact loaded and run by the real
aarch64 build of its runtime (onnxruntime, ai-edge-litert with XNNPACK) in an aarch64 Python under
user-mode QEMU, as each chosen Arm core, on the same seeded inputs as on this host; its outputs are
held to this host's: float outputs within 1e-4 relative, quantized outputs within one step.

Both sides run the same standalone script (edgezoo/devices/portable.py, numpy and the runtime
only), each in its own process: a runtime that crashes or hangs fails its row, not the run. The
host's outputs come first; each core then runs every file that ran here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import progress
from .bench import Target, discover
from .errors import BadInput, one_line
from .devices.jobs import run_job
from .hostinfo import int8_sums_saturate
from .verify_results import FP32_REL_BOUND, INT8_UNIT_BOUND, VerifyReport, VerifyRow

ARCHS = ("arm64",)
RUNTIME_BY_SUFFIX = {".onnx": "onnxruntime", ".tflite": "litert"}
# Ops that move or reshape values without changing them: an output behind them still has the
# quantization step of the DequantizeLinear before them.
_VALUE_PRESERVING = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"}


def verify(paths: list[str | Path], arch: str = "arm64", cores: list[str] | None = None, samples: int = 3,
           input_shapes: list[list[int]] | None = None, timeout: float = 600.0) -> VerifyReport:
    from .devices import arm64
    from .hostinfo import host, versions

    if arch not in ARCHS:
        raise BadInput(f"--arch {arch!r}: edgezoo verify emulates {', '.join(ARCHS)} (aarch64)")
    cores = arm64.check_cores(list(cores or arm64.DEFAULT_CORES))
    if samples < 1:
        raise BadInput(f"--samples {samples}: pass at least 1 (default 3)")
    started = time.perf_counter()
    found, ctx = discover(paths)
    targets = [t for t in found if t.path is not None and t.path.suffix in RUNTIME_BY_SUFFIX]
    if not targets:
        raise BadInput(f"nothing to verify in {', '.join(ctx.sources)}: edgezoo verify runs .onnx and .tflite files "
                       "(OpenVINO IR is not checked on arm64)")
    rows: list[VerifyRow] = []
    with progress.bar(f"verify {arch} {ctx.model or ', '.join(ctx.sources)}", total=len(targets) * (1 + len(cores))) as advance:
        guest = arm64.guest(say=lambda text: advance(0, text))
        with tempfile.TemporaryDirectory(prefix="edgezoo-verify-") as tmp:
            work = Path(tmp)
            items = [_item(i, t, samples, input_shapes, work / "x86") for i, t in enumerate(targets)]
            here, _ = run_job([sys.executable, "-s", _script()], dict(os.environ), items, work / "x86", timeout, advance)
            guest_versions: dict = {}
            for core in cores:
                todo = [{**item, "feeds": item["out"], "out": str(work / core / f"{item['id']}.npz")} for item in items
                        if here[item["id"]]["status"] == "ok"]
                advance(len(items) - len(todo))
                there, header = run_job(guest.command(core, _script()), guest.env(), todo, work / core, timeout, advance) if todo else ({}, None)
                guest_versions = guest_versions or (header or {}).get("versions", {})
                for item, target in zip(items, targets):
                    rows.append(_row(target, item, core, here[item["id"]], there.get(item["id"])))
    return VerifyReport(ctx.sources, ctx.model, arch, cores, samples, host(), versions(["edgezoo", "numpy", "onnxruntime", "ai-edge-litert"]),
                        guest_versions, _qemu_version(guest.qemu), round(time.perf_counter() - started, 1), rows)


def _script() -> str:
    from .devices import portable

    return str(Path(portable.__file__).resolve())


def _item(i: int, target: Target, samples: int, input_shapes, folder: Path) -> dict:
    return {"id": f"f{i}", "path": str(target.path), "runtime": RUNTIME_BY_SUFFIX[target.path.suffix], "samples": samples,
            "inputs": target.declared, "shapes": input_shapes, "feeds": None, "out": str(folder / f"f{i}.npz")}


def _row(target: Target, item: dict, core: str, here: dict, there: dict | None) -> VerifyRow:
    row = VerifyRow(target.label, target.format, target.precision, item["runtime"], core, "failed", target.shown_path, target.sha256, item["samples"])
    if here["status"] != "ok":
        row.error = f"does not run on this host either: {one_line(here['error'])}"
        return row
    if there is None or there["status"] != "ok":
        row.error = one_line(there["error"]) if there else "not run"
        return row
    with np.load(item["out"]) as x86, np.load(there["out"]) as arm:
        row.inputs = [f"{'x'.join(map(str, x86[k].shape))} {x86[k].dtype.name}" for k in sorted(x86.keys()) if k.startswith("s0_i")]
        units = _units(target, here["output_units"])
        _compare(row, x86, arm, units)
    if row.status == "mismatch" and target.precision == "int8" and item["runtime"] == "onnxruntime" and int8_sums_saturate():
        row.error += (" (this host's x86 CPU has no VNNI: ONNX Runtime's uint8 x int8 kernels add products in 16 bits and"
                      " saturate here, not on arm64; a file with 8-bit weights and int8 activations can differ for that alone)")
    return row


def _units(target: Target, reported: list) -> list:
    """Each output's quantization step: as the runtime reports it (TFLite), or, for an ONNX file,
    the scale of the DequantizeLinear that makes it."""
    if target.path.suffix != ".onnx":
        return reported
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(target.path), load_external_data=False).graph
    consts = {t.name: t for t in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            consts.setdefault(node.output[0], node.attribute[0].t)
    units = []
    for out in graph.output:
        node = made_by.get(out.name)
        while node is not None and node.op_type in _VALUE_PRESERVING:
            node = made_by.get(node.input[0])
        unit = None
        if node is not None and node.op_type == "DequantizeLinear" and node.input[1] in consts:
            scale = numpy_helper.to_array(consts[node.input[1]])
            unit = float(scale.max()) if scale.size else None
        units.append(unit)
    return units


def _compare(row: VerifyRow, x86, arm, units: list) -> None:
    """Every sample's every output, arm64 against this host, judged by the bundles' own
    comparison (devices/portable.compare): one definition of what agreeing means."""
    from .devices import portable

    keys = sorted(k for k in x86.keys() if "_o" in k)
    bad = next((k for k in keys if k not in arm or arm[k].shape != x86[k].shape), None)
    if bad is not None:  # named by sample and output, which the flat comparison below cannot
        row.status, row.error = "mismatch", f"output {bad}: shape {arm[bad].shape if bad in arm else None} on arm64, {x86[bad].shape} here"
        return
    said = portable.compare([x86[k] for k in keys], [arm[k] for k in keys], [units[int(k.split("_o")[1])] for k in keys])
    row.max_abs_diff = said["max_abs"]
    row.max_units = said["max_units"] if said["quantized"] else None
    row.max_rel_diff = said["max_rel"] if said["float"] else None
    row.bound = " and ".join(b for b, kind in ((f"{INT8_UNIT_BOUND:g} quantization step", "quantized"), (f"{FP32_REL_BOUND:g} relative", "float"))
                             if said[kind])
    row.status = "ok" if said["ok"] else "mismatch"
    if not said["ok"]:
        row.error = "outputs differ from this host's beyond " + row.bound


def _qemu_version(qemu: str) -> str:
    done = subprocess.run([qemu, "--version"], capture_output=True, text=True)
    return (done.stdout.strip().splitlines() or ["unknown"])[0]
