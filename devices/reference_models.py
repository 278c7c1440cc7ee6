"""The architectures whose published device latencies calibrate the estimator (MobileNet V1, V3
Large, V3 Small, ResNet-18, ShuffleNetV2 x1.0; ImageNet shape, 1000 classes), built here only to
measure their graphs' costs: what they compute, never trained. MobileNetV2, the flagship, is
deliberately not among them."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F


def mobilenet_v1(num_classes: int = 1000) -> nn.Module:
    """MobileNet V1 1.0 (Howard et al. 2017): a 3x3 stem, then 13 depthwise-separable blocks."""

    def conv_bn(cin, cout, kernel, stride, groups=1):
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())

    layers = [conv_bn(3, 32, 3, 2)]
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        layers += [conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes))


# torchvision's large table: input, kernel, expanded, output, squeeze-excite, activation, stride
_LARGE = [
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2), (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2), (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1), (160, 5, 960, 160, True, "HS", 1),
]


class MobileNetV3Large(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        from ..models.mobilenet import ConvBNActivation
        from ..models.mobilenet_v3 import InvertedResidual

        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers: list[nn.Module] = [ConvBNActivation(3, 16, 3, 2, activation=nn.Hardswish, norm=norm)]
        for cin, k, exp, cout, se, act, s in _LARGE:
            layers.append(InvertedResidual(cin, k, exp, cout, se, nn.Hardswish if act == "HS" else nn.ReLU, s, norm))
        layers.append(ConvBNActivation(160, 960, 1, activation=nn.Hardswish, norm=norm))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def build(name: str) -> nn.Module:
    from ..models.mobilenet import MobileNetV2
    from ..models.mobilenet_v3 import MobileNetV3Small
    from ..models.resnet import resnet18
    from ..models.shufflenet import ShuffleNetV2

    builders = {"mobilenet_v1": mobilenet_v1, "mobilenet_v3_large": MobileNetV3Large, "mobilenet_v3_small": MobileNetV3Small,
                "resnet18": resnet18, "shufflenet_v2": ShuffleNetV2, "mobilenet_v2": MobileNetV2}
    return builders[name]().eval()


CALIBRATION_MODELS = ("mobilenet_v1", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18", "shufflenet_v2")
CHECK_MODELS = ("mobilenet_v2",)
