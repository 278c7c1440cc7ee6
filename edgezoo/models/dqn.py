"""A DQN agent (Mnih et al. 2015, with Double-DQN targets) for CartPole-v1: the Q-network is the
model that ships; replay buffer, target network and exploration live in the trainer."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .. import progress
from ..data.cartpole import EVAL_SEEDS, episode_returns, load_cartpole
from ..devices.runners import torch_runner
from ..quantize.simulate import with_int8_weights
from ..registry import InputSpec, ModelSpec, Stage, Tolerance, TrainRecipe, register

SELECT_SEEDS = range(5_000, 5_020)  # checkpoint selection; the held-out measure uses other seeds
SELECT_EVERY = 2_500                # environment steps between selection rounds
EXTRA_STEPS = 10_000                # trained on past the recipe while no checkpoint is perfect yet
ATTEMPTS = 3                        # independent runs (another seed each) while none reaches a perfect checkpoint
PERFECT = 500.0                     # CartPole-v1's most steps per episode


class QNetwork(nn.Module):
    """Dueling heads (Wang et al. 2016): Q = V(s) + A(s, a) - mean_a A(s, a). CartPole's Q-values sit
    near 1 / (1 - gamma) = 100 and differ between the actions by well under 1%; with one head, int8
    weights quantize each action's row on that large scale and the tiny difference is lost. The
    advantage head carries the difference at its own scale (measured with per-tensor int8 weights in
    ONNX Runtime, mean return with one head / dueling: 58 / 125)."""

    def __init__(self, observations: int = 4, actions: int = 2, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(observations, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.value = nn.Linear(hidden, 1)
        self.advantage = nn.Linear(hidden, actions)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        h = self.features(observation)
        a = self.advantage(h)
        return self.value(h) + a - a.mean(1, keepdim=True)


def _layers(q: QNetwork) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """``q``'s (weight, bias) pairs in the order :func:`_forward` takes them: the parameters
    themselves (a gradient flows into them)."""
    return tuple((m.weight, m.bias) for m in (q.features[0], q.features[2], q.value, q.advantage))


def _frozen(q: QNetwork) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """:func:`_layers` detached: the parameters' own storage (in-place updates show through),
    with no autograd recorded."""
    return tuple((w.detach(), b.detach()) for w, b in _layers(q))


def _forward(layers, x: torch.Tensor) -> torch.Tensor:
    """QNetwork.forward as functional calls: the same F.linear and relu that nn.Linear and nn.ReLU
    make, in the same order, so the same numbers bit for bit, without nn.Module's per-call
    overhead (tested)."""
    import torch.nn.functional as F

    (w1, b1), (w2, b2), (wv, bv), (wa, ba) = layers
    h = F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2))
    a = F.linear(h, wa, ba)
    return F.linear(h, wv, bv) + a - a.mean(1, keepdim=True)


def q_values(q: QNetwork):
    """``q``'s forward as a predict function (arrays in, [Q-values] out), bitwise what
    ``torch_runner(q)`` answers, without nn.Module's per-call overhead: a selection round plays up
    to 10,000 steps of one observation each (measured on a 2-core AMD EPYC: 202 us a step with the
    module, about 140 this way). The tensors are the parameters' own storage: in-place optimizer
    steps show through."""
    layers = _frozen(q)

    def predict(inputs):  # detached tensors: autograd records nothing, no grad-mode context needed
        return [_forward(layers, torch.from_numpy(np.asarray(inputs[0]))).numpy()]

    return predict


def _flatten(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Re-points ``module``'s parameters and their gradients at views of one flat tensor each, in
    parameter order: (flat parameters, flat gradients, the gradients' views). Elementwise updates
    (Adam, gradient clipping, the target network's averaging) then run one kernel over all of it
    instead of one call per tensor, with the same numbers element for element."""
    params = list(module.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    views, offset = [], 0
    for p in params:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        p.grad = grad[offset:offset + n].view_as(p)  # backward accumulates into it in place
        views.append(p.grad)
        offset += n
    return flat, grad, views


class _Learner:
    """The online and target Q-networks and one Double-DQN update, bitwise what
    ``torch.optim.Adam(foreach=True)`` after ``clip_grad_norm_`` on the modules computes (the
    same kernels on the same numbers: tested against them) in half the time (measured on a
    2-core AVX2 AMD EPYC: 3.2-3.7 ms an update with the modules and the optimizer, 1.4-1.9 ms this
    way; the network is tiny, so per-call overhead was most of it; a whole 18,000-step run took
    66 s before and 46 s after, with bitwise the same weights).
    Parameters, gradients and Adam's moments are flat tensors; the modules' parameters are views
    of them."""

    def __init__(self, q: QNetwork, target: QNetwork, gamma: float, max_grad_norm: float = 10.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.grad, self.grad_views = _flatten(q)
        self.target_params, _, _ = _flatten(target)
        self.layers = _layers(q)
        self.frozen, self.target_layers = _frozen(q), _frozen(target)
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.params), torch.zeros_like(self.params)
        self.gamma, self.max_grad_norm, self.betas, self.eps, self.steps = gamma, max_grad_norm, betas, eps, 0

    def update(self, batch: torch.Tensor, lr: float) -> None:
        """One step on a batch of transition rows (observation, next observation, action,
        reward, done), as the replay memory stores them."""
        import torch.nn.functional as F

        obs, nxt = batch[:, :4].contiguous(), batch[:, 4:8].contiguous()
        action, reward, done = batch[:, 8].long(), batch[:, 9], batch[:, 10]
        best_next = _forward(self.frozen, nxt).argmax(1, keepdim=True)  # Double DQN: online net picks,
        y = reward + self.gamma * (1 - done) * _forward(self.target_layers, nxt).gather(1, best_next).squeeze(1)  # target net values
        loss = F.smooth_l1_loss(_forward(self.layers, obs).gather(1, action[:, None]).squeeze(1), y)
        self.grad.zero_()
        loss.backward()
        with torch.no_grad():
            # clip_grad_norm_: the norm of the per-tensor norms, the gradients scaled by min(1, max / norm).
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.grad_views, 2.0)), 2.0)
            self.grad.mul_(torch.clamp(self.max_grad_norm / (total + 1e-6), max=1.0))
            # Adam as torch.optim.Adam's foreach path computes it (no weight decay, no amsgrad).
            beta1, beta2 = self.betas
            self.steps += 1
            self.exp_avg.lerp_(self.grad, 1 - beta1)
            self.exp_avg_sq.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
            step_size = (lr / (1 - beta1 ** self.steps)) * -1
            denom = self.exp_avg_sq.sqrt().div_((1 - beta2 ** self.steps) ** 0.5).add_(self.eps)
            self.params.addcdiv_(self.exp_avg, denom, value=step_size)
            # Polyak-averaged target network.
            self.target_params.mul_(0.995).add_(self.params, alpha=0.005)


