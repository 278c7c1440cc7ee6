"""Word similarity on gensim's shipped data: the vocabulary comes from ``head500.noblanks.cor``;
the held-out measure is Spearman correlation with human judgements, ``wordsim353.tsv`` (test) and
``simlex999.txt`` (val), over the pairs whose words are both in the vocabulary."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
import torch

from .base import TaskData
from .text import corpus_text

MIN_COUNT = 5


def corpus_sentences() -> list[list[str]]:
    return [line.split() for line in corpus_text().splitlines() if line.strip()]


@lru_cache(maxsize=1)
def word_vocab() -> tuple[str, ...]:
    """Words seen at least MIN_COUNT times, most frequent first (ties by spelling): row i of an
    embedding is word i. Deterministic, so the vocabulary is rebuilt rather than stored."""
    counts = Counter(w for s in corpus_sentences() for w in s)
    return tuple(sorted((w for w, n in counts.items() if n >= MIN_COUNT), key=lambda w: (-counts[w], w)))


def _pairs(filename: str, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    from gensim.test.utils import datapath

    ids, scores = [], []
    with open(datapath(filename), encoding="utf8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(parts) < 3:
                continue
            a, b = parts[0].lower(), parts[1].lower()
            if a in index and b in index:
                ids.append((index[a], index[b]))
                scores.append(float(parts[2]))
    return np.array(ids, dtype=np.int64), np.array(scores, dtype=np.float64)


def load_word_pairs(input_shape: tuple[int, ...], seed: int = 7) -> TaskData:
    index = {w: i for i, w in enumerate(word_vocab())}
    test_ids, test_scores = _pairs("wordsim353.tsv", index)
    val_ids, val_scores = _pairs("simlex999.txt", index)
    # Calibration pairs: frequent words paired at random (no human scores needed to calibrate).
    train_ids = np.random.default_rng(seed).integers(0, min(2000, len(index)), (512, 2))

    def make_inputs(pairs: np.ndarray, augment: bool, rng) -> tuple[torch.Tensor, ...]:
        return torch.from_numpy(pairs[:, 0].copy()), torch.from_numpy(pairs[:, 1].copy())

    return TaskData(
        name=f"word pairs ({len(test_ids)} of wordsim353 in vocabulary)",
        raw={"train": train_ids, "val": val_ids, "test": test_ids},
        targets={"train": np.zeros(len(train_ids)), "val": val_scores, "test": test_scores},
        make_inputs=make_inputs,
        metric_name="spearman",
        baseline=("random vectors", 0.0),
    )
