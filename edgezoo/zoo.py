"""The whole zoo: imports every model file (each registers its card) and looks cards up by name.
The registry itself imports no model; this module is what fills it."""

from __future__ import annotations

from . import registry
from .models import alexnet, cnn, diffusion, dqn, gan, gcn, gpt, mlp, mobilenet, mobilenet_v3, recurrent, resnet, shufflenet, transformer, word2vec  # noqa: F401
from .registry import ModelSpec


def names() -> list[str]:
    return registry.registered()


def get(name: str) -> ModelSpec:
    return registry.lookup(name)
