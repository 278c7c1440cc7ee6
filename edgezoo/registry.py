"""name -> ModelSpec: the model card every generic step reads instead of branching on a name.

A leaf: it imports no model. Each model file registers its card; ``edgezoo.zoo`` imports them all."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import BadInput
from .metrics import METRICS


@dataclass(frozen=True)
class InputSpec:
    """One named model input: shape (batch first), dtype and the value range it is drawn from."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    value_range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Tolerance:
    """How close an artifact must stay to torch, as data rather than code.

    fp32: max |out - torch| / max |torch| below ``fp32_rel_error``.
    int8: task metric at most ``int8_metric_drop`` below torch fp32 (in metric units: 0.01 = 1 point);
          without a task metric, mean cosine similarity of outputs at least ``int8_min_cosine``.
    """

    fp32_rel_error: float = 1e-4
    int8_metric_drop: float = 0.01
    int8_min_cosine: float = 0.98   # int8 bound for models without a task metric (user models)
    int8_min_fraction: float = 0.5  # an "int8" artifact storing less of its constants in 8 bits is float in disguise
    artifacts_clear_bar: bool = False  # every artifact, not only torch, must clear the card's bar (e.g. the DQN's return)


@dataclass(frozen=True)
class Stage:
    """``epochs`` at peak learning rate ``lr`` (one-cycle schedule), at input ``size`` (height =
    width) for fully-convolutional image models, or at the model card's shape when None.
    ``train_from``: parameters before the first one whose name starts with it stay frozen (their
    batch-norm statistics still adapt); None trains everything."""

    epochs: int
    lr: float
    size: int | None = None
    train_from: str | None = None


@dataclass(frozen=True)
class TrainRecipe:
    stages: tuple[Stage, ...]
    batch_size: int
    weight_decay: float = 0.0
    seed: int = 0
    # Decay per step of an exponential moving average of the weights, which is what gets kept
    # (as DDPM samples from); None keeps the last step's weights. In the supervised loop, models
    # without batch norm only: its running statistics follow the live weights, not the average.
    # Trainers of their own use it as they say (the GAN's averages its generator, measured).
    ema: float | None = None
    # The torch threads the recipe trains on; None: the process's (torch's default, all cores).
    # Part of the recipe: kernels sum in an order that depends on the thread count, so the same
    # seed reaches another model at another count.
    threads: int | None = None

    @property
    def epochs(self) -> int:
        return sum(s.epochs for s in self.stages)


