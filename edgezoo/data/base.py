"""The one small shape every data set takes: fixed-seed splits, batches of input tuples, a metric
(with its direction), the training loss, a baseline to beat and, for closed-loop tasks, a rollout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..manifest import ImagePreprocess
from ..metrics import METRICS, Metric

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]
# What a rollout drives: a runtime's runner or torch, input arrays in, output arrays out.
Predict = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def split_indices(n: int, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    """A fixed-seed train/val/test split of ``n`` samples, as index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


def classification_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1), label_smoothing=0.05, ignore_index=-1)


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(outputs.reshape(targets.shape), targets.to(outputs.dtype))


@dataclass
class RolloutResult:
    value: float | None   # the task metric, when the rollout is what measures it
    trace: np.ndarray     # what two rollouts are compared on: generated tokens, final samples, returns
    summary: str          # one line for the manifest


@dataclass(frozen=True)
class Rollout:
    """A closed loop through a model: a policy driving an environment, a sampler calling a
    denoiser step after step, greedy decoding feeding each token back.

    ``sets_metric``: the rollout's value is the task metric. ``fp32_trace_atol``: an fp32 artifact's
    trace must stay this close to torch's (0: identical, as for generated text); None: compared on
    the metric only (a tie between two actions may flip under any float reordering)."""

    name: str
    run: Callable[[Predict], RolloutResult]
    sets_metric: bool = False
    fp32_trace_atol: float | None = 0.0
    # The same loop on inputs kept apart from the held-out measure (other seeds): what choices made
    # on measurements (accuracy-aware int8's layers) are made on, so the test split stays unseen.
    select: Callable[[Predict], RolloutResult] | None = None


@dataclass
class TaskData:
    """Splits held as raw arrays; ``make_inputs`` turns a raw slice into the model's input tuple
    (or ``make_batch`` turns raw samples and targets into inputs and training targets, for tasks
    whose targets are drawn per batch, like a diffusion model's noise).

    Keeping raw samples small (8x8 digits) and making model inputs (224x224x3) per batch keeps a
    whole split out of memory.
    """

    name: str
    raw: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    make_inputs: Callable[[np.ndarray, bool, np.random.Generator | None], tuple[torch.Tensor, ...]] | None = None
    metric_name: str = "accuracy"
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = classification_loss
    make_batch: Callable[[np.ndarray, np.ndarray, bool, np.random.Generator], Batch] | None = None
    baseline: tuple[str, float] | None = None   # (what, its metric on the test split): what the model must beat
    rollout: Rollout | None = None
    min_train_batch: int = 2    # batch norm cannot normalise one sample; a one-graph task trains on 1
    labels: tuple[str, ...] | None = None        # class names by output index (a classifier's)
    image: "ImagePreprocess | None" = None       # how a picture becomes the first input (an image task's)
    # (outputs, targets) -> value, for a metric a model of the task judges (generated digits
    # scored by the zoo's cnn): the metric table names the metric, the task brings the judge.
    score: Callable[[np.ndarray, np.ndarray], float] | None = None
    # None: a split's samples are rows of the model's batch axis (the first input's first
    # dimension), the last batch padded. k: each call takes k whole samples (a user's data stacked
    # as whole inputs), and the outputs are kept as they come, concatenated on their first axis.
    samples_per_call: int | None = None

    def per_call(self, model_batch: int) -> int:
        """Samples per model call."""
        return self.samples_per_call or model_batch

    def rows_kept(self, n: int) -> int | None:
        """How many rows of a split's concatenated outputs are its samples' (the rest pad the last
        batch); None: all of them."""
        return None if self.samples_per_call else n

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
            if self.make_batch is not None:
                yield self.make_batch(self.raw[split][idx], self.targets[split][idx], augment, rng)
            else:
                inputs = self.make_inputs(self.raw[split][idx], augment, rng if augment else None)
                yield inputs, torch.as_tensor(self.targets[split][idx])

    def n_batches(self, split: str, batch_size: int, min_batch: int = 1) -> int:
        n = self.size(split)
        return n // batch_size + (1 if n % batch_size >= min_batch else 0)

    @property
    def measure(self) -> Metric:
        return METRICS[self.metric_name]

    @property
    def scored_by_outputs(self) -> bool:
        """The metric is a function of a split's outputs (not only of a rollout)."""
        return (self.score or self.measure.fn) is not None

    def metric(self, outputs: np.ndarray, targets: np.ndarray) -> float | None:
        fn = self.score or self.measure.fn
        return None if fn is None else fn(outputs, targets)