def _selection_score(q: nn.Module, best: float) -> float:
    """The worse mean return of the policy as trained and with int8 weights. The int8 policy is
    played only when the float one reaches ``best``: below it, the worse of the two cannot win."""
    score = float(np.mean(episode_returns(q_values(q), SELECT_SEEDS)))
    if score < best:
        return score
    return min(score, float(np.mean(episode_returns(q_values(with_int8_weights(q)), SELECT_SEEDS))))


def train_dqn(spec: ModelSpec) -> tuple[nn.Module, dict]:
    """``Stage.epochs`` counts thousands of environment steps.

    Robust rather than lucky: reinforcement learning turns the last-bit differences between two
    CPUs' float kernels into different policies (the same seeded recipe reached 500 on an AMD host
    and 218 on an Intel one), and DQN's return oscillates. So every 2,500 steps the greedy policy
    plays 20 selection episodes, as trained and with its weights rounded to int8 as the shipped
    int8 files store them, and the checkpoint whose worse score is best is kept; training stops at
    the first perfect one (500 both ways). A run that has none 10,000 steps past the recipe is one
    whose trajectory went astray: another run starts from a seed derived from the recipe's, up to
    three in all, and the best checkpoint of all of them is kept (measured on an AMD EPYC: seed 0's
    first run reached a selection score of 323 in 100,000 steps, where seeds 1 and 2 were perfect
    after 32,500 and 60,000). One thread (the recipe's): the network is tiny, threads only add
    overhead."""
    import gymnasium as gym

    recipe = spec.recipe
    q = spec.build()
    best, best_state, steps = -1.0, copy.deepcopy(q.state_dict()), 0
    env = gym.make("CartPole-v1")
    for attempt in range(ATTEMPTS):
        if best >= PERFECT:
            break
        # The first run is the recipe's seed exactly; later ones derive theirs from it.
        score, state, taken = _one_run(spec, env, recipe.seed + 1_000 * attempt, f"run {attempt + 1} of at most {ATTEMPTS}")
        steps += taken
        if score > best:
            best, best_state = score, state
    env.close()
    q.load_state_dict(best_state)
    q.eval()
    return q, {"val": best, "test": float(np.mean(episode_returns(torch_runner(q), EVAL_SEEDS))), "steps": steps}


