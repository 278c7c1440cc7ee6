"""edgezoo: train, export (ONNX, TFLite, OpenVINO), int8-quantize and check classic models for the edge.

    import edgezoo
    result = edgezoo.export("mobilenet", int8=True)   # what `edgezoo export --model mobilenet --int8` does
"""

__version__ = "0.1.0"


def export(*args, **kwargs):
    from .pipeline import export as _export

    return _export(*args, **kwargs)


export.__doc__ = "See edgezoo.pipeline.export."
