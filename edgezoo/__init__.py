"""edgezoo: train, export (ONNX, TFLite, OpenVINO), int8-quantize and check classic models for the edge.

    import edgezoo
    result = edgezoo.export("mobilenet", int8=True)   # what `edgezoo export --model mobilenet --int8` does
"""

import os
import sys
import types

__version__ = "0.1.0"

# OpenVINO's converter and NNCF send usage events to Google Analytics from a forked process
# unless the user opted out in a file under their home (and the fork in a process that imported
# JAX, as litert-torch does, prints a deadlock warning). Both fall back to their own no-op stubs
# when `openvino_telemetry` cannot be imported: a deployment tool does not phone home for its users.
sys.modules.setdefault("openvino_telemetry", None)

# EDGEZOO_SHARED_CPU=1: this machine's cores are shared (a CI runner, a VM, other jobs beside
# edgezoo), so the runtimes' idle threads wait asleep instead of spinning: torch's OpenMP pool
# (OMP_WAIT_POLICY=PASSIVE, read when torch loads, and inherited by the child processes edgezoo
# starts) and ONNX Runtime's (devices/runners.py). Spinning buys latency on an idle machine and
# takes cores from whatever runs beside it. Measured on a 2-core VM: a 2-thread loop of small
# torch and ONNX Runtime calls beside a one-thread training did 2.5x the calls and the training
# ran 1.9x faster; but in the test suite (README) two-thread torch training and the first ONNX
# Runtime runs of convolutional nets slowed as much as the background training gained, so the
# suite leaves it unset. A trade to measure per machine, not a default.
if os.environ.get("EDGEZOO_SHARED_CPU", "") not in ("", "0"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _ExportPackage(types.ModuleType):
    """``edgezoo.export`` is the exporters' package (``edgezoo.export.FORMATS``) and the entry point
    ``edgezoo.export("mobilenet", int8=True)`` alike: the package is callable."""

    def __call__(self, *args, **kwargs):
        from .pipeline import export

        return export(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # Importing the subpackage binds it here as an attribute, over any plain function of the
        # same name: make the subpackage itself the callable instead.
        if name == "export" and isinstance(value, types.ModuleType):
            value.__class__ = _ExportPackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "export":  # first use: import the subpackage (which _Package makes callable)
        import importlib

        return importlib.import_module(f"{__name__}.export")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
