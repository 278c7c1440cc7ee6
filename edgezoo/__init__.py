"""edgezoo: train, export (ONNX, TFLite, OpenVINO), int8-quantize and check classic models for the edge.

    import edgezoo
    result = edgezoo.export("mobilenet", int8=True)   # what `edgezoo export --model mobilenet --int8` does
"""

import sys
import types

__version__ = "0.1.0"

# OpenVINO's converter and NNCF send usage events to Google Analytics from a forked process
# unless the user opted out in a file under their home (and the fork in a process that imported
# JAX, as litert-torch does, prints a deadlock warning). Both fall back to their own no-op stubs
# when `openvino_telemetry` cannot be imported: a deployment tool does not phone home for its users.
sys.modules.setdefault("openvino_telemetry", None)


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
