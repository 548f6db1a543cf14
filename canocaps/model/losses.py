"""The six Canonical Capsules losses, one function each, all returning a scalar.

Notation: B shapes, N points, K capsules, C descriptor channels; x (B, N, 3) points,
A (B, N, K) attention (softmax over K), m_k = sum_n A_nk (mass, in points),
w_nk = A_nk / max(m_k, 1e-3), mu (B, K, 3) keypoints, beta (B, K, C) descriptors,
(R, t) the canonicalising pose, mu_bar (B, K, 3) regressed canonical keypoints.
Every loss is averaged over the batch. Official default weights are in
:class:`canocaps.model.config.LossWeights`.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "reconstruction_loss", "localization_loss", "equilibrium_loss",
    "equivariance_loss", "invariance_loss", "canonical_loss", "LOSS_NAMES",
]

LOSS_NAMES = ("reconstruction", "localization", "equilibrium", "equivariance", "invariance", "canonical")


def reconstruction_loss(canonical_points: Tensor, decoded: Tensor) -> Tensor:
    """Chamfer distance between canonicalised input (B, N, 3) and decoded cloud (B, M, 3).

    ``mean_b [ mean_n min_m ||x_n - y_m||^2 + mean_m min_n ||x_n - y_m||^2 ]``: squared
    distances, mean over points in each direction, the two directions summed (official
    convention). Computed by :func:`canocaps.ops.chamfer` (bounded memory).
    """
    from canocaps.ops import chamfer

    loss, _ = chamfer(canonical_points, decoded, point_reduction="mean", batch_reduction="mean", squared=True)
    return loss


def localization_loss(points: Tensor, weights: Tensor, keypoints: Tensor) -> Tensor:
    """Attention-weighted spatial spread of each capsule, summed over capsules.

    ``mean_b sum_k sum_n w_nk ||x_n - mu_k||^2`` with points (B, N, 3), weights w
    (B, N, K) and keypoints mu (B, K, 3). Zero when every capsule's points coincide
    with its keypoint.
    """
    d2 = (points.unsqueeze(2) - keypoints.unsqueeze(1)).pow(2).sum(-1)  # (B, N, K)
    return (weights * d2).sum(dim=(1, 2)).mean()


def equilibrium_loss(mass: Tensor) -> Tensor:
    """Variance across capsules of the attention masses m (B, K), in points^2.

    ``mean_b mean_k (m_k - mean_k' m_k')^2`` (biased variance; masses are raw point
    counts as in the official code, so the value scales with N^2). Zero when every
    capsule holds N/K points.
    """
    return (mass - mass.mean(dim=1, keepdim=True)).pow(2).mean(dim=1).mean()


def equivariance_loss(keypoints_1: Tensor, keypoints_2: Tensor, R12: Tensor, t12: Tensor) -> Tensor:
    """Keypoints of view 1 moved by the known relative pose should be those of view 2.

    ``mean_b mean_k ||R12 mu1_k + t12 - mu2_k||^2`` with keypoints (B, K, 3),
    R12 (B, 3, 3), t12 (B, 3) mapping view 1 onto view 2.
    """
    moved = keypoints_1 @ R12.transpose(-1, -2) + t12.unsqueeze(1)
    return (moved - keypoints_2).pow(2).sum(-1).mean()


def invariance_loss(descriptors_1: Tensor, descriptors_2: Tensor) -> Tensor:
    """Descriptors of the two views equal: ``mean_{b,k,c} (beta1 - beta2)^2`` (MSE), (B, K, C)."""
    return (descriptors_1 - descriptors_2).pow(2).mean()


def canonical_loss(keypoints: Tensor, canonical_keypoints: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """Procrustes-aligned keypoints should equal the regressed canonical keypoints.

    ``mean_b mean_k ||R mu_k + t - mu_bar_k||^2`` with keypoints mu (B, K, 3) in the
    input frame, mu_bar (B, K, 3), R (B, 3, 3), t (B, 3).
    """
    aligned = keypoints @ R.transpose(-1, -2) + t.unsqueeze(1)
    return (aligned - canonical_keypoints).pow(2).sum(-1).mean()
