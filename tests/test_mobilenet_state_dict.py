"""The flagship uses torchvision's parameter names and shapes, so official checkpoints load strictly."""

import json
from pathlib import Path

import torch

from edgezoo.models.mobilenet import MobileNetV2
from edgezoo.stats import count_params

FIXTURES = Path(__file__).parent / "fixtures"


def test_names_and_shapes_match_torchvision():
    reference = json.loads((FIXTURES / "torchvision_mobilenet_v2_state_dict.json").read_text())
    ours = {k: list(v.shape) for k, v in MobileNetV2(num_classes=1000).state_dict().items()}
    assert list(ours) == list(reference["state_dict"])  # same names, same order
    assert ours == reference["state_dict"]
    assert count_params(MobileNetV2(num_classes=1000)) == reference["parameters"] == 3_504_872


def test_torchvision_shaped_state_dict_loads_strict():
    reference = json.loads((FIXTURES / "torchvision_mobilenet_v2_state_dict.json").read_text())
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)) for k, s in reference["state_dict"].items()}
    model = MobileNetV2(num_classes=1000)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(model.classifier[1].bias, state["classifier.1.bias"])