def _one_run(spec: ModelSpec, env, seed: int, label: str) -> tuple[float, dict, int]:
    """One training run from ``seed``: (its best selection score, that checkpoint, steps taken)."""
    recipe = spec.recipe
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    q = spec.build()
    learner = _Learner(q, copy.deepcopy(q), gamma=0.99)
    peak_lr = recipe.stages[0].lr
    planned = recipe.epochs * 1000
    capacity, warmup = 50_000, 1_000
    # One row per transition: observation (4), next observation (4), action, reward, done.
    memory = np.zeros((capacity, 11), np.float32)
    obs, _ = env.reset(seed=seed)
    best, best_state, note = -1.0, copy.deepcopy(q.state_dict()), ""
    act = q_values(q)  # the greedy action, from the parameters as they are at each step
    step = 0
    with progress.bar(f"train {spec.name} (CartPole-v1 steps, {label}, stops at a perfect checkpoint)", total=planned) as advance:
        while step < planned + EXTRA_STEPS and best < PERFECT:
            # Exploration decays over the first fifth; the learning rate falls linearly to a tenth.
            epsilon = max(0.02, 1.0 - step / (0.2 * planned))
            if rng.random() < epsilon:
                action = int(rng.integers(2))
            else:
                action = int(act([obs[None]])[0].argmax())
            nxt, reward, terminated, truncated, _ = env.step(action)
            i = step % capacity
            memory[i, :4], memory[i, 4:8], memory[i, 8:] = obs, nxt, (action, reward, float(terminated))
            obs = nxt
            if terminated or truncated:
                obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
            if step >= warmup:
                idx = rng.integers(0, min(step + 1, capacity), recipe.batch_size)
                learner.update(torch.from_numpy(memory[idx]), peak_lr * max(0.1, 1 - step / planned))
            step += 1
            if step % SELECT_EVERY == 0 and step > warmup:
                score = _selection_score(q.eval(), best)
                q.train()
                if score >= best:
                    best, best_state = score, copy.deepcopy(q.state_dict())
                note = f"selection return {score:.0f} (best {best:.0f})"
            if step <= planned:
                advance(1, note)
    return best, best_state, step


register(
    ModelSpec(
        name="dqn",
        task="control (reinforcement learning)",
        dataset="CartPole-v1 (gymnasium), simulated; 20 held-out episode seeds",
        description="DQN (Double-DQN targets, Polyak target net), dueling Q-network 4-128-128-(1+2)",
        builder=QNetwork,
        inputs=(InputSpec("observation", (1, 4), value_range=(-2.0, 2.0)),),
        load_data=load_cartpole,
        metric_name="mean_return",
        min_metric=475.0,
        # Return is in steps; every artifact driving the environment must clear 475 too.
        tolerance=Tolerance(int8_metric_drop=25.0, artifacts_clear_bar=True),
        # Int8 weights, float activations: the policy is an argmax over two Q-values near 100 that
        # differ by well under 1%, close to an 8-bit activation step. Measured with static int8 on
        # the checkpoint this recipe selects (README's int8-schemes table): 500 in ONNX Runtime and
        # LiteRT but 2.2-3.2x slower than fp32 at this size, and 64 in OpenVINO (the previous
        # recipe's checkpoint: 355 and 114).
        int8_scheme="weights",
        # Per-channel symmetric int8 weights in every runtime: per-tensor weights (ONNX Runtime's
        # default) lost the policy (return 125), and so did OpenVINO's on-the-fly activation
        # quantization of compressed-weight layers (476, now off in the IR's runtime options).
        # Measured over training seeds 0-4 on an Intel Xeon: 60,000 steps at 1e-3 in batches of 64
        # reached 218 and 327 (seeds 0, 1); this recipe and selection stopped at a perfect
        # checkpoint after 32,500-37,500 steps for each (benchmarks/seeds.py has the spread).
        recipe=TrainRecipe(stages=(Stage(60, 5e-4),), batch_size=128, threads=1),
        # The suite trains the same recipe from seed 1: every seed 0-4 cleared the bar on each host
        # (benchmarks/seeds.py), and seed 1 was among the two quickest on each: 60,000 steps on the
        # AMD EPYC (72 s with AVX-512, 197 with AVX2 only) against seed 0's 115,000 (138 s, 541);
        # the quickest on the Intel Xeon (147 s against 194).
        small={"seed": 1},
        trainer=train_dqn,
    )
)
