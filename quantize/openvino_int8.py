"""OpenVINO int8 with NNCF on the fp32 IR.

static: post-training quantization (default preset), calibrated.
weights: nncf.compress_weights INT8_ASYM: int8 weights, decompressed inside the kernels.
"""

from __future__ import annotations

from pathlib import Path


def quantize_openvino(ctx, fp32_path: Path, out_path: Path) -> str:
    from ..quiet import quiet_native

    with quiet_native():
        import nncf
        import openvino as ov

        model = ov.Core().read_model(str(fp32_path))
        if ctx.int8_scheme == "weights":
            compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
            ov.save_model(compressed, str(out_path), compress_to_fp16=False)
            return "weight compression: int8 (asymmetric) weights, float activations"
        samples = [list(s) for s in ctx.calibration.samples]
        quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples))
        ov.save_model(quantized, str(out_path), compress_to_fp16=False)
    return f"NNCF post-training quantization (mixed-precision default preset), {len(samples)} samples"
