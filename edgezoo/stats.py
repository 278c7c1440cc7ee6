"""Parameter and multiply-accumulate counts, for `edgezoo list`."""

from __future__ import annotations

import torch
from torch import nn

from .report import human_count  # noqa: F401 (edgezoo list's counts, and the report's)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates of one forward pass, counted on the aten ops that do them (convolutions,
    matmuls, attention), so hand-written recurrences, graph propagation and attention count too."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*example_inputs)
    return counter.get_total_flops() // 2
