"""Canonicaliser: descriptors -> canonical keypoints -> pose by weighted Procrustes.

An MLP maps the concatenated descriptors (B, K*C) to K canonical keypoints
mu_bar (B, K, 3), centred (their uniform mean is subtracted). Weighted Procrustes
(:func:`canocaps.geometry.weighted_procrustes`, batched SVD with the determinant fix)
then gives the rotation R (B, 3, 3) and translation t (B, 3) minimising
``sum_k w_k ||R mu_k + t - mu_bar_k||^2``; the canonical cloud is ``x @ R^T + t``.
Weights ``w_k``: uniform (default, as the canonical loss) or the capsule masses.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from torch import Tensor, nn

from canocaps.model.config import CapsulesConfig

__all__ = ["Canonicalizer", "CanonicalPose"]


class CanonicalPose(NamedTuple):
    canonical_keypoints: Tensor  # (B, K, 3) regressed mu_bar, centred
    R: Tensor  # (B, 3, 3) input frame -> canonical frame
    t: Tensor  # (B, 3)


class Canonicalizer(nn.Module):
    """``forward(descriptors (B,K,C), keypoints (B,K,3), mass (B,K)) -> CanonicalPose``."""

    def __init__(self, config: CapsulesConfig) -> None:
        super().__init__()
        k, c = config.num_capsules, config.feat_dim
        dims = [k * c, *config.canon_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], k * 3))
        self.mlp = nn.Sequential(*layers)
        self.num_capsules = k
        self.weighting = config.procrustes_weights
        #: ``(src, dst, weights) -> (R, t)``; swappable for benchmarks (e.g. the
        #: per-sample SVD loop :func:`canocaps.geometry.weighted_procrustes_reference`).
        self.procrustes: Callable[..., tuple[Tensor, Tensor]] | None = None

    def regress(self, descriptors: Tensor) -> Tensor:
        """Canonical keypoints (B, K, 3), centred, from descriptors (B, K, C)."""
        b = descriptors.shape[0]
        kp = self.mlp(descriptors.reshape(b, -1)).reshape(b, self.num_capsules, 3)
        return kp - kp.mean(dim=1, keepdim=True)

    def forward(self, descriptors: Tensor, keypoints: Tensor, mass: Tensor) -> CanonicalPose:
        from canocaps.geometry import weighted_procrustes

        canon = self.regress(descriptors)
        weights = None if self.weighting == "uniform" else mass / mass.sum(dim=1, keepdim=True).clamp_min(1e-6)
        R, t = (self.procrustes or weighted_procrustes)(keypoints, canon, weights)
        return CanonicalPose(canon, R, t)
