"""Parameter and multiply-accumulate counts (conv, linear and recurrent layers), for `edgezoo list`."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d | nn.Conv1d | nn.ConvTranspose2d):
            kernel = module.weight[0].numel()  # in_channels/groups * kh * kw
            total += output.numel() * kernel if not isinstance(module, nn.ConvTranspose2d) else inputs[0].numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(*example_inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def human_count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)
