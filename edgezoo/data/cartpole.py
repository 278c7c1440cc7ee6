"""gymnasium's CartPole-v1 (simulated in-process, nothing downloaded) as a control task.

The held-out measure is closed-loop: the mean return of 20 greedy episodes on seeds never used in
training, driven through whatever runs the Q-network (torch or an exported artifact). The
observation split (states from seeded random-policy episodes) is what output parity and int8
calibration use."""

from __future__ import annotations

import numpy as np
import torch

from .base import Rollout, RolloutResult, TaskData

EVAL_SEEDS = range(10_000, 10_020)
SELECTION_SEEDS = range(20_000, 20_020)  # for choices made on measurements; neither trained on nor the held-out measure


def episode_returns(predict, seeds, batch: int = 1, max_steps: int = 500) -> list[float]:
    import gymnasium as gym

    env = gym.make("CartPole-v1", max_episode_steps=max_steps)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            q = predict([np.repeat(obs[None].astype(np.float32), batch, 0)])[0][0]
            obs, reward, terminated, truncated, _ = env.step(int(np.argmax(q)))
            total += reward
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def random_policy_states(n: int, seed: int) -> np.ndarray:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    states = []
    obs, _ = env.reset(seed=seed)
    while len(states) < n:
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    env.close()
    return np.asarray(states, dtype=np.float32)


def load_cartpole(input_shape: tuple[int, ...]) -> TaskData:
    batch = input_shape[0]
    raw = {"train": random_policy_states(512, 1), "val": random_policy_states(256, 2), "test": random_policy_states(256, 3)}

    def make_inputs(states: np.ndarray, augment: bool, rng) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(states.copy()),)

    def episodes(predict, seeds=EVAL_SEEDS) -> RolloutResult:
        returns = np.array(episode_returns(predict, seeds, batch))
        return RolloutResult(float(returns.mean()), returns,
                             f"{len(returns)} greedy episodes: mean return {returns.mean():.1f}, min {returns.min():.0f}")

    def selection_episodes(predict) -> RolloutResult:
        return episodes(predict, SELECTION_SEEDS)

    return TaskData(
        name="CartPole-v1",
        raw=raw,
        targets={k: np.zeros(len(v), dtype=np.int64) for k, v in raw.items()},
        make_inputs=make_inputs,
        metric_name="mean_return",
        # The episodes are compared on return only: two float paths may break a Q-value tie apart.
        rollout=Rollout(f"{len(EVAL_SEEDS)} CartPole-v1 episodes on held-out seeds", episodes, sets_metric=True, fp32_trace_atol=None,
                        select=selection_episodes),
    )
