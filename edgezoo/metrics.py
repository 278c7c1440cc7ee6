"""Task metrics: what each one measures, its direction and how a difference is said. A leaf that
imports numpy only, so reports and manifests can name and compare metrics without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    # (first output over a split, targets) -> value. None: the task scores it (a judge model, as
    # for generated digits: TaskData.score) or a closed-loop rollout measures it.
    fn: Callable[[np.ndarray, np.ndarray], float] | None
    higher_is_better: bool = True
    scale: float = 1.0    # how a difference is said: 100 for accuracy ("points"), 1 otherwise
    unit: str = ""
    class_scores: bool = False   # outputs are scores over classes on the last axis (agreement = same argmax)
    # The metric is the share of correct top-1 predictions: a file that changes k of n predictions
    # can move it by at most k / n, on this split and (as far as k / n holds) on any other.
    top1: bool = False

    def worse_by(self, value: float, reference: float) -> float:
        """How much worse ``value`` is than ``reference`` (negative: better)."""
        return reference - value if self.higher_is_better else value - reference

    def clears(self, value: float, bar: float) -> bool:
        return value >= bar if self.higher_is_better else value <= bar

    def changed(self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray) -> float | None:
        """The share of scored samples (targets >= 0) whose top-1 prediction in ``outputs`` differs
        from ``reference``'s: for a top-1 metric, the most a file can lose on a split where it changes
        that share; None for other metrics (their change has no such bound)."""
        if not self.top1:
            return None
        keep = targets >= 0
        mine, theirs = (np.asarray(o).argmax(-1).reshape(targets.shape)[keep] for o in (outputs, reference))
        return float((mine != theirs).mean()) if mine.size else 0.0

    def say(self, delta: float) -> str:
        return f"{delta * self.scale:.2f} {self.unit}".rstrip()

    def say_change(self, delta: float) -> str:
        """A signed change in the metric's own units: "+0.28 pt" for accuracy, "-0.03 bits"."""
        if self.unit == "points":
            return f"{delta * self.scale:+.2f} pt"
        return f"{delta:+.2g} {self.unit}".rstrip()


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy over the targets >= 0 (a negative target marks a sample left out, e.g. a
    graph node outside the split)."""
    predicted = outputs.argmax(-1).reshape(targets.shape)
    keep = targets >= 0
    return float((predicted[keep] == targets[keep]).mean())


def top5(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The share of targets (>= 0) among the five highest scores on the last axis."""
    scores = outputs.reshape(*targets.shape, outputs.shape[-1])
    k = min(5, scores.shape[-1])
    best = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    hit = (best == targets[..., None]).any(-1)
    keep = targets >= 0
    return float(hit[keep].mean())


def _errors(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return outputs.reshape(targets.shape).astype(np.float64) - targets


def rmse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.sqrt(np.mean(_errors(outputs, targets) ** 2)))


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(_errors(outputs, targets) ** 2))


def mae(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.abs(_errors(outputs, targets))))


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as scipy.stats.rankdata's default)."""
    values = np.asarray(values).reshape(-1)
    order = np.argsort(values, kind="mergesort")
    position = np.empty(len(values), np.float64)
    position[order] = np.arange(1, len(values) + 1)
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(group, weights=position) / counts)[group]


def spearman(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's on the ranks."""
    a, b = ranks(outputs), ranks(targets)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator else float("nan")


def bits_per_char(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Cross-entropy of next-character logits (..., vocab) against targets (...), in bits."""
    logits = outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return float(-log_probs[np.arange(len(logits)), targets.reshape(-1)].mean() / np.log(2))


# What a user's --data can be scored with (--metric): functions of the first output and the targets.
USER_METRICS = ("accuracy", "top5", "mse", "rmse", "mae")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", accuracy, scale=100, unit="points", class_scores=True, top1=True),
    Metric("top5", top5, scale=100, unit="points", class_scores=True),
    Metric("rmse", rmse, higher_is_better=False),
    Metric("mse", mse, higher_is_better=False),
    Metric("mae", mae, higher_is_better=False),
    Metric("spearman", spearman),
    Metric("bits_per_char", bits_per_char, higher_is_better=False, unit="bits", class_scores=True),
    # exp(E KL(p(y|x) || p(y))) under the zoo's digits CNN (edgezoo.judge): 10 when every sample is
    # a confident digit and the ten classes are equally common; 1 for noise or a single class.
    Metric("digit_score", None),
    Metric("mean_return", None),
)}


# The int8 bound of a user's --metric when --max-drop is not given: (value, relative to torch's
# own value). One point for the accuracies; for the errors, 5% of torch's own error (the square's
# 10.25% for mse: the same 5% in rmse).
_USER_INT8_DROP = {"accuracy": (0.01, False), "top5": (0.01, False), "rmse": (0.05, True), "mae": (0.05, True), "mse": (0.1025, True)}


def default_int8_drop(name: str, reference: float) -> tuple[float, str]:
    """(the bound in the metric's units, how it was set) for a user's metric without --max-drop."""
    value, relative = _USER_INT8_DROP[name]
    if relative:
        return value * abs(reference), f"{value * 100:g}% of torch's {name} {reference:.4g} (default; --max-drop sets it)"
    metric = METRICS[name]
    return value, f"{metric.say(value)} of {name} (default; --max-drop sets it)"
