"""Capsule pooling: point-to-capsule attention -> keypoints and descriptors.

With per-point logits (B, N, K):

    A_nk    = softmax_k(logits)                      attention, each point spreads over K
    m_k     = sum_n A_nk                             capsule mass (in points)
    w_nk    = A_nk / max(m_k, 1e-3)                  column-normalised weights
    mu_k    = sum_n w_nk x_n                         keypoint (B, K, 3), input frame
    beta_k  = sum_n w_nk f_n                         descriptor (B, K, C)

Routing (``routing_iterations`` r > 0): r times, the logits are refined by each point's
squared distance to each keypoint, in units of the cloud's mean squared radius ``s^2``
(``s^2 = mean_n |x_n - c|^2``, ``c`` the centroid), with one learned scale per capsule:

    logits'_nk = logits_nk - gamma_k |x_n - mu_k|^2 / s^2

and the pooling above is redone with them: an E-step of k-means with learned priors, so
capsules become spatially compact where the losses ask for it. Distances between points
and exactly equivariant keypoints are exactly invariant to rotation, translation and
uniform scale, so invariant logits stay invariant. ``gamma`` starts at ``routing_init``
(default 0: a model with routing starts as the one without).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["CapsulePooling", "PooledCapsules", "pool_capsules", "keypoint_distances"]


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


def mean_squared_radius(points: Tensor) -> Tensor:
    """``s^2 = mean_n |x_n - c|^2`` ``(B,)`` of ``points`` ``(B, N, 3)`` (``c`` the centroid), floored at 1e-12."""
    centred = points - points.mean(dim=1, keepdim=True)
    return centred.pow(2).sum(-1).mean(dim=1).clamp_min(1e-12)


def keypoint_distances(points: Tensor, keypoints: Tensor, scale: Tensor | None = None) -> Tensor:
    """Squared distances ``(B, N, K)`` of ``points`` ``(B, N, 3)`` to ``keypoints`` ``(B, K, 3)``,
    divided by ``scale`` ``(B,)`` (default :func:`mean_squared_radius`: unit-free, invariant)."""
    if scale is None:
        scale = mean_squared_radius(points)
    d2 = (points.unsqueeze(2) - keypoints.unsqueeze(1)).pow(2).sum(-1)
    return d2 / scale[:, None, None]


class CapsulePooling(nn.Module):
    """Linear C -> K logits per point, then :func:`pool_capsules`, with ``routing_iterations``
    rounds of distance routing (module docstring; 0: none, as the paper)."""

    def __init__(self, feat_dim: int, num_capsules: int, routing_iterations: int = 0,
                 routing_init: float = 0.0) -> None:
        super().__init__()
        self.logits = nn.Linear(feat_dim, num_capsules)
        self.routing_iterations = int(routing_iterations)
        if self.routing_iterations > 0:
            self.routing_scale = nn.Parameter(torch.full((num_capsules,), float(routing_init)))  # gamma (K,)

    def forward(self, points: Tensor, features: Tensor) -> PooledCapsules:
        logits = self.logits(features)
        pooled = pool_capsules(points, features, logits)
        scale = mean_squared_radius(points) if self.routing_iterations > 0 else None  # once per cloud
        for _ in range(self.routing_iterations):
            d2 = keypoint_distances(points, pooled.keypoints, scale)
            pooled = pool_capsules(points, features, logits - self.routing_scale * d2)
        return pooled
