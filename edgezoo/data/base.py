"""The one small shape every data set takes: fixed-seed splits, batches of input tuples, a metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float((outputs.argmax(-1) == targets).mean())


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"accuracy": accuracy}


@dataclass
class TaskData:
    """Splits held as raw arrays; ``make_inputs`` turns a raw slice into the model's input tuple.

    Keeping raw samples small (8x8 digits) and making model inputs (224x224x3) per batch keeps a
    whole split out of memory.
    """

    name: str
    raw: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    make_inputs: Callable[[np.ndarray, bool, np.random.Generator | None], tuple[torch.Tensor, ...]]
    metric_name: str = "accuracy"

    def size(self, split: str) -> int:
        return len(self.targets[split])

    def batches(
        self, split: str, batch_size: int, shuffle: bool = False, augment: bool = False, seed: int = 0, min_batch: int = 1
    ) -> Iterator[Batch]:
        """Batches in order (or shuffled); a trailing batch smaller than ``min_batch`` is dropped
        (training uses 2: batch norm cannot normalise a single sample)."""
        n = self.size(split)
        rng = np.random.default_rng(seed)
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if 0 < n % batch_size < min_batch else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            inputs = self.make_inputs(self.raw[split][idx], augment, rng if augment else None)
            yield inputs, torch.as_tensor(self.targets[split][idx])

    def n_batches(self, split: str, batch_size: int, min_batch: int = 1) -> int:
        n = self.size(split)
        return n // batch_size + (1 if n % batch_size >= min_batch else 0)

    def metric(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        return METRICS[self.metric_name](outputs, targets)
