"""Canonical frame from learned, attention-weighted moments of the points.

With invariant per-point weights ``w_n >= 0`` (learned from invariant features):

    c    = sum_n w_n x_n / sum_n w_n                          weighted centroid (B, 3)
    C    = sum_n w_n (x_n - c)(x_n - c)^T / sum_n w_n          weighted covariance (B, 3, 3)
    e_j  = eigenvectors of C, by decreasing eigenvalue l_1 >= l_2 >= l_3
    sign = sign of sum_n v_n ((x_n - c) . e_j)^3 for j = 1, 2   (v_n: second learned weights)
    R    = [e_1; e_2; e_1 x e_2]  (rows; a proper rotation),  t = -R c

so the canonical cloud is ``x @ R^T + t``.

**Area weights** (``area_k > 0``): the moments are integrals over the surface, and a
sample's plain mean is a Monte-Carlo estimate of them whose error falls only as
``N^-1/2``: two independent 512-point samples of one shape give PCA frames a median
10 degrees apart. Weighting each point by the area it stands for -- the mean squared
distance to its ``area_k`` nearest other points (:func:`point_areas`, ``~ 1 / density``)
-- turns the mean into a quadrature that cancels most of the sample's clumping, and
also undoes scanners' density changes; isolated outliers get no weight. The learned
weights multiply it. On the 420 procedural validation shapes (independent 512-point
samples, ``area_k`` 10) the untrained frame's disagreement falls from 67.0 / 9.6 to
54.3 / 4.1 degrees (mean / median; ``tools/choose_frame_weighting.py``).

Because ``w`` and ``v`` are invariant, ``R`` is exactly equivariant (``x -> x Q^T`` gives ``R -> R Q^T``) wherever the eigenvalues are
distinct and the third moments non-zero. With uniform weights it *is* the PCA frame
(:func:`canocaps.geometry.pca_frame`); :class:`MomentFrame` starts there (its weight
heads are initialised to constants) and training moves the weights to parts of the
shape that make the frame well conditioned (large eigenvalue gaps, large third
moments) and stable under resampling.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MomentFrame", "MomentPose", "point_areas", "weighted_moment_frame"]

_EPS = 1e-12
#: a point whose area is more than this multiple of its cloud's median is taken for an
#: outlier (isolated: scanner speckle, a stray sample) and gets weight 0 (chosen on the
#: real-mesh validation pairs, see :func:`point_areas`)
OUTLIER_AREA_RATIO = 5.0


class MomentPose(NamedTuple):
    R: Tensor  # (B, 3, 3) rows e1, e2, e3
    t: Tensor  # (B, 3)
    centroid: Tensor  # (B, 3) weighted centroid
    covariance: Tensor  # (B, 3, 3) weighted covariance
    eigenvalues: Tensor  # (B, 3) decreasing
    skew: Tensor  # (B, 3) third moment along e_j / l_j^1.5 (axes detached, before the sign fix)
    weights: Tensor  # (B, N) normalised covariance weights (sum 1)
    sign_weights: Tensor  # (B, N) normalised third-moment weights (sum 1)


def weighted_moment_frame(points: Tensor, weights: Tensor | None = None,
                          sign_weights: Tensor | None = None) -> MomentPose:
    """Frame of ``points`` ``(B, N, 3)`` from weighted moments (module docstring).

    Args:
        weights: ``(B, N)`` non-negative (None: uniform -- the PCA frame).
        sign_weights: ``(B, N)`` non-negative weights of the third moments (None: ``weights``).
    Returns:
        :class:`MomentPose`; gradients flow into the weights through the centroid,
        the covariance and its eigenvalues and the third moments, not through the
        axes (``R`` is a constant for autograd, ``t`` is not).
    """
    b, n, _ = points.shape
    w = points.new_ones(b, n) if weights is None else weights
    w = w / w.sum(dim=1, keepdim=True).clamp_min(_EPS)
    v = w if sign_weights is None else sign_weights / sign_weights.sum(dim=1, keepdim=True).clamp_min(_EPS)
    c = (w.unsqueeze(-1) * points).sum(dim=1)
    xc = points - c[:, None]
    cov = (w.unsqueeze(-1) * xc).transpose(1, 2) @ xc
    evals, evecs = torch.linalg.eigh(cov)
    lam = evals.flip(-1)
    # The axes carry no gradient: eigenvector derivatives blow up where eigenvalues meet.
    # The weights learn through the centroid, the eigenvalues and the third moments.
    axes = evecs.flip(-1).transpose(1, 2).detach()  # rows e1, e2, e3
    proj_fixed = xc @ axes.transpose(1, 2)
    m3 = (v.unsqueeze(-1) * proj_fixed.pow(3)).sum(dim=1)  # (B, 3)
    skew = m3 / lam.detach().clamp_min(_EPS).pow(1.5)
    sign = torch.where(m3.detach() < 0, -torch.ones_like(m3), torch.ones_like(m3))
    e1 = axes[:, 0] * sign[:, :1]
    e2 = axes[:, 1] * sign[:, 1:2]
    e3 = torch.linalg.cross(e1, e2, dim=-1)
    R = torch.stack([e1, e2, e3], dim=1)
    t = -(R @ c[..., None])[..., 0]
    return MomentPose(R, t, c, cov, lam, skew, w, v)


@torch.no_grad()
def point_areas(points: Tensor, k: int, outlier_ratio: float | None = None, nearest: Any = None) -> Tensor:
    """Area each point of a surface sample stands for, up to a constant per cloud.

    Args:
        points: ``(B, N, 3)`` clouds without padding, ``N >= 2``.
        k: neighbours per point, the point itself not counted (clipped to ``N - 1``).
        outlier_ratio: points whose area exceeds this multiple of the cloud's median
            are outliers and get (almost) no weight (None: :data:`OUTLIER_AREA_RATIO`, 5).
            Density changes of about 3x are still undone (the estimate of a single point
            scatters; ``tests/test_model_equivariant.py``). On the 130 real-mesh validation
            pairs (no-ICP registration with the network's frame, recall clean / noisy /
            sparse) no rejection gave 0.485 /
            0.008 / 0.462: 5 % outliers, isolated and so heavily weighted, wrecked the
            noisy frames. 5 gave 0.485 / 0.338 / 0.462 (6: noisy 0.269; 4: 0.369, clean
            0.462; clipping at 3 instead of rejecting: 0.500 / 0.115 / 0.477; rejecting
            against the neighbours' median area instead of the cloud's: at best 0.438 /
            0.354 / 0.462).
        nearest: the cloud's own nearest neighbours, sorted, self included, with at least
            ``k + 1`` of them (a :class:`canocaps.ops.KNN` from
            ``knn(points, points, k')``, ``k' > k``: the network shares its encoder's);
            None computes them.

    Returns:
        ``(B, N)``, the mean *squared* distance from each point to its ``k`` nearest
        other points (``canocaps.ops.knn``), floored at a millionth of the cloud's
        median so duplicated points and outliers keep a tiny weight. Invariant to
        rotation and translation; scales with the square of a uniform scale, which normalised weights
        do not see. No gradient.
    """
    from canocaps.ops import knn

    kk = max(1, min(int(k), points.shape[1] - 1))
    ratio = OUTLIER_AREA_RATIO if outlier_ratio is None else float(outlier_ratio)
    if nearest is None or nearest.dists.shape[-1] < kk + 1:
        nearest = knn(points, points, kk + 1)
    area = nearest.dists[..., 1:kk + 1].mean(dim=-1)  # (B, N) mean squared distance, self dropped
    median = area.median(dim=1, keepdim=True).values
    area = torch.where(area > median * ratio, torch.zeros_like(area), area)
    return torch.maximum(area, (median * 1e-6).clamp_min(_EPS))


class MomentFrame(nn.Module):
    """Two invariant weight heads on point features -> :func:`weighted_moment_frame`.

    ``forward(points (B, N, 3), features (B, N, C)) -> MomentPose``. Weights are
    ``softplus(linear(features)) ** weight_power``, initialised to the constant 1 (zero
    linear weights), so an untrained frame equals the PCA frame -- with ``area_k > 0``
    the area-weighted PCA frame: both weights are multiplied by :func:`point_areas`.
    """

    def __init__(self, feat_dim: int, weight_power: float = 1.0, sign_power: float | None = None,
                 area_k: int = 0) -> None:
        super().__init__()
        #: neighbours of the area estimate multiplying both weights (0 = no area weights).
        self.area_k = int(area_k)
        #: exponents applied to the learned covariance and third-moment weights: 1 = as
        #: trained, 0 = uniform (the PCA frame); in between shrinks the weighting towards
        #: uniform (chosen on validation data). ``sign_power`` None: the same as ``weight_power``.
        self.weight_power = float(weight_power)
        self.sign_power = self.weight_power if sign_power is None else float(sign_power)
        self.heads = nn.Linear(feat_dim, 2)
        nn.init.zeros_(self.heads.weight)
        nn.init.constant_(self.heads.bias, float(torch.log(torch.expm1(torch.tensor(1.0)))))

    def point_weights(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(w, v)``, each ``(B, N)`` positive: covariance and third-moment weights."""
        wv = F.softplus(self.heads(features))
        w, v = wv[..., 0], wv[..., 1]
        if self.weight_power != 1.0:
            w = w.clamp_min(1e-12).pow(self.weight_power)
        if self.sign_power != 1.0:
            v = v.clamp_min(1e-12).pow(self.sign_power)
        return w, v

    def forward(self, points: Tensor, features: Tensor, nearest: Any = None) -> MomentPose:
        """Frame of ``points`` ``(B, N, 3)`` from ``features`` ``(B, N, C)``; ``nearest``: see :func:`point_areas`."""
        w, v = self.point_weights(features)
        if self.area_k > 0:
            area = point_areas(points.detach(), self.area_k, nearest=nearest).to(w.dtype)
            w, v = w * area, v * area
        return weighted_moment_frame(points, w, v)
