"""Encoder whose per-point features are rotation-invariant by construction.

points (B, N, 3) --:func:`point_invariants`--> (B, N, F) --point MLP--> (B, N, C)
--local max over the k nearest neighbours (EdgeConv on invariant features and
neighbour distances)--> --global context (max over points, concatenated)--> (B, N, C).

Nothing downstream of :func:`point_invariants` sees a coordinate, so the features, the
capsule attention computed from them and the descriptors pooled from them are exactly
invariant to rotations, translations and uniform scale of the input (up to float
rounding; kNN ties aside); keypoints (attention-weighted means of the input points)
are then exactly equivariant. Handedness is kept through the pseudo-scalar features.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from canocaps.model.config import CapsulesConfig
from canocaps.model.encoder import PointBatchNorm
from canocaps.model.invariants import NUM_INVARIANTS, point_invariants

__all__ = ["InvariantEncoder"]


class _PointLayer(nn.Module):
    """linear -> batch norm -> ReLU on (B, N, C_in) -> (B, N, C_out)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(c_in, c_out)
        self.bn = PointBatchNorm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.linear(x)))


class InvariantEncoder(nn.Module):
    """``forward(points (B, N, 3)) -> features (B, N, C)``, rotation-invariant.

    Config fields used: ``feat_dim`` (C), ``local_k`` (neighbours of the invariant
    geometry and of the edge layer), ``num_blocks`` (point layers after the edge layer).
    """

    def __init__(self, config: CapsulesConfig) -> None:
        super().__init__()
        c = config.feat_dim
        self.k = int(config.local_k)
        self.stem = nn.Sequential(_PointLayer(NUM_INVARIANTS, c), _PointLayer(c, c))
        # EdgeConv W [f_i, f_j - f_i, |x_j - x_i|] split as W_c f_i + W_n f_j + w_d d_ij:
        # two per-point products and a gather instead of a (B, N, k, 2C + 1) matmul.
        self.edge_center = nn.Linear(c, c)
        self.edge_nbr = nn.Linear(c, c, bias=False)
        self.edge_dist = nn.Parameter(torch.zeros(c))
        self.mix = nn.Sequential(_PointLayer(2 * c, c), *[_PointLayer(c, c) for _ in range(max(0, config.num_blocks - 1))])

    def forward(self, points: Tensor, nearest: Any = None) -> Tensor:
        """Per-point features ``(B, N, C)`` of ``points`` ``(B, N, 3)``.

        ``nearest``: the cloud's own nearest neighbours (a :class:`canocaps.ops.KNN`, sorted,
        self included) with at least ``min(local_k, N)`` of them; None computes them.
        """
        from canocaps.ops import KNN, knn, knn_gather

        b, n, _ = points.shape
        k = max(2, min(self.k, n))
        with torch.no_grad():
            if nearest is not None and nearest.idx.shape[-1] >= k:
                nn_ = KNN(nearest.dists[..., :k], nearest.idx[..., :k])
            else:
                nn_ = knn(points, points, k)  # self included
            rms = (points - points.mean(dim=1, keepdim=True)).pow(2).sum(-1).mean(dim=1).sqrt().clamp_min(1e-9)
            dist = (nn_.dists.clamp_min(0).sqrt() / rms[:, None, None]).unsqueeze(-1)  # (B, N, k, 1)
        inv = point_invariants(points, idx=nn_.idx)
        f = self.stem(inv)  # (B, N, C)
        c = f.shape[-1]
        nbr = knn_gather(self.edge_nbr(f), nn_.idx) + dist.to(f.dtype) * self.edge_dist  # (B, N, k, C)
        # max_j relu(W_c f_i + n_ij) = relu(W_c f_i + max_j n_ij): the centre term and the ReLU
        # act on (B, N, C) only. No norm here: a (B, N*k, C) batch norm costs more than the rest.
        e = torch.relu(self.edge_center(f) + nbr.amax(dim=2))
        f = f + e
        glob = f.amax(dim=1, keepdim=True).expand(b, n, c)
        return self.mix(torch.cat([f, glob], dim=-1))
