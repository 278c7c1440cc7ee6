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
