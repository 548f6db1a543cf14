"""Naive brute-force references for :mod:`canocaps.ops` (tests and benchmarks only).

They build the full ``(B, N, M)`` distance matrix from exact coordinate differences
(:func:`canocaps.ops._common.sqdist`) and sort it with a stable sort, so ties are
broken by the lowest index. Memory is ``O(B N M D)``: keep the inputs small.
"""
from __future__ import annotations

import torch

from canocaps.ops._common import KNN, check_k, check_pair, pad_invalid, sqdist, valid_mask

__all__ = ["knn_reference", "chamfer_reference", "chamfer_cdist"]


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


def chamfer_reference(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None,
                      x_normals: torch.Tensor | None = None, y_normals: torch.Tensor | None = None,
                      weights: torch.Tensor | None = None, batch_reduction: str | None = "mean",
                      point_reduction: str | None = "mean", norm: int = 2, single_directional: bool = False,
                      abs_cosine: bool = True, *, squared: bool = True):
    """Brute-force Chamfer with the semantics of ``pytorch3d.loss.chamfer_distance`` (and of
    :func:`canocaps.ops.chamfer`): one cloud at a time, the full distance matrix, nothing shared
    with the fast path but the input checks.

    Per cloud b with n = x_lengths[b], m = y_lengths[b] real points: ``D[i, j]`` is
    ``||x_i - y_j||^2`` (norm 2; its square root with ``squared=False``) or ``||x_i - y_j||_1``
    (norm 1); ``cham_x[i] = min_j D[i, j]`` (the first j on ties), ``cham_y[j] = min_i D[i, j]``;
    normal terms ``1 - |cos(n_x[i], n_y[j*])|`` (``1 - cos`` without ``abs_cosine``); padding
    counts 0; everything times ``weights[b]``. Point reduction per cloud (mean / sum / max /
    None), directions added (max: the larger), then the batch reduction (mean divides by B,
    or by ``weights.sum()``). Returns ``(loss, loss_normals)``.
    """
    lx, ly = check_pair(x, y, x_lengths, y_lengths, lnames=("x_lengths", "y_lengths"))
    B, N, _ = x.shape
    M = y.shape[1]
    nxs = [int(lx[b]) if lx is not None else N for b in range(B)]
    nys = [int(ly[b]) if ly is not None else M for b in range(B)]
    w = [1.0] * B if weights is None else [float(v) for v in weights]
    use_normals = x_normals is not None and y_normals is not None
    if weights is not None and B and sum(w) == 0.0:
        zero = x.sum((1, 2)) * 0.0
        zero = zero if batch_reduction is None else zero.sum()
        return zero, (zero.clone() if use_normals else None)

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (P, D), (Q, D) -> (P, Q)
        diff = a[:, None, :] - b[None, :, :]
        if norm == 1:
            return diff.abs().sum(-1)
        d2 = (diff * diff).sum(-1)
        return d2 if squared else torch.where(d2 > 0, torch.where(d2 > 0, d2, torch.ones_like(d2)).sqrt(),
                                              torch.zeros_like(d2))

    def direction(a, b, na, nb, n_a, n_b, P, wb):
        """Per-point terms (P,) of a -> b (padding 0)."""
        d = dist(a[:na], b[:nb])
        vals, arg = (d.min(1) if nb else (d.new_zeros(na), torch.zeros(na, dtype=torch.int64)))
        out = torch.cat([vals, vals.new_zeros(P - na)]) * wb
        nt = None
        if use_normals:
            cos = torch.nn.functional.cosine_similarity(n_a[:na], n_b[arg], dim=1, eps=1e-6)
            t = 1 - (cos.abs() if abs_cosine else cos)
            nt = torch.cat([t, t.new_zeros(P - na)]) * wb
        return out, nt

    def reduce_points(v, n):
        if point_reduction == "max":
            return v.max() if v.numel() else v.sum()
        if point_reduction == "sum":
            return v.sum()
        return v.sum() / max(n, 1)

    per_x, per_y, red, red_n = [], [], [], []
    for b in range(B):
        cx, nxt = direction(x[b], y[b], nxs[b], nys[b], None if not use_normals else x_normals[b],
                            None if not use_normals else y_normals[b], N, w[b])
        per_x.append((cx, nxt))
        if single_directional:
            cy, nyt = None, None
        else:
            cy, nyt = direction(y[b], x[b], nys[b], nxs[b], None if not use_normals else y_normals[b],
                                None if not use_normals else x_normals[b], M, w[b])
        per_y.append((cy, nyt))
        if point_reduction is not None:
            r = reduce_points(cx, nxs[b])
            rn = reduce_points(nxt, nxs[b]) if use_normals else None
            if cy is not None:
                ry = reduce_points(cy, nys[b])
                r = torch.maximum(r, ry) if point_reduction == "max" else r + ry
                if use_normals:
                    rn = rn + reduce_points(nyt, nys[b])
            red.append(r)
            red_n.append(rn)
    if point_reduction is None:
        cham_x = torch.stack([c for c, _ in per_x]) if B else x.new_zeros(0, N)
        if single_directional:
            return cham_x, (torch.stack([n for _, n in per_x]) if use_normals else None)
        cham_y = torch.stack([c for c, _ in per_y]) if B else x.new_zeros(0, M)
        nrm = (torch.stack([n for _, n in per_x]), torch.stack([n for _, n in per_y])) if use_normals else None
        return (cham_x, cham_y), nrm
    loss = torch.stack(red) if B else x.new_zeros(0)
    loss_n = torch.stack(red_n) if (use_normals and B) else (x.new_zeros(0) if use_normals else None)

    def reduce_batch(v):
        if v is None or batch_reduction is None:
            return v
        if batch_reduction == "sum":
            return v.sum()
        return v.sum() / (sum(w) if weights is not None else max(B, 1))

    return reduce_batch(loss), reduce_batch(loss_n)


def chamfer_cdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The official Canonical Capsules code's dense Chamfer (the benchmarks' baseline).

    One ``torch.cdist`` matrix ``(B, N, M)``: squared nearest distances, mean per side,
    the two sides summed, then the batch mean. Same value as :func:`canocaps.ops.chamfer`
    with its defaults; memory ``O(B N M)``.
    """
    d = torch.cdist(x, y)  # (B, N, M) Euclidean, the dense matrix
    return (d.amin(2).square().mean(1) + d.amin(1).square().mean(1)).mean()
