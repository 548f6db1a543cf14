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
    "MOMENT_LOSS_NAMES", "frame_stability_loss", "frame_conditioning_loss", "weight_regularizer",
]

LOSS_NAMES = ("reconstruction", "localization", "equilibrium", "equivariance", "invariance", "canonical")

#: losses of the moment frame (:mod:`canocaps.model.moment_frame`), computed only for it
MOMENT_LOSS_NAMES = ("frame_stability", "frame_conditioning", "frame_weights")


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


def frame_stability_loss(pose_1, pose_2, points_1: Tensor, points_2: Tensor, R12: Tensor,
                         max_angle: float = 1.0) -> Tensor:
    """How far the moment frames of two views of one shape disagree, to first order (radians^2).

    ``pose_i`` are :class:`~canocaps.model.moment_frame.MomentPose` of the views
    ``points_i`` (B, N_i, 3); ``R12`` (B, 3, 3) maps view 1 onto view 2. The covariance
    of view 2 brought into view 1's frame, ``M = R1 R12^T C2 R12 R1^T``, is diagonal when
    the frames agree; its off-diagonal entries over the eigenvalue gaps of view 1 are the
    small rotation angles between the frames (Davis-Kahan), ``theta_ij = M_ij / (l_i - l_j)``
    (each ``theta^2`` saturated smoothly at ``max_angle^2``: ``a^2 theta^2 / (a^2 + theta^2)``). A sign flip of an axis is caught by the third
    moments: view 2's third moment along view 1's (sign-fixed) axes must be positive too
    (hinge at 0.25 of a unit skew). Symmetrised over the two views, averaged over the batch.

    Gradients reach the learned weights (through the covariances, eigenvalues and third
    moments); the axes themselves are constants. Zero when the views agree exactly and
    the skews are large.
    """
    return 0.5 * (_one_way_disagreement(pose_1, pose_2, points_2, R12, max_angle)
                  + _one_way_disagreement(pose_2, pose_1, points_1, R12.transpose(-1, -2), max_angle))


def _one_way_disagreement(ref, other, other_points: Tensor, R_ref_to_other: Tensor, max_angle: float) -> Tensor:
    axes = ref.R  # (B, 3, 3) rows, sign-fixed, constant for autograd
    M = axes @ R_ref_to_other.transpose(-1, -2) @ other.covariance @ R_ref_to_other @ axes.transpose(-1, -2)
    lam = ref.eigenvalues
    i, j = (0, 0, 1), (1, 2, 2)
    gaps = (lam[:, i] - lam[:, j]).abs().clamp_min(1e-12)
    t2 = (M[:, i, j] / gaps).pow(2)
    theta2 = max_angle ** 2 * t2 / (max_angle ** 2 + t2)  # saturates smoothly at max_angle^2: gradients stay
    moved_axes = axes @ R_ref_to_other.transpose(-1, -2)  # rows: ref axes expressed in the other view
    xc = other_points - other.centroid[:, None]
    m3 = (other.sign_weights.unsqueeze(-1) * (xc @ moved_axes.transpose(-1, -2)).pow(3)).sum(dim=1)  # (B, 3)
    skew = m3 / lam.clamp_min(1e-12).pow(1.5)
    sign = torch.relu(0.25 - skew[:, :2]).sum(-1)
    return (theta2.sum(-1) + sign).mean()


def weight_regularizer(weights: Tensor, sign_weights: Tensor) -> Tensor:
    """Keeps the moment frame's learned weights near uniform unless the frame gains from it.

    ``mean_b mean_n [log(N w_n)^2 + log(N v_n)^2]`` with normalised weights (B, N) (each
    row sums to 1): zero for uniform weights (the PCA frame), growing with every point the
    weighting singles out or suppresses.
    """
    n = weights.shape[1]
    return ((weights * n).clamp_min(1e-12).log().pow(2) + (sign_weights * n).clamp_min(1e-12).log().pow(2)).mean()


def frame_conditioning_loss(eigenvalues: Tensor, skew: Tensor, gap: float = 0.15, skew_margin: float = 0.5) -> Tensor:
    """Hinges that keep the moment frame well defined: distinct eigenvalues, non-zero skew.

    ``mean_b [ relu(gap - (l1 - l2)/l1) + relu(gap - (l2 - l3)/l1)
    + relu(skew_margin - |s1|) + relu(skew_margin - |s2|) ]`` with eigenvalues
    (B, 3) decreasing and normalised third moments ``skew`` (B, 3) (only the first
    two axes' signs are read; the third axis is their cross product).
    """
    l1 = eigenvalues[:, 0].clamp_min(1e-12)
    gaps = torch.stack([(eigenvalues[:, 0] - eigenvalues[:, 1]) / l1, (eigenvalues[:, 1] - eigenvalues[:, 2]) / l1], -1)
    return (torch.relu(gap - gaps).sum(-1) + torch.relu(skew_margin - skew[:, :2].abs()).sum(-1)).mean()
