"""A 2-layer GCN (Kipf & Welling 2017) on KarateClub, built from torch-geometric's GCNConv.

The parameters are GCNConv's own (``conv1.lin.weight``, ``conv1.bias``, ...), but the forward pass
propagates with a dense normalised adjacency given as an input: LiteRT has no scatter ops, and a
dense matmul is what every runtime accelerates. ``propagate_sparse`` runs PyG's own message passing
on the same weights; the tests hold the two equal.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.karate import load_karate
from ..registry import InputSpec, ModelSpec, Stage, TrainRecipe, register


class GCN(nn.Module):
    def __init__(self, in_features: int = 34, hidden: int = 16, num_classes: int = 4, dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(in_features, hidden)
        self.conv2 = GCNConv(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        # features (batch, nodes, in), adjacency (batch, nodes, nodes) -> logits (batch, nodes, classes)
        h = torch.relu(adjacency @ self.conv1.lin(self.dropout(features)) + self.conv1.bias)
        return adjacency @ self.conv2.lin(self.dropout(h)) + self.conv2.bias

    def propagate_sparse(self, features: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """The same network through PyG's scatter-based GCNConv (one graph, no batch axis)."""
        return self.conv2(torch.relu(self.conv1(features, edge_index)), edge_index)


register(
    ModelSpec(
        name="gcn",
        task="node classification",
        dataset="KarateClub (torch-geometric), 34 nodes, 4 communities, per-class 50/20/30 node split",
        description="2-layer GCN (GCNConv), dense normalised adjacency input",
        builder=GCN,
        inputs=(InputSpec("features", (1, 34, 34)), InputSpec("adjacency", (1, 34, 34), value_range=(0.0, 0.5))),
        load_data=load_karate,
        metric_name="accuracy",
        min_metric=0.8,
        # Trains in about a second: the tests use the full recipe (100 epochs scored 82%, 200 scored 100%).
        recipe=TrainRecipe(stages=(Stage(200, 1e-2),), batch_size=1, weight_decay=5e-4),
    )
)
