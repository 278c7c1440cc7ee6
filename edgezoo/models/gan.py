"""A class-conditional DCGAN (Radford et al. 2016) on digits at their native 8x8: the generator is
the model that ships; the discriminator exists only for training. Samples are judged by the zoo's
``cnn`` (which reads digits up-sampled to 28x28, as it was trained)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .. import progress
from ..data.base import TaskData
from ..data.digits import load_digit_images_for_training, load_digit_requests
from ..judge import digit_score, judged
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
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),                                      # 4x4
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, inplace=True),   # 2x2
            nn.Flatten(),
        )
        self.real = nn.Linear(2 * width * 2 * 2, 1)
        self.classify = nn.Linear(2 * width * 2 * 2, num_classes)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real-or-fake logit, digit-class logits). The class head is AC-GAN's auxiliary classifier
        (Odena et al. 2017): it never sees the requested digit, so the generator is paid for digits
        that are recognisable from the pixels alone."""
        h = self.net(image)
        return self.real(h).squeeze(1), self.classify(h)


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
    ce = nn.CrossEntropyLoss()
    epochs = recipe.epochs
    steps = images.n_batches("train", recipe.batch_size, min_batch=recipe.batch_size)
    requests = load_digit_requests(spec.inputs[0].shape)
    best: tuple[float, dict] = (float("-inf"), {})
    # An exponential moving average of the generator's weights (recipe.ema), the one scored and
    # kept: it averages out the adversarial game's oscillation (as in Karras et al.'s GANs).
    average = copy.deepcopy(generator) if recipe.ema is not None else None
    with progress.bar(f"train {spec.name} (adversarial)", total=epochs * steps) as advance:
        for epoch in range(epochs):
            generator.train()
            for (real,), digit in images.batches("train", recipe.batch_size, shuffle=True, augment=True, seed=recipe.seed + epoch, min_batch=recipe.batch_size):
                z = torch.randn(len(digit), noise_dim)
                fake = generator(z, digit)
                opt_d.zero_grad(set_to_none=True)
                # One-sided label smoothing (0.9 for real) keeps the discriminator from saturating.
                real_logit, real_class = discriminator(real)
                fake_logit, _ = discriminator(fake.detach())
                d_loss = bce(real_logit, torch.full((len(digit),), 0.9)) + bce(fake_logit, torch.zeros(len(digit))) + ce(real_class, digit)
                d_loss.backward()
                opt_d.step()
                opt_g.zero_grad(set_to_none=True)
                fake_logit, fake_class = discriminator(fake)
                g_loss = bce(fake_logit, torch.ones(len(digit))) + ce(fake_class, digit)
                g_loss.backward()
                opt_g.step()
                if average is not None:
                    with torch.no_grad():
                        torch._foreach_lerp_(list(average.parameters()), list(generator.parameters()), 1.0 - recipe.ema)
                        torch._foreach_copy_(list(average.buffers()), list(generator.buffers()))
                advance(1, f"epoch {epoch + 1}/{epochs} D {d_loss.item():.2f} G {g_loss.item():.2f} (best val {best[0]:.2f})")
            # Adversarial training does not converge to a point: where it stops is chance (one class
            # can be lost at epoch 270 and back at 280). Keep the generator that scores best on the
            # validation requests; the test requests stay unseen until the end.
            if (epoch + 1) % SELECT_EVERY == 0 or epoch + 1 == epochs:
                kept = average if average is not None else generator
                val = _score(kept, requests, "val")
                if val > best[0]:
                    best = (val, copy.deepcopy(kept.state_dict()))
    generator.load_state_dict(best[1])
    generator.eval()
    return generator, {"val": best[0], "test": _score(generator, requests, "test")}


def load_judged_requests(input_shape: tuple[int, ...]) -> TaskData:
    """The fixed requests (noise, digit), the samples drawn for them scored by the judge."""
    return judged(load_digit_requests(input_shape))


SELECT_EVERY = 10  # epochs between validation scores


def _score(generator: nn.Module, requests, split: str) -> float:
    """Digit score of the generator's samples for one split of requests; its mode is left as found."""
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        samples = torch.cat([generator(*x) for x, _ in requests.batches(split, requests.size(split))])
    generator.train(was_training)
    return digit_score(samples.numpy())["score"]


register(
    ModelSpec(
        name="gan",
        task="conditional image generation",
        dataset="digits (scikit-learn) at 8x8; scored by the zoo's cnn",
        description="class-conditional DCGAN generator (noise 32 + digit -> 1x8x8)",
        builder=Generator,
        inputs=(InputSpec("noise", (100, 32), value_range=(-2.0, 2.0)), InputSpec("digit", (100,), dtype="int64", value_range=(0, 10))),
        load_data=load_judged_requests,
        metric_name="digit_score",
        # The judge scores real held-out digits 7.2 (mean confidence 0.92). Measured on the test
        # requests: a projection-conditioned discriminator, last epoch, 4.5 after 270 epochs
        # (confidence 0.78, 82% drawn as the requested digit); with AC-GAN's class head the last
        # epoch lost one digit (5.2 at 270, "5" never drawn; 4.7 at 320, "9" 43%); keeping the
        # best on validation: 6.1 after 300 epochs (confidence 0.88, 99% as requested, all 10
        # digits, 107 s).
        min_metric=5.5,
        tolerance=Tolerance(int8_metric_drop=0.5),
        # The generator kept is an average of its weights over about the last 200 steps (EMA
        # 0.995, about 6 epochs). Measured on the tests' 100 epochs, one thread, an AMD EPYC, over
        # training seeds 0-2: 6.09, 6.64, 6.85 with it, 5.77, 5.39, 5.79 without (the last missing
        # the bar; 5.58, 5.65, 5.54 on an Intel Xeon at 2 threads); EMA 0.999 averaged over too
        # long a past (4.13 for seed 0), and 60 epochs with EMA fell short (5.57 for seed 0). The
        # full recipe with it: 8.06 after 300 epochs (5.97 without), in 3.1 min on that host (over
        # the 3-minute training goal); 6.73 after 200 epochs, in 2.2 min.
        recipe=TrainRecipe(stages=(Stage(200, 2e-4),), batch_size=32, ema=0.995),
        trainer=train_gan,
        # LiteRT loads the full-integer file only because the quantizer's per-axis dimension on the
        # folded bias is repaired (quantize/litert_int8.py). One thread: trains in the test
        # session's background beside its one-core work.
        small={"stages": (Stage(100, 2e-4),), "threads": 1},
    )
)
