"""Naive brute-force references for :mod:`canocaps.ops` (tests and benchmarks only).

They build the full ``(B, N, M)`` distance matrix from exact coordinate differences
(:func:`canocaps.ops._common.sqdist`) and sort it with a stable sort, so ties are
broken by the lowest index. Memory is ``O(B N M D)``: keep the inputs small.
"""
from __future__ import annotations

import torch

from canocaps.ops._common import KNN, check_k, check_pair, pad_invalid, sqdist, valid_mask

__all__ = ["knn_reference", "chamfer_reference"]


def knn_reference(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None = None,
                  lengths_y: torch.Tensor | None = None) -> KNN:
    """Brute-force :func:`canocaps.ops.knn` (always sorted, same padding rule).

    x ``(B, N, D)``, y ``(B, M, D)`` -> ``KNN(dists (B, N, k), idx (B, N, k) int64)``.
    """
    lx, ly = check_pair(x, y, lengths_x, lengths_y)
    k = check_k(k, y.shape[1])
    B, N, _ = x.shape
    M = y.shape[1]
    with torch.no_grad():
        d = sqdist(x[:, :, None, :], y[:, None, :, :])  # (B, N, M)
        my = valid_mask(ly, B, M, x.device)
        if my is not None:
            d = d.masked_fill(~my[:, None, :], float("inf"))
        idx = torch.sort(d, dim=-1, stable=True).indices[..., :k]
    dists = sqdist(x[:, :, None, :], torch.gather(y[:, None].expand(B, N, M, y.shape[2]), 2,
                                                  idx[..., None].expand(B, N, k, y.shape[2])))
    return KNN(*pad_invalid(dists, idx, lx, ly))


def chamfer_reference(x: torch.Tensor, y: torch.Tensor, x_lengths: torch.Tensor | None = None,
                      y_lengths: torch.Tensor | None = None, point_reduction: str | None = "mean",
                      batch_reduction: str | None = "mean", squared: bool = True):
    """Dense brute-force Chamfer distance with the semantics of :func:`canocaps.ops.chamfer`.

    Returns ``(loss, None)``; with ``point_reduction=None`` the loss is the pair
    ``(cham_x (B, N), cham_y (B, M))`` of per-point nearest distances (0 at padding).
    """
    lx, ly = check_pair(x, y, x_lengths, y_lengths, lnames=("x_lengths", "y_lengths"))
    B, N, _ = x.shape
    M = y.shape[1]
    d = sqdist(x[:, :, None, :], y[:, None, :, :])  # (B, N, M), differentiable
    mx = valid_mask(lx, B, N, x.device)
    my = valid_mask(ly, B, M, x.device)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    dx = d if my is None else torch.where(my[:, None, :], d, inf)
    dy = d if mx is None else torch.where(mx[:, :, None], d, inf)
    cham_x = dx.amin(2) if M else d.new_zeros(B, N)
    cham_y = dy.amin(1) if N else d.new_zeros(B, M)
    if not squared:
        cham_x = torch.where(cham_x > 0, cham_x, torch.ones_like(cham_x)).sqrt() * (cham_x > 0)
        cham_y = torch.where(cham_y > 0, cham_y, torch.ones_like(cham_y)).sqrt() * (cham_y > 0)
    if mx is not None:
        cham_x = torch.where(mx, cham_x, torch.zeros_like(cham_x))
    if my is not None:
        cham_y = torch.where(my, cham_y, torch.zeros_like(cham_y))
    if point_reduction is None:
        return (cham_x, cham_y), None
    cx, cy = cham_x.sum(1), cham_y.sum(1)
    if point_reduction == "mean":
        nx = lx.clamp(min=1) if lx is not None else torch.full((B,), max(N, 1), device=x.device)
        ny = ly.clamp(min=1) if ly is not None else torch.full((B,), max(M, 1), device=x.device)
        cx, cy = cx / nx, cy / ny
    loss = cx + cy
    if batch_reduction == "sum":
        loss = loss.sum()
    elif batch_reduction == "mean":
        loss = loss.sum() / max(B, 1)
    return loss, None
