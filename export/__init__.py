"""The format table: the only list of formats. CLI choices, README matrix, benchmark and tests read it."""

from .base import ExportContext, Format
from .to_onnx import ONNX
from .to_openvino import OPENVINO
from .to_tflite import TFLITE

FORMATS: dict[str, Format] = {f.name: f for f in (ONNX, TFLITE, OPENVINO)}



def formats_markdown(model: str = "mobilenet") -> str:
    """The README's "what export leaves" table, read from the format table."""
    def cell(fmt: Format, precision: str) -> str:
        extra = "".join(f" + `{c}`" for c in fmt.companions)
        return f"`{fmt.file_name(model, precision)}`{extra}"

    lines = ["| format | fp32 | int8 (`--int8`) |", "|---|---|---|"]
    for fmt in FORMATS.values():
        lines.append(f"| {fmt.label} | {cell(fmt, 'fp32')} ({fmt.fp32_note}) | {cell(fmt, 'int8')}: {fmt.int8_note} |")
    return "\n".join(lines)


__all__ = ["FORMATS", "ExportContext", "Format", "formats_markdown"]
