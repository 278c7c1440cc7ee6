"""gensim's shipped test corpus ``head500.noblanks.cor`` (stemmed English Wikipedia text, 2.3M
characters) as character-level language modelling. The held-out splits are the corpus's tail, so
nothing of the test text is seen in training; the baseline is a unigram model of the training text."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .base import Rollout, RolloutResult, TaskData

UNKNOWN = "\x00"  # stands for any character outside the alphabet
# The model's alphabet, fixed so that a checkpoint's embedding rows keep their meaning and nothing
# reads the corpus at import: the characters seen at least MIN_COUNT times in the training part of
# the corpus (tests/test_zoo_parts.py re-derives it), plus UNKNOWN at index 0.
ALPHABET = (UNKNOWN, " ", "-", *"abcdefghijklmnopqrstuvwxyz")
MIN_COUNT = 1000


@lru_cache(maxsize=1)
def corpus_text() -> str:
    from gensim.test.utils import datapath

    with open(datapath("head500.noblanks.cor"), encoding="utf8") as f:
        return f.read()


def frequent_chars(min_count: int = MIN_COUNT) -> list[str]:
    """The characters seen at least ``min_count`` times in the training part of the corpus."""
    text = corpus_text()
    train = text[: int(0.9 * len(text))]
    chars, counts = np.unique(np.frombuffer(train.encode("utf-32-le"), dtype=np.uint32), return_counts=True)
    return sorted(chr(c) for c, n in zip(chars, counts) if n >= min_count)


def lm_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def load_corpus_chars(input_shape: tuple[int, ...], test_windows: int = 256, generate: int = 120) -> TaskData:
    """Windows of ``input_shape[1]`` characters in, the next character at every position out."""
    context = input_shape[1]
    text = corpus_text()
    vocab = ALPHABET
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index.get(c, 0) for c in text], dtype=np.int64)
    a, b = int(0.9 * len(ids)), int(0.95 * len(ids))
    starts = {
        "train": np.arange(0, a - context - 1, context),
        "val": np.arange(a, b - context - 1, context)[:test_windows],
        "test": np.arange(b, len(ids) - context - 1, context)[:test_windows],
    }

    def make_batch(raw: np.ndarray, _targets, augment: bool, rng: np.random.Generator):
        if augment:  # a fresh cut of the training text each epoch
            raw = np.minimum(raw + rng.integers(0, context, len(raw)), a - context - 1)
        windows = np.stack([ids[s : s + context + 1] for s in raw])
        return (torch.from_numpy(windows[:, :-1]),), torch.from_numpy(windows[:, 1:])

    counts = np.bincount(ids[:a], minlength=len(vocab)).astype(np.float64)
    test_ids = np.concatenate([ids[s + 1 : s + context + 1] for s in starts["test"]])
    unigram_bits = float(-np.log2((counts / counts.sum())[test_ids]).mean())

    prompt = ids[b : b + context]

    def greedy(predict) -> RolloutResult:
        window = list(prompt)
        for _ in range(generate):
            logits = predict([np.array([window[-context:]], dtype=np.int64)])[0]
            window.append(int(np.argmax(logits[0, -1])))
        out = np.array(window[context:])
        said = "".join(vocab[i] for i in out).replace(UNKNOWN, "?")
        return RolloutResult(None, out, f"greedy {generate} chars after the test prompt: {said[:60]!r}...")

    return TaskData(
        name="head500 chars",
        raw=starts,
        targets=starts,
        make_batch=make_batch,
        metric_name="bits_per_char",
        loss=lm_loss,
        baseline=("unigram model", unigram_bits),
        rollout=Rollout(f"greedy generation of {generate} characters", greedy, sets_metric=False, fp32_trace_atol=0.0),
    )
