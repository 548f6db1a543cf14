"""Capsule pooling: point-to-capsule attention -> keypoints and descriptors.

With per-point logits (B, N, K):

    A_nk    = softmax_k(logits)                      attention, each point spreads over K
    m_k     = sum_n A_nk                             capsule mass (in points)
    w_nk    = A_nk / max(m_k, 1e-3)                  column-normalised weights
    mu_k    = sum_n w_nk x_n                         keypoint (B, K, 3), input frame
    beta_k  = sum_n w_nk f_n                         descriptor (B, K, C)
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["CapsulePooling", "PooledCapsules", "pool_capsules"]


class PooledCapsules(NamedTuple):
    attention: Tensor  # (B, N, K) softmax over K
    mass: Tensor  # (B, K) sum_n A_nk
    weights: Tensor  # (B, N, K) A / max(mass, 1e-3)
    keypoints: Tensor  # (B, K, 3)
    descriptors: Tensor  # (B, K, C)


def pool_capsules(points: Tensor, features: Tensor, logits: Tensor, min_mass: float = 1e-3) -> PooledCapsules:
    """Pool ``points`` (B, N, 3) and ``features`` (B, N, C) by ``logits`` (B, N, K)."""
    attention = torch.softmax(logits, dim=-1)
    mass = attention.sum(dim=1)
    weights = attention / mass.clamp_min(min_mass).unsqueeze(1)
    wt = weights.transpose(1, 2)  # (B, K, N)
    return PooledCapsules(attention, mass, weights, wt @ points, wt @ features)


class CapsulePooling(nn.Module):
    """Linear C -> K logits per point, then :func:`pool_capsules`."""

    def __init__(self, feat_dim: int, num_capsules: int) -> None:
        super().__init__()
        self.logits = nn.Linear(feat_dim, num_capsules)

    def forward(self, points: Tensor, features: Tensor) -> PooledCapsules:
        return pool_capsules(points, features, self.logits(features))
