"""Point-wise ACNe encoder: residual blocks of (linear -> ACN -> batch norm -> ReLU).

Input points (B, N, 3) -> per-point features (B, N, C). Optionally (``knn_k > 0``) a
local edge-feature layer (EdgeConv-style: max over the k nearest neighbours of
``ReLU(BN(W [f_i, f_j - f_i]))``, neighbours from :func:`canocaps.ops.knn` on the
coordinates) follows the first layer; the paper's encoder has none.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from canocaps.model.acn import AttentiveContextNorm
from canocaps.model.config import CapsulesConfig

__all__ = ["PointBatchNorm", "ACNLayer", "ResidualBlock", "LocalEdgeLayer", "Encoder"]


class PointBatchNorm(nn.BatchNorm1d):
    """Batch norm over the channel axis of (B, N, C) point features."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        b, n, c = x.shape
        return super().forward(x.reshape(b * n, c)).reshape(b, n, c)


class ACNLayer(nn.Module):
    """linear -> ACN -> batch norm -> ReLU, on (B, N, C_in) -> (B, N, C_out)."""

    def __init__(self, c_in: int, c_out: int, groups: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.linear = nn.Linear(c_in, c_out)
        self.acn = AttentiveContextNorm(c_out, groups, eps)
        self.bn = PointBatchNorm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.acn(self.linear(x))))


class ResidualBlock(nn.Module):
    """``x + layers(x)`` with ``num_layers`` :class:`ACNLayer` of constant width."""

    def __init__(self, channels: int, num_layers: int, groups: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[ACNLayer(channels, channels, groups, eps) for _ in range(num_layers)])

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class LocalEdgeLayer(nn.Module):
    """Residual EdgeConv layer on the k nearest neighbours (by coordinates, self included)."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.linear = nn.Linear(2 * channels, channels)
        self.bn = PointBatchNorm(channels)

    def forward(self, f: Tensor, xyz: Tensor) -> Tensor:
        from canocaps.ops import knn

        b, n, c = f.shape
        k = min(self.k, n)
        idx = knn(xyz, xyz, k).idx  # (B, N, k)
        nbr = torch.gather(f, 1, idx.reshape(b, n * k, 1).expand(b, n * k, c)).reshape(b, n, k, c)
        center = f.unsqueeze(2).expand(b, n, k, c)
        edge = self.linear(torch.cat([center, nbr - center], dim=-1))  # (B, N, k, C)
        edge = torch.relu(self.bn(edge.reshape(b, n * k, c))).reshape(b, n, k, c)
        return f + edge.amax(dim=2)


class Encoder(nn.Module):
    """ACNe encoder. ``forward(points (B, N, 3)) -> features (B, N, C)``."""

    def __init__(self, config: CapsulesConfig) -> None:
        super().__init__()
        c, g = config.feat_dim, config.num_groups
        self.center_input = config.center_input
        self.stem = ACNLayer(3, c, g, config.eps)
        self.local = LocalEdgeLayer(c, config.knn_k) if config.knn_k > 0 else None
        self.blocks = nn.Sequential(
            *[ResidualBlock(c, config.layers_per_block, g, config.eps) for _ in range(config.num_blocks)])

    def forward(self, points: Tensor) -> Tensor:
        x = points - points.mean(dim=1, keepdim=True) if self.center_input else points
        f = self.stem(x)
        if self.local is not None:
            f = self.local(f, x)
        return self.blocks(f)