INT8_SCHEMES = ("static", "weights")
# "qat": the fake-quantized graph of a quantization-aware fine-tuned model (export --qat), not a
# card's choice nor an --int8-scheme.
ALL_INT8_SCHEMES = (*INT8_SCHEMES, "qat")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    dataset: str
    builder: Callable[..., torch.nn.Module]
    inputs: tuple[InputSpec, ...]
    load_data: Callable[..., "object"] | None   # input_shape -> TaskData; None: no shipped data
    metric_name: str | None
    recipe: TrainRecipe
    build_kwargs: dict = field(default_factory=dict)
    tolerance: Tolerance = Tolerance()
    # The bar on held-out data: ``min_metric`` (at most, for a metric where lower is better), or
    # beating the data's own baseline (persistence, unigram) by ``baseline_margin`` (0.1 = 10%).
    min_metric: float | None = None
    baseline_margin: float | None = None
    description: str = ""
    # Which int8 each runtime gets: "static" (full-integer weights and activations, calibrated: what
    # convolutional and dense models speed up with) or "weights" (int8 weights, float activations:
    # for embedding tables and recurrences, where quantized activations lose the metric).
    int8_scheme: str = "static"
    # A runtime measured to accelerate the other scheme while it keeps the int8 bound gets it:
    # {"openvino": "static"}. ``benchmarks/int8_schemes.py`` measures both, per runtime.
    int8_scheme_by_format: dict = field(default_factory=dict)
    # Models that do not learn by the supervised loop (GAN, RL, gensim) bring their own:
    # trainer(spec) -> (model, {"val": metric, "test": metric}).
    trainer: Callable[["ModelSpec"], tuple[torch.nn.Module, dict]] | None = None
    # The test suite's configuration: same code, smaller. Keys: build_kwargs, input_shapes, stages,
    # threads (a small model that trains about as fast on one thread as on two is pinned to one:
    # the test session trains those in background processes beside its one-core work), seed (a
    # recipe that clears its bar from every seed benchmarks/seeds.py measured may train the suite's
    # copy from a seed that gets there among the soonest on the hosts measured).
    small: dict = field(default_factory=dict)
    # PATH.py:Class for a user's model, whose builder a child process cannot import by name.
    origin: str | None = None
    # A pruned model's architecture as data (edgezoo.architecture): build() applies it.
    architecture: dict | None = None

    def __post_init__(self):
        for scheme in (self.int8_scheme, *self.int8_scheme_by_format.values()):
            if scheme not in ALL_INT8_SCHEMES:
                raise ValueError(f"model card {self.name!r}: int8 scheme {scheme!r} is not one of {', '.join(INT8_SCHEMES)}")

    def bar(self, data) -> tuple[float, str] | None:
        """(the value the torch model must reach on the test split, how it was set)."""
        if self.min_metric is not None:
            return self.min_metric, "stated"
        if self.baseline_margin is not None and data is not None and data.baseline is not None:
            what, value = data.baseline
            better = 1 + self.baseline_margin if METRICS[self.metric_name].higher_is_better else 1 - self.baseline_margin
            return value * better, f"{what} {value:.4g} bettered by {self.baseline_margin:.0%}"
        return None

    def int8_scheme_for(self, format_name: str) -> str:
        """The int8 scheme this card gives one format's runtime."""
        return self.int8_scheme_by_format.get(format_name, self.int8_scheme)

    def build(self, **overrides) -> torch.nn.Module:
        model = self.builder(**{**self.build_kwargs, **overrides})
        if self.architecture:
            from .architecture import apply_architecture

            apply_architecture(model, self.architecture, self.name)
        return model

    def small_variant(self) -> "ModelSpec":
        """The card at the test suite's size: it must still clear ``min_metric``."""
        spec = dataclasses.replace(
            self,
            build_kwargs={**self.build_kwargs, **self.small.get("build_kwargs", {})},
            recipe=dataclasses.replace(self.recipe, stages=self.small.get("stages", self.recipe.stages),
                                       threads=self.small.get("threads", self.recipe.threads),
                                       seed=self.small.get("seed", self.recipe.seed)),
        )
        return spec.with_input_shapes(self.small["input_shapes"]) if "input_shapes" in self.small else spec

    def with_input_shapes(self, shapes) -> "ModelSpec":
        inputs = tuple(dataclasses.replace(i, shape=tuple(s)) for i, s in zip(self.inputs, shapes))
        return dataclasses.replace(self, inputs=inputs)

    def example_inputs(self, seed: int = 0) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        out = []
        for spec in self.inputs:
            lo, hi = spec.value_range
            if spec.dtype == "bool":
                out.append(torch.randint(int(lo), int(hi), spec.shape, generator=g).bool())
            elif spec.dtype.startswith(("int", "uint")):
                out.append(torch.randint(int(lo), int(hi), spec.shape, generator=g, dtype=getattr(torch, spec.dtype)))
            else:
                out.append((torch.rand(spec.shape, generator=g) * (hi - lo) + lo).to(getattr(torch, spec.dtype)))
        return tuple(out)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def registered() -> list[str]:
    """The names registered so far (``edgezoo.zoo.names()`` has the whole zoo)."""
    return sorted(_REGISTRY)


def lookup(name: str) -> ModelSpec:
    """A registered card by name; an unknown name gets the closest ones as a hint."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(sorted(_REGISTRY))}"
    raise BadInput(
        f"unknown model {name!r}: {hint} (`edgezoo list` shows all; a model of your own is PATH.py:ClassName)"
    )
