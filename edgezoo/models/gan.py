"""A class-conditional DCGAN (Radford et al. 2016) on digits at their native 8x8: the generator is
the model that ships; the discriminator exists only for training. Samples are judged by the zoo's
``cnn`` (which reads digits up-sampled to 28x28, as it was trained)."""

from __future__ import annotations

import torch
from torch import nn

from .. import progress
from ..data.digits import digit_score, load_digit_images_for_training, load_digit_requests
from ..registry import InputSpec, ModelSpec, Stage, Tolerance, TrainRecipe, register


class Generator(nn.Module):
    def __init__(self, noise_dim: int = 32, width: int = 64, num_classes: int = 10):
        super().__init__()
        self.label_emb = nn.Embedding(num_classes, 16)
        self.project = nn.Sequential(nn.Linear(noise_dim + 16, 2 * width * 2 * 2), nn.BatchNorm1d(2 * width * 2 * 2), nn.ReLU(inplace=True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),   # 4x4
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid(),                                          # 8x8 in [0, 1]
        )
        self.width = width

    def forward(self, noise: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([noise, self.label_emb(digit)], 1))
        return self.net(h.reshape(-1, 2 * self.width, 2, 2))


class Discriminator(nn.Module):
    def __init__(self, width: int = 64, num_classes: int = 10):
        super().__init__()
        self.label_map = nn.Embedding(num_classes, 8 * 8)
        self.net = nn.Sequential(
            nn.Conv2d(2, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),                                      # 4x4
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, inplace=True),   # 2x2
            nn.Flatten(), nn.Linear(2 * width * 2 * 2, 1),
        )

    def forward(self, image: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, self.label_map(digit).reshape(-1, 1, 8, 8)], 1)).squeeze(1)


def train_gan(spec: ModelSpec) -> tuple[nn.Module, dict]:
    recipe = spec.recipe
    torch.manual_seed(recipe.seed)
    generator = spec.build()
    discriminator = Discriminator(generator.width)
    images = load_digit_images_for_training(8)
    noise_dim = spec.inputs[0].shape[1]
    opt_g = torch.optim.Adam(generator.parameters(), lr=recipe.stages[0].lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=recipe.stages[0].lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    epochs = recipe.epochs
    steps = images.n_batches("train", recipe.batch_size, min_batch=recipe.batch_size)
    with progress.bar(f"train {spec.name} (adversarial)", total=epochs * steps) as advance:
        for epoch in range(epochs):
            generator.train()
            for (real,), digit in images.batches("train", recipe.batch_size, shuffle=True, augment=True, seed=recipe.seed + epoch, min_batch=recipe.batch_size):
                z = torch.randn(len(digit), noise_dim)
                fake = generator(z, digit)
                opt_d.zero_grad(set_to_none=True)
                # One-sided label smoothing (0.9 for real) keeps the discriminator from saturating.
                d_loss = bce(discriminator(real, digit), torch.full((len(digit),), 0.9)) + bce(discriminator(fake.detach(), digit), torch.zeros(len(digit)))
                d_loss.backward()
                opt_d.step()
                opt_g.zero_grad(set_to_none=True)
                g_loss = bce(discriminator(fake, digit), torch.ones(len(digit)))
                g_loss.backward()
                opt_g.step()
                advance(1, f"epoch {epoch + 1}/{epochs} D {d_loss.item():.2f} G {g_loss.item():.2f}")
    generator.eval()
    requests = load_digit_requests(spec.inputs[0].shape)
    scores = {}
    with torch.inference_mode():
        for split in ("val", "test"):
            samples = torch.cat([generator(*x) for x, _ in requests.batches(split, spec.inputs[0].shape[0])])
            scores[split] = digit_score(samples.numpy())["score"]
    return generator, scores


register(
    ModelSpec(
        name="gan",
        task="conditional image generation",
        dataset="digits (scikit-learn) at 8x8; scored by the zoo's cnn",
        description="class-conditional DCGAN generator (noise 32 + digit -> 1x8x8)",
        builder=Generator,
        inputs=(InputSpec("noise", (100, 32), value_range=(-2.0, 2.0)), InputSpec("digit", (100,), dtype="int64", value_range=(0, 10))),
        load_data=load_digit_requests,
        metric_name="digit_score",
        # The judge scores real held-out digits 7.2. Measured: 2.7 after 40 epochs (width 32),
        # 5.0 after 300 epochs (width 64, 181 s: over the 3-minute budget), 4.5 after 270 (153 s).
        # The bar is what the short recipes clear, not the ceiling.
        min_metric=4.0,
        tolerance=Tolerance(int8_metric_drop=0.5),
        recipe=TrainRecipe(stages=(Stage(270, 2e-4),), batch_size=32),
        trainer=train_gan,
        # LiteRT loads the full-integer file only because the quantizer's per-axis dimension on the
        # folded [1, 1, 1, 64] bias is repaired (quantize/litert_int8.py). Its int8 loss varies with
        # the weights: 0.15 of digit score at 270 epochs, 0.63 at 300 (bound 0.5).
        # The tests train the full recipe: 150 epochs scored 2.7.
    )
)
