"""int8 simulated in torch, for choices made before any export (which checkpoint to keep)."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def with_int8_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear and convolution weights are rounded as the "weights" int8
    scheme stores them in every runtime: symmetric, one scale per output channel, [-127, 127]."""
    quantized = copy.deepcopy(model).eval()
    for module in quantized.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            w = module.weight
            scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / 127
            scale[scale == 0] = 1.0
            w.copy_(torch.round(w / scale).clamp(-127, 127) * scale)
    return quantized


class _DynamicInt8Linear(nn.Module):
    """nn.Linear as ONNX Runtime's dynamic int8 computes it (DynamicQuantizeLinear, then
    MatMulInteger): each input row quantized on its own (one call per row, as a batch-1 file is
    called) to uint8 with a zero point over [min(0, x), max(0, x)]; weights symmetric int8, one
    scale per output channel; integer sums. ``saturate``: as the uint8 x int8 kernels of an x86 CPU
    without VNNI add them, adjacent pairs of products first summed in 16 bits with saturation."""

    def __init__(self, linear: nn.Linear, saturate: bool):
        super().__init__()
        w = linear.weight.detach().double()
        scale = w.abs().amax(1, keepdim=True) / 127
        scale[scale == 0] = 1.0
        self.register_buffer("q", torch.round(w / scale).clamp(-127, 127))
        self.register_buffer("scale", scale[:, 0])
        self.register_buffer("bias", linear.bias.detach().double() if linear.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64))
        self.saturate = saturate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        low, high = x.amin(1, keepdim=True).clamp(max=0), x.amax(1, keepdim=True).clamp(min=0)
        step = torch.where(high > low, (high - low) / 255, torch.ones_like(high))
        zero = torch.round(-low / step).clamp(0, 255)
        a = (torch.round(x / step) + zero).clamp(0, 255)
        if self.saturate:
            products = a[:, None, :] * self.q[None]                   # (rows, out, in)
            if products.shape[-1] % 2:
                products = nn.functional.pad(products, (0, 1))
            sums = (products[..., 0::2] + products[..., 1::2]).clamp(-32768, 32767).sum(-1)
        else:
            sums = a @ self.q.T
        return ((sums - zero * self.q.sum(1)) * step * self.scale + self.bias).float()


@torch.no_grad()
def with_dynamic_int8(model: nn.Module, saturate: bool = False) -> nn.Module:
    """A copy of ``model`` whose Linear layers compute as ONNX Runtime's dynamic int8 file of it
    does (the "weights" scheme's ONNX file: activations quantized per call as well). With
    ``saturate``, as on an x86 CPU without VNNI, where that file's sums of products saturate in 16
    bits (measured on the DQN on a 2-core AVX2 AMD EPYC: this simulation within 0.04 of ONNX
    Runtime's Q-values, where without the saturation it was 17 off)."""
    quantized = copy.deepcopy(model).eval()
    for name, module in list(quantized.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, _DynamicInt8Linear(child, saturate))
    return quantized
