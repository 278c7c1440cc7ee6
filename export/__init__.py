"""The format table: the only list of formats. CLI choices, README matrix, benchmark and tests read it."""

from .base import ExportContext, Format
from .to_onnx import ONNX
from .to_openvino import OPENVINO
from .to_tflite import TFLITE

FORMATS: dict[str, Format] = {f.name: f for f in (ONNX, TFLITE, OPENVINO)}

__all__ = ["FORMATS", "ExportContext", "Format"]
