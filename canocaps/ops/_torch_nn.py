"""Chunked pure-PyTorch nearest-neighbour index search (internal).

:func:`nn_idx_torch` returns, without gradient, the indices of the ``k`` nearest
points of ``y`` for every point of ``x``. It never builds the full ``(B, N, M)``
matrix when that would exceed ``chunk_bytes``: query rows are processed in chunks.

Fast and exact at once: each chunk scores candidates with one batched matmul
(``|y|^2 - 2 x.y``; ``|x|^2`` is constant per row and dropped), which suffers from
cancellation. A row is *certified* when the gap between its k-th and (k+1)-th scores
exceeds a rigorous bound on the matmul's rounding error: then its k-set is exactly
the brute-force one, and the k members are ordered by exact distances recomputed
from coordinate differences (ties: lowest index first). Rows that fail (near ties,
duplicated points) are redone by brute force from exact differences with a stable
sort. Both clouds are first shifted by a common centre, which does not change any
distance but shrinks the magnitudes the error bound scales with.
"""
from __future__ import annotations

import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops._common import sqdist

__all__ = ["nn_idx_torch", "DEFAULT_CHUNK_BYTES", "default_chunk_bytes"]

#: Default size of one chunk of the score matrix, per device type. On CPU small
#: enough to stay in cache (which is what makes the chunked path faster than one
#: big ``cdist`` matrix), large enough that per-chunk Python overhead is small; on
#: GPUs large enough to keep kernel launches few.
DEFAULT_CHUNK_BYTES = {"cpu": 2 * 2**20, "cuda": 256 * 2**20}


def default_chunk_bytes(device: torch.device) -> int:
    """The default chunk size in bytes for tensors on ``device``."""
    return DEFAULT_CHUNK_BYTES.get(device.type, DEFAULT_CHUNK_BYTES["cuda"])


def _matmul_eps(dtype: torch.dtype, device: torch.device) -> float:
    """Machine epsilon of the matmul used for scoring (TF32 / bf16 on CUDA when enabled)."""
    eps = torch.finfo(dtype).eps
    if device.type == "cuda" and dtype == torch.float32:
        precision = torch.get_float32_matmul_precision()
        if precision == "medium":
            eps = max(eps, 2.0 ** -7)
        elif precision == "high" or torch.backends.cuda.matmul.allow_tf32:
            eps = max(eps, 2.0 ** -10)
    return eps


