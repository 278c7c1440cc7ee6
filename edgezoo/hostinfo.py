"""What machine and which package versions a figure was measured with. Imports no torch."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from .manifest import Host


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first /proc/cpuinfo line that starts with one of ``keys`` (None if none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(keys):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def host() -> Host:
    cpu = _cpuinfo("model name") or platform.processor() or ""
    isa = vector_isa()
    return Host(platform.machine(), platform.system(), f"{cpu} ({isa})" if cpu and isa else cpu, os.cpu_count())


def vector_isa() -> str:
    """The vector extensions that decide this CPU's speed and its kernels' summation order, e.g.
    "AVX-512, VNNI" or "AVX2" (empty where /proc/cpuinfo says nothing). The model name alone does
    not tell: the same "AMD EPYC" ran the suite in 11 minutes with AVX-512 exposed and in 20 with
    AVX2 only, and torch trained other models on each."""
    flags = cpu_flags()
    if not flags:
        return ""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return ", ".join(["NEON"] + [name for flag, name in (("asimddp", "dot product"), ("i8mm", "i8mm"), ("sve", "SVE")) if flag in flags])
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "AVX" if "avx" in flags else "SSE"
    extras = [name for names, name in (({"avx512_vnni", "avx_vnni"}, "VNNI"), ({"avx512_bf16"}, "BF16"), ({"amx_int8"}, "AMX")) if flags & names]
    return ", ".join([widest, *extras])


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (x86's flags, ARM's Features; empty where there is none)."""
    return set((_cpuinfo("flags", "Features") or "").split())


# Why a file keeps its weights within 7 bits where int8_sums_saturate(): said the same by every quantizer and report.
SATURATES = "this x86 CPU has no VNNI: its uint8 x int8 sums saturate at 16 bits"


def int8_sums_saturate() -> bool:
    """Whether this CPU's uint8 x int8 kernels add pairs of products in 16 bits (x86 with AVX2 or
    AVX-512 but no VNNI: vpmaddubsw), where two large products overflow: ONNX Runtime's U8S8 and
    OpenVINO's int8 then saturate unless the weights keep to 7 bits. Measured on a 2-core AMD EPYC
    with AVX2 only: the small MobileNetV2's static int8 in ONNX Runtime 0.928 against 0.967 in
    float; 0.969 with 7-bit weights. ARM's dot-product and widening kernels do not saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    flags = cpu_flags()
    return not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


def versions(packages) -> dict[str, str | None]:
    """Python's version and each installed distribution's (None where it is not installed)."""
    out = {"python": platform.python_version()}
    for name in dict.fromkeys(packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
