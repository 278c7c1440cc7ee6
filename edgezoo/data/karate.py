"""torch-geometric's KarateClub (Zachary's club, 34 members, 4 communities, shipped with the
package) as node classification. One sample is the whole graph: node features and the dense,
symmetric-normalised adjacency D^-1/2 (A + I) D^-1/2. Nodes are split per class with a fixed seed;
a split's targets mark the other nodes -1."""

from __future__ import annotations

import numpy as np
import torch

from .base import TaskData


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """GCN's propagation matrix, dense: what GCNConv's scatter-based message passing computes."""
    adj = torch.zeros(num_nodes, num_nodes)
    adj[edge_index[1], edge_index[0]] = 1.0
    adj = adj + torch.eye(num_nodes)
    d = adj.sum(1).pow(-0.5)
    return d[:, None] * adj * d[None, :]


def load_karate(input_shape: tuple[int, ...], seed: int = 1234) -> TaskData:
    from torch_geometric.datasets import KarateClub

    graph = KarateClub()[0]
    n = graph.num_nodes
    labels = graph.y.numpy().astype(np.int64)
    rng = np.random.default_rng(seed)
    split_of = np.empty(n, dtype=object)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        a, b = max(1, round(0.5 * len(members))), max(1, round(0.2 * len(members)))
        split_of[members[:a]], split_of[members[a : a + b]], split_of[members[a + b :]] = "train", "val", "test"
    features = graph.x.numpy().astype(np.float32)
    adjacency = normalized_adjacency(graph.edge_index, n).numpy()
    raw = np.stack([features, adjacency])[None]          # one sample: (1, 2, n, n)
    targets = {s: np.where(split_of == s, labels, -1)[None] for s in ("train", "val", "test")}
    test_labels = labels[split_of == "test"]
    majority = float(np.mean(test_labels == np.bincount(labels[split_of == "train"]).argmax()))

    def make_inputs(raw_batch: np.ndarray, augment: bool, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        return torch.from_numpy(raw_batch[:, 0].copy()), torch.from_numpy(raw_batch[:, 1].copy())

    return TaskData(
        name="karate",
        raw={s: raw for s in targets},
        targets=targets,
        make_inputs=make_inputs,
        baseline=("majority class", majority),
        min_train_batch=1,
    )
