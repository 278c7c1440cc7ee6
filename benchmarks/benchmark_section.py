"""The README's whole benchmark section, regenerated in one command, each part by its own script:

    .venv/bin/python benchmarks/benchmark_section.py            # measure everything on this host, then render
    .venv/bin/python benchmarks/benchmark_section.py --render   # only re-render every block from results/
    .venv/bin/python benchmarks/benchmark_section.py --only flagship_bench,estimates

In order (each a script of its own, run in its own process, so that one part's imports and thread
pools never skew the next part's figures):

1. spine.py: the flagship's export time and its artifacts' latency ratios;
2. isolation.py: what running the converters in child processes costs;
3. flagship_bench.py: `edgezoo bench` on the flagship (torch eager; fp32 and int8 in every runtime at
   1 and 2 threads, interleaved; the harness's cost against a bare loop; the two plots);
4. arm64.py: every zoo model's .onnx and .tflite files under QEMU as Cortex-A72 and A76 (skipped,
   saying so, where user-mode QEMU is not installed);
5. estimates.py --host: this machine measured as a device profile, then every profiled device's
   MobileNetV2 estimate beside its published (or, for this host, measured) latency.

A part that fails stops the run with its exit code: the blocks already rewritten are kept, and the
failed part's block is left as it was.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, its arguments to measure, its arguments to only re-render)
PARTS = {
    "spine": ([], ["--render"]),
    "isolation": ([], ["--render"]),
    "flagship_bench": ([], ["--render"]),
    "arm64": ([], ["--render"]),
    "estimates": (["--host"], []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true", help="re-render every block from the stored results, measuring nothing")
    parser.add_argument("--only", default=None, help=f"comma-separated parts (default all: {','.join(PARTS)})")
    args = parser.parse_args()
    parts = list(PARTS) if args.only is None else [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"--only {','.join(unknown)}: pass some of {', '.join(PARTS)}", file=sys.stderr)
        return 2
    for part in parts:
        measure, render = PARTS[part]
        extra = render if args.render else measure
        if part == "arm64" and not args.render and shutil.which("qemu-aarch64-static") is None:
            print("arm64: skipped, user-mode QEMU is not installed (apt-get install qemu-user-static); its block re-rendered from results/")
            extra = render
        started = time.perf_counter()
        print(f"== {part} {' '.join(extra)}", flush=True)
        code = subprocess.run([sys.executable, str(HERE / f"{part}.py"), *extra]).returncode
        if code != 0:
            print(f"{part} failed (exit {code}): the blocks before it are rewritten, its own is unchanged", file=sys.stderr)
            return code
        print(f"== {part}: {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
