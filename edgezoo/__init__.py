"""edgezoo: train, export (ONNX, TFLite, OpenVINO), int8-quantize and check classic models for the edge.

    import edgezoo
    result = edgezoo.export("mobilenet", int8=True)   # what `edgezoo export --model mobilenet --int8` does
"""

import sys

__version__ = "0.1.0"

# OpenVINO's converter and NNCF send usage events to Google Analytics from a forked process
# unless the user opted out in a file under their home (and the fork in a process that imported
# JAX, as litert-torch does, prints a deadlock warning). Both fall back to their own no-op stubs
# when `openvino_telemetry` cannot be imported: a deployment tool does not phone home for its users.
sys.modules.setdefault("openvino_telemetry", None)


def export(*args, **kwargs):
    from .pipeline import export as _export

    return _export(*args, **kwargs)


export.__doc__ = "See edgezoo.pipeline.export."
