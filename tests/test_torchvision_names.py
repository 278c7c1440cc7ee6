"""Vision models use torchvision's parameter names and shapes, so official checkpoints load strictly.

The fixtures hold names and shapes of torchvision 0.28.0's own models (state_dict() of the model
built from its source at num_classes=1000; see each file's "source"). At that point the same weights
gave bit-identical outputs in torchvision and edgezoo (checked once where torchvision imported;
torchvision cannot import beside the CPU-only torch this project pins)."""

import json
from pathlib import Path

import pytest
import torch

from edgezoo.models.alexnet import AlexNet
from edgezoo.models.mobilenet import MobileNetV2
from edgezoo.models.mobilenet_v3 import MobileNetV3Small
from edgezoo.models.resnet import resnet18
from edgezoo.models.shufflenet import ShuffleNetV2
from edgezoo.stats import count_params

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = {
    "mobilenet_v2": (MobileNetV2, 3_504_872),
    "mobilenet_v3_small": (MobileNetV3Small, 2_542_856),
    "resnet18": (resnet18, 11_689_512),
    "alexnet": (AlexNet, 61_100_840),
    "shufflenet_v2_x1_0": (ShuffleNetV2, 2_278_604),
}


@pytest.mark.parametrize("name", MODELS)
def test_names_and_shapes_match_torchvision(name):
    build, n_params = MODELS[name]
    reference = json.loads((FIXTURES / f"torchvision_{name}_state_dict.json").read_text())
    model = build(num_classes=1000)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(reference["state_dict"])  # same names, same order
    assert ours == reference["state_dict"]
    assert count_params(model) == reference["parameters"] == n_params


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_shaped_state_dict_loads_strict(name):
    build, _ = MODELS[name]
    reference = json.loads((FIXTURES / f"torchvision_{name}_state_dict.json").read_text())
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)) for k, s in reference["state_dict"].items()}
    model = build(num_classes=1000)
    model.load_state_dict(state, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
