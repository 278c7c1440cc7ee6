"""The one small shape every data set takes: fixed-seed splits, batches of input tuples, a metric
(with its direction), the training loss, a baseline to beat and, for closed-loop tasks, a rollout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]
# What a rollout drives: a runtime's runner or torch, input arrays in, output arrays out.
Predict = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float] | None  # (first output over a split, targets); None: only a rollout measures it
    higher_is_better: bool = True
    scale: float = 1.0    # how a difference is said: 100 for accuracy ("points"), 1 otherwise
    unit: str = ""
    class_scores: bool = False   # outputs are scores over classes on the last axis (agreement = same argmax)

    def worse_by(self, value: float, reference: float) -> float:
        """How much worse ``value`` is than ``reference`` (negative: better)."""
        return reference - value if self.higher_is_better else value - reference

    def clears(self, value: float, bar: float) -> bool:
        return value >= bar if self.higher_is_better else value <= bar

    def say(self, delta: float) -> str:
        return f"{delta * self.scale:.2f} {self.unit}".rstrip()


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy over the targets >= 0 (a negative target marks a sample left out, e.g. a
    graph node outside the split)."""
    predicted = outputs.argmax(-1).reshape(targets.shape)
    keep = targets >= 0
    return float((predicted[keep] == targets[keep]).mean())


def rmse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.sqrt(np.mean((outputs.reshape(targets.shape).astype(np.float64) - targets) ** 2)))


def spearman(outputs: np.ndarray, targets: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(outputs.reshape(-1), targets.reshape(-1)).statistic)


def bits_per_char(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Cross-entropy of next-character logits (..., vocab) against targets (...), in bits."""
    logits = outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return float(-log_probs[np.arange(len(logits)), targets.reshape(-1)].mean() / np.log(2))


def _digit_score(outputs: np.ndarray, targets: np.ndarray) -> float:
    from .digits import digit_score

    return digit_score(outputs)["score"]


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", accuracy, scale=100, unit="points", class_scores=True),
    Metric("rmse", rmse, higher_is_better=False),
    Metric("spearman", spearman),
    Metric("bits_per_char", bits_per_char, higher_is_better=False, unit="bits", class_scores=True),
    # exp(E KL(p(y|x) || p(y))) under the zoo's digits CNN: 10 when every sample is a confident
    # digit and the ten classes are equally common; 1 for noise or a single class.
    Metric("digit_score", _digit_score),
    Metric("mean_return", None),
)}


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

    def metric(self, outputs: np.ndarray, targets: np.ndarray) -> float | None:
        fn = self.measure.fn
        return None if fn is None else fn(outputs, targets)
