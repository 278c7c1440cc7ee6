"""OpenVINO int8 with NNCF post-training quantization (default preset) on the fp32 IR."""

from __future__ import annotations

from pathlib import Path


def quantize_nncf(ctx, fp32_path: Path, out_path: Path) -> str:
    from ..quiet import quiet_native

    with quiet_native():
        import nncf
        import openvino as ov

        model = ov.Core().read_model(str(fp32_path))
        samples = [list(s) for s in ctx.calibration.samples]
        quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples))
        ov.save_model(quantized, str(out_path), compress_to_fp16=False)
    return f"NNCF post-training quantization (mixed-precision default preset), {len(samples)} samples"
