"""Per-capsule AtlasNet-style decoder, in the canonical frame.

Capsule k owns an MLP of its own and P = N // K learned grid points g_kp (grid_dim-D).
Point p of capsule k is

    y_kp = mu_bar_k + tanh( MLP_k([beta_k, g_kp]) )

with MLP_k = Linear(C + grid_dim, H) -> BN -> ReLU -> Linear(H, H/2) -> BN -> ReLU
-> Linear(H/2, H/4) -> BN -> ReLU -> Linear(H/4, 3), H = decoder bottleneck (paper 1280).
The K MLPs run together as batched matmuls (:class:`canocaps.nn.GroupedLinear`, (K, out, in) weights); the first layer
is split into a descriptor part (computed once per capsule) plus a grid part.
Output (B, K * P, 3), capsule-major (points k*P .. k*P+P-1 belong to capsule k).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from canocaps.model.config import CapsulesConfig
from canocaps.nn import GroupedLinear

__all__ = ["GroupedLinear", "CapsuleDecoder"]


class _GroupedBN(nn.BatchNorm1d):
    """Batch norm of (B, K, H, P) with K*H channels (statistics over B and P); no copies."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        b, k, h, p = x.shape
        return super().forward(x.reshape(b, k * h, p)).reshape(b, k, h, p)


class CapsuleDecoder(nn.Module):
    """``forward(descriptors (B,K,C), canonical_keypoints (B,K,3)) -> (B, K*P, 3)``."""

    def __init__(self, config: CapsulesConfig) -> None:
        super().__init__()
        k, c, g, h = config.num_capsules, config.feat_dim, config.grid_dim, config.decoder_bottleneck
        p = config.points_per_capsule
        self.grid = nn.Parameter(torch.rand(k, g, p))  # (K, grid_dim, P), channels first
        widths = [h, max(h // 2, 1), max(h // 4, 1)]
        # first layer on [beta, grid], split: W = [W_beta, W_grid]
        bound = 1.0 / math.sqrt(c + g)
        self.w_desc = nn.Parameter(torch.empty(k, h, c).uniform_(-bound, bound))
        self.w_grid = nn.Parameter(torch.empty(k, h, g).uniform_(-bound, bound))
        self.b_in = nn.Parameter(torch.empty(k, h, 1).uniform_(-bound, bound))
        self.bns = nn.ModuleList([_GroupedBN(k * w) for w in widths])
        self.hidden = nn.ModuleList([GroupedLinear(k, a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.out = GroupedLinear(k, widths[-1], 3)

    def _head(self, x: Tensor, canonical_keypoints: Tensor) -> Tensor:
        x = torch.relu(self.bns[0](x))
        for lin, bn in zip(self.hidden, self.bns[1:]):
            x = torch.relu(bn(lin(x)))
        y = torch.tanh(self.out(x)) + canonical_keypoints.unsqueeze(-1)  # (B, K, 3, P)
        return y.transpose(2, 3).reshape(x.shape[0], -1, 3)

    def forward(self, descriptors: Tensor, canonical_keypoints: Tensor) -> Tensor:
        x = self.w_desc @ descriptors.unsqueeze(-1)  # (B, K, H, 1)
        x = x + (self.w_grid @ self.grid + self.b_in).unsqueeze(0)  # (B, K, H, P)
        return self._head(x, canonical_keypoints)

    def forward_reference(self, descriptors: Tensor, canonical_keypoints: Tensor) -> Tensor:
        """Literal per-capsule loop with the concatenated input (same result; for tests)."""
        b, k, c = descriptors.shape
        outs = []
        for i in range(k):
            grid = self.grid[i].T.unsqueeze(0).expand(b, -1, -1)  # (B, P, g)
            inp = torch.cat([descriptors[:, i:i + 1].expand(-1, grid.shape[1], -1), grid], dim=-1)
            w = torch.cat([self.w_desc[i], self.w_grid[i]], dim=1)  # (H, C + g)
            outs.append((inp @ w.T + self.b_in[i, :, 0]).transpose(1, 2))  # (B, H, P)
        return self._head(torch.stack(outs, dim=1), canonical_keypoints)