def _exact_rows(xq: torch.Tensor, y: torch.Tensor, rows_b: torch.Tensor, k: int,
                my: torch.Tensor | None, chunk_bytes: int) -> torch.Tensor:
    """Brute-force k-NN for selected query points: xq ``(R, D)`` of batch ``rows_b`` ``(R,)``."""
    R, D = xq.shape
    M = y.shape[1]
    out = torch.empty(R, k, dtype=torch.int64, device=xq.device)
    step = max(1, chunk_bytes // max(1, M * D * xq.element_size()))
    for s in range(0, R, step):
        bb = rows_b[s:s + step]
        d = sqdist(xq[s:s + step, None, :], y[bb])  # (r, M)
        if my is not None:
            d = d.masked_fill(~my[bb], float("inf"))
        out[s:s + step] = torch.sort(d, dim=-1, stable=True).indices[:, :k]
    return out


_LANES = 64


def _min1(score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smallest value, its index and the second-smallest value along the last axis of ``(b, r, M)``.

    ``torch.min(dim)`` (values and indices) is several times slower on CPU than the
    vectorised ``amin``. So, when M is a multiple of ``_LANES``, view the row as
    ``(M / L, L)`` "lanes" (column ``g L + l`` is in lane ``l``), take the lane minima
    with ``amin`` over the strided axis, and resolve the index and the runner-up on the
    small lane arrays. With ties the index may be any tied one; the caller only keeps
    rows whose runner-up is clearly larger, where the index is unique.
    """
    b, r, M = score.shape
    if M % _LANES or M < 2 * _LANES:
        v1, i1 = score.min(2)
        v2 = score.scatter(2, i1[..., None], float("inf")).amin(2) if M > 1 else torch.full_like(v1, float("inf"))
        return v1, i1, v2
    G = M // _LANES
    lanes = score.view(b, r, G, _LANES)
    lane_min = lanes.amin(2)  # (b, r, L)
    v1, li = lane_min.min(2)  # (b, r)
    col = torch.gather(lanes, 3, li[..., None, None].expand(b, r, G, 1)).squeeze(3)  # (b, r, G): the winning lane
    g = col.argmin(2)
    v2_in = col.scatter(2, g[..., None], float("inf")).amin(2)
    v2_out = lane_min.scatter(2, li[..., None], float("inf")).amin(2)
    return v1, g * _LANES + li, torch.minimum(v2_in, v2_out)


@torch.no_grad()
def nn_idx_torch(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None = None,
                 lengths_y: torch.Tensor | None = None, chunk_bytes: int | None = None) -> torch.Tensor:
    """Indices ``(B, N, k)`` int64 of the k nearest ``y`` points of each ``x`` point, sorted.

    x ``(B, N, D)``, y ``(B, M, D)`` (validated by the caller, ``1 <= k <= M``). Results
    for padded query rows and for slots ``j >= lengths_y[b]`` are unspecified (the
    caller applies the padding rule). Peak extra memory is about ``chunk_bytes`` plus
    ``O(B (N + M) D)``.
    """
    chunk_bytes = default_chunk_bytes(x.device) if chunk_bytes is None else int(chunk_bytes)
    if chunk_bytes < 1:
        raise CanocapsInputError(f"chunk_bytes must be a positive number of bytes, got {chunk_bytes}")
    B, N, D = x.shape
    M = y.shape[1]
    if B == 0 or N == 0:
        return torch.zeros(B, N, k, dtype=torch.int64, device=x.device)
    cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xs, ys = x.detach().to(cdtype), y.detach().to(cdtype)
    ar_m = torch.arange(M, device=x.device)
    my = None if lengths_y is None else ar_m[None, :] < lengths_y[:, None]
    if lengths_x is not None:
        xs = xs.masked_fill(~(torch.arange(N, device=x.device)[None, :] < lengths_x[:, None])[..., None], 0)
    if my is not None:
        ys = ys.masked_fill(~my[..., None], 0)
        cnt = lengths_y.clamp(min=1).to(cdtype)[:, None]
    else:
        cnt = torch.full((B, 1), float(M), dtype=cdtype, device=x.device)
    center = ys.sum(1) / cnt  # (B, D); padded points are zero and not counted
    xs = xs - center[:, None]
    ys = ys - center[:, None]
    if my is not None:
        ys = ys.masked_fill(~my[..., None], 0)
    yy = sqdist(ys, torch.zeros((), dtype=cdtype, device=x.device))  # (B, M)
    ymax = yy.amax(1)  # (B,)
    yy_s = yy if my is None else yy.masked_fill(~my, float("inf"))
    xx = sqdist(xs, torch.zeros((), dtype=cdtype, device=x.device))  # (B, N)
    # Rigorous-with-margin bound on |score error| for two compared scores: each score
    # yy - 2 x.y has error <= (D + 2) u (yy + 2|x||y|) <= (D + 2) u (xx + 2 yy); the gap
    # test compares two of them, and we keep a factor 2 of safety on top.
    tol_coef = 4.0 * (D + 2) * _matmul_eps(cdtype, x.device)
    tol = tol_coef * (xx + 2.0 * ymax[:, None])  # (B, N)

    # One bmm gives the score: [-2x, 1] . [y, |y|^2] = |y|^2 - 2 x.y (padded y: +inf).
    # k == 1 pads M to a multiple of _LANES (extra columns score +inf) for _min1.
    Mp = M if (k > 1 or M < 2 * _LANES) else -(-M // _LANES) * _LANES
    ya = torch.zeros(B, D + 1, Mp, dtype=cdtype, device=x.device)
    ya[:, D, :] = float("inf")
    ya[:, :D, :M] = ys.transpose(1, 2)
    ya[:, D, :M] = yy_s
    xa = torch.cat([xs * -2.0, torch.ones_like(xs[..., :1])], dim=-1)  # (B, N, D + 1)
    kc = min(k + 1, M)
    idx = torch.empty(B, N, k, dtype=torch.int64, device=x.device)
    bad = torch.zeros(B, N, dtype=torch.bool, device=x.device)
    row_bytes = Mp * xs.element_size() * (1 if k == 1 else 2)
    if B * row_bytes <= chunk_bytes:
        bsteps, rstep = [(0, B)], max(1, chunk_bytes // (B * row_bytes))
    else:
        bsteps, rstep = [(b, b + 1) for b in range(B)], max(1, chunk_bytes // row_bytes)
    for b0, b1 in bsteps:
        ya_b = ya[b0:b1]
        for s in range(0, N, rstep):
            e = min(N, s + rstep)
            score = torch.bmm(xa[b0:b1, s:e], ya_b)  # (b, r, Mp)
            if k == 1:
                v1, i1, v2 = _min1(score)
                bad[b0:b1, s:e] = ~((v2 - v1 > tol[b0:b1, s:e]) | torch.isinf(v1))
                idx[b0:b1, s:e, 0] = i1
                continue
            vals, cand = torch.topk(score, kc, dim=2, largest=False, sorted=True)
            if kc > k:
                bad[b0:b1, s:e] = ~((vals[..., k] - vals[..., k - 1] > tol[b0:b1, s:e])
                                    | torch.isinf(vals[..., k - 1]))
            idx[b0:b1, s:e] = cand[..., :k]
    if k > 1:
        # Order the (certified) k-sets by exact distance, ties by lowest index:
        # stable sort by index, then stable sort by distance.
        idx = torch.sort(idx, dim=2).values
        # Original coordinates and dtype: the very same arithmetic as the reference.
        yg = torch.gather(y.detach()[:, None].expand(B, N, M, D), 2, idx[..., None].expand(B, N, k, D))
        d = sqdist(x.detach()[:, :, None, :], yg)
        if my is not None:
            d = d.masked_fill(~torch.gather(my[:, None].expand(B, N, M), 2, idx), float("inf"))
        order = torch.sort(d, dim=2, stable=True).indices
        idx = torch.gather(idx, 2, order)
    if lengths_x is not None:
        bad &= torch.arange(N, device=x.device)[None, :] < lengths_x[:, None]
    if bool(bad.any()):
        bb, nn = bad.nonzero(as_tuple=True)
        idx[bb, nn] = _exact_rows(x.detach()[bb, nn], y.detach(), bb, k, my, chunk_bytes)
    return idx
