"""A LeNet-style CNN (two conv + pool stages, two dense layers) on digits at 28x28."""

from __future__ import annotations

import torch
from torch import nn

from ..data.digits import load_digits_images
from ..registry import InputSpec, ModelSpec, Stage, TrainRecipe, register


class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(32 * 5 * 5, 128), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


CNN = register(
    ModelSpec(
        name="cnn",
        task="image classification",
        dataset="digits (scikit-learn), up-sampled to 28x28, 1 channel",
        description="LeNet-style CNN: 2 conv + pool, 2 dense",
        builder=LeNet,
        inputs=(InputSpec("image", (1, 1, 28, 28)),),
        load_data=load_digits_images,
        metric_name="accuracy",
        min_metric=0.97,
        # 10 epochs missed the bar for one of three seeds (96.9%, benchmarks/seeds.py); 20 gave
        # 98.6-99.2% over seeds 0-4 at 2 threads and 0-2 at 1 thread, in 7 s. The small variant
        # (the suite's) is the same model and recipe.
        recipe=TrainRecipe(stages=(Stage(20, 3e-3),), batch_size=32, weight_decay=1e-4),
    )
)
