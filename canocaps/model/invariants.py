"""Rotation-invariant per-point geometry: the input of the invariant encoder.

Every feature is built from distances, inner products and determinants of vectors that
rotate with the cloud (offsets to the centroid, to neighbours, global moment vectors),
so for any rotation ``Q``, translation ``t`` and scale ``s > 0``::

    point_invariants(s * x @ Q^T + t) == point_invariants(x)      (up to float rounding)

The determinants are *pseudo-scalars*: they change sign under a reflection, so the
features keep handedness (a left and a right part of a mirror-symmetric shape differ).

Notation, for one cloud ``x`` ``(N, 3)``: ``c`` its centroid, ``s`` its RMS radius
``sqrt(mean_n |x_n - c|^2)``, ``p_n = (x_n - c) / s`` (unit-free), ``M = mean_n p_n p_n^T``
(second moments), ``g = mean_n |p_n|^2 p_n`` (a third-moment vector, sign-defined),
``h = M g``. Local: the ``k`` nearest neighbours of each point (``canocaps.ops.knn``,
the point itself included), their offsets ``d_nj = (x_j - x_n) / s``, covariance
``S_n = mean_j d_nj d_nj^T`` with eigenvalues ``l1 >= l2 >= l3`` and smallest
eigenvector ``nrm_n`` (the normal, sign-free), and mean offset ``m_n = mean_j d_nj``.

Features (``NUM_INVARIANTS`` = 16 columns, in this order):

====  =======================================================  ======================
 #    feature                                                  kind
====  =======================================================  ======================
 0    ``|p|``                                                  radial distance
 1    ``p^T M p / tr M``                                       second moments
 2    ``p^T M^2 p / tr(M)^2``                                  second moments
 3    ``p . g``                                                signed, global
 4    ``p . h``                                                signed, global
 5    ``det[p, g, h]``                                         pseudo-scalar
 6    ``(l1 - l2) / l1``                                       local linearity
 7    ``(l2 - l3) / l1``                                       local planarity
 8    ``l3 / l1``                                              local scattering
 9    ``sqrt(l1 + l2 + l3) / median_n sqrt(tr S_n)``           local extent (density-free)
10    ``|m| / sqrt(tr S)``                                     local asymmetry
11    ``m . p / (|m| |p|)``                                    convex / concave
12    ``|nrm . p| / |p|``                                      normal vs radial
13    ``|nrm . g| / |g|``                                      normal vs global axis
14    ``det[p, m, g] / (|p| |m| |g|)``                         pseudo-scalar, local
15    ``m . g / (|m| |g|)``                                    signed, local vs global
====  =======================================================  ======================

All are computed without gradients (they depend on the input only) in float64 on the
input's device, and returned in the input's dtype.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NUM_INVARIANTS", "point_invariants", "cloud_moments"]

NUM_INVARIANTS = 16

_EPS = 1e-9


def _unit_dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(_EPS)


def cloud_moments(points: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Centroid, RMS radius and moment vectors of clouds ``points`` ``(B, N, 3)``.

    Returns ``c`` ``(B, 3)``, ``s`` ``(B,)``, ``p = (x - c) / s`` ``(B, N, 3)``,
    ``M = mean p p^T`` ``(B, 3, 3)`` and ``g = mean |p|^2 p`` ``(B, 3)`` (see the module
    docstring). Rotations act as ``p -> p Q^T``, ``M -> Q M Q^T``, ``g -> Q g``.
    """
    c = points.mean(dim=1)
    centred = points - c[:, None]
    s = centred.pow(2).sum(-1).mean(dim=1).sqrt().clamp_min(_EPS)
    p = centred / s[:, None, None]
    M = p.transpose(1, 2) @ p / p.shape[1]
    g = (p.pow(2).sum(-1, keepdim=True) * p).mean(dim=1)
    return c, s, p, M, g


@torch.no_grad()
def point_invariants(points: Tensor, k: int = 16, idx: Tensor | None = None) -> Tensor:
    """The ``NUM_INVARIANTS`` rotation-invariant features of every point (module docstring).

    Args:
        points: ``(B, N, 3)`` float clouds, ``N >= 2``; no padding.
        k: neighbours per point (the point itself included), clipped to ``N``.
        idx: optional ``(B, N, k')`` neighbour indices already computed
            (``canocaps.ops.knn(points, points, k').idx``); then ``k`` is ignored.

    Returns:
        ``(B, N, NUM_INVARIANTS)`` in ``points.dtype``; invariant to rotation,
        translation and uniform scale of each cloud, pseudo-scalars (#5, #14) odd under
        reflections.
    """
    from canocaps.ops import knn, knn_gather

    dtype = points.dtype
    x = points.double()
    b, n, _ = x.shape
    _, s, p, M, g = cloud_moments(x)
    h = (M @ g[..., None])[..., 0]
    trM = M.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(_EPS)  # (B,)
    Mp = p @ M  # M symmetric: rows are (M p_n)^T
    f_rad = p.norm(dim=-1)
    f_m1 = (p * Mp).sum(-1) / trM[:, None]
    f_m2 = (Mp * Mp).sum(-1) / trM[:, None].pow(2)
    f_g = p @ g[..., None]
    f_h = p @ h[..., None]
    gh = torch.linalg.cross(g, h, dim=-1)  # (B, 3): det[p, g, h] = p . (g x h)
    f_det = p @ gh[..., None]

    if idx is None:
        idx = knn(p, p, max(2, min(int(k), n))).idx  # (B, N, k), self included
    kk = idx.shape[-1]
    d = knn_gather(p, idx) - p[:, :, None, :]  # (B, N, k, 3)
    m = d.mean(dim=2)  # (B, N, 3)
    S = d.transpose(-1, -2) @ d / kk  # (B, N, 3, 3)
    evals, evecs = torch.linalg.eigh(S)  # ascending
    l3, l2, l1 = evals[..., 0].clamp_min(0), evals[..., 1].clamp_min(0), evals[..., 2].clamp_min(_EPS)
    nrm = evecs[..., 0]  # (B, N, 3), smallest
    tr = (l1 + l2 + l3).clamp_min(_EPS)
    extent = tr.sqrt()
    f_lin = (l1 - l2) / l1
    f_pla = (l2 - l3) / l1
    f_sca = l3 / l1
    f_ext = extent / extent.median(dim=1, keepdim=True).values.clamp_min(_EPS)
    f_asym = m.norm(dim=-1) / extent
    f_conv = _unit_dot(m, p)
    f_nrad = _unit_dot(nrm, p).abs()
    gb = g[:, None, :].expand_as(p)
    f_ng = _unit_dot(nrm, gb).abs()
    pm = torch.linalg.cross(p, m, dim=-1)
    f_loc_det = (pm * gb).sum(-1) / (p.norm(dim=-1) * m.norm(dim=-1) * g.norm(dim=-1)[:, None]).clamp_min(_EPS)
    f_mg = _unit_dot(m, gb)
    feats = torch.stack([
        f_rad, f_m1, f_m2, f_g[..., 0], f_h[..., 0], f_det[..., 0],
        f_lin, f_pla, f_sca, f_ext, f_asym, f_conv, f_nrad, f_ng, f_loc_det, f_mg], dim=-1)
    return feats.to(dtype)
