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

Small problems (:func:`nn1_dense_torch`, ``k = 1``, used by :func:`canocaps.ops.chamfer`
for both directions and by :func:`canocaps.ops.knn` with ``k = 1``): when one batch
element's whole padded ``N x M`` score matrix fits :data:`DENSE_BYTES` (or an explicit
``chunk_bytes``), it is built once per group of batch elements and BOTH the row minima
(x -> y) and the column minima (y -> x) are read from it, with the same certification
and exact fallback; the indices are identical to the chunked path's.
"""
from __future__ import annotations

import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops._common import sqdist

__all__ = ["nn_idx_torch", "nn1_dense_torch", "finish_candidates", "resolve_chunk_bytes", "dense_fits", "DEFAULT_CHUNK_BYTES", "DENSE_BYTES",
           "default_chunk_bytes"]

#: Default size of one chunk of the score matrix, per device type. On CPU small
#: enough to stay in cache (which is what makes the chunked path faster than one
#: big ``cdist`` matrix), large enough that per-chunk Python overhead is small; on
#: GPUs large enough to keep kernel launches few.
DEFAULT_CHUNK_BYTES = {"cpu": 2 * 2**20, "cuda": 256 * 2**20}


#: Budget of the small-problem path (:func:`nn1_dense_torch`) when ``chunk_bytes`` is
#: not given: the whole (padded) ``N x M`` float32 score matrix of ONE batch element
#: must fit (4 MiB on CPU: a 1024 x 1024 cloud pair). Batch elements are processed in
#: groups that fit the budget. An explicit ``chunk_bytes`` is the budget instead.
DENSE_BYTES = {"cpu": 4 * 2**20, "cuda": 256 * 2**20}


def default_chunk_bytes(device: torch.device) -> int:
    """The default chunk size in bytes for tensors on ``device``."""
    return DEFAULT_CHUNK_BYTES.get(device.type, DEFAULT_CHUNK_BYTES["cuda"])


def resolve_chunk_bytes(chunk_bytes: int | None, device: torch.device) -> int:
    """``chunk_bytes``, or the device's default when None; :class:`CanocapsInputError` when < 1."""
    chunk_bytes = default_chunk_bytes(device) if chunk_bytes is None else int(chunk_bytes)
    if chunk_bytes < 1:
        raise CanocapsInputError(f"chunk_bytes must be a positive number of bytes, got {chunk_bytes}")
    return chunk_bytes


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


def _lane_pad(P: int) -> int:
    """Padded length of a point axis for the lane-minimum search of :func:`_min1`."""
    return P if P < 2 * _LANES else -(-P // _LANES) * _LANES


def dense_fits(N: int, M: int, elem: int, device: torch.device, chunk_bytes: int | None) -> bool:
    """True when one batch element's padded ``N x M`` score matrix fits the dense budget."""
    budget = DENSE_BYTES.get(device.type, DENSE_BYTES["cuda"]) if chunk_bytes is None else int(chunk_bytes)
    return _lane_pad(N) * _lane_pad(M) * elem <= budget


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
    g = col.min(2).indices  # (faster than argmin on CPU)
    v2_in = col.scatter(2, g[..., None], float("inf")).amin(2)
    v2_out = lane_min.scatter(2, li[..., None], float("inf")).amin(2)
    return v1, g * _LANES + li, torch.minimum(v2_in, v2_out)



def _min1_cols(score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_min1` along axis 1 of ``(b, N, M)`` for short axes (no lanes)."""
    v1, i1 = score.min(1)
    if score.shape[1] == 1:
        return v1, i1, torch.full_like(v1, float("inf"))
    v2 = score.scatter(1, i1[:, None], float("inf")).amin(1)
    return v1, i1, v2


def _min1_both(score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row AND column minima of ``(b, P, P)`` (P a multiple of ``_LANES``, >= 2 lanes deep).

    Like :func:`_min1` for the rows and the columns at once: one strided ``amin`` pass
    per direction gives the lane minima, then the small follow-up ops run ONCE on
    the rows' and the columns' lane arrays stacked together (at 1k points the fixed
    cost of each small op matters more than its arithmetic). Returns ``(v1, idx, v2)``
    of shape ``(b, 2 P)``: entries ``[:, :P]`` are per row (index of a column), the rest
    per column (index of a row).
    """
    b, P, _ = score.shape
    G, L = P // _LANES, _LANES
    rows = score.view(b, P, G, L)
    cols = score.view(b, G, L, P)
    lane_min = torch.cat([rows.amin(2), cols.amin(1).transpose(1, 2)], 1)  # (b, 2P, L)
    v1, li = lane_min.min(2)  # (b, 2P)
    v2_out = lane_min.scatter(2, li[..., None], float("inf")).amin(2)
    col_r = torch.gather(rows, 3, li[:, :P, None, None].expand(b, P, G, 1)).view(b, P, G)
    col_c = torch.gather(cols, 2, li[:, None, None, P:].expand(b, G, 1, P)).view(b, G, P)
    col = torch.cat([col_r, col_c.transpose(1, 2)], 1)  # (b, 2P, G): the winning lane
    g = col.min(2).indices  # (faster than argmin on CPU)
    v2_in = col.scatter(2, g[..., None], float("inf")).amin(2)
    return v1, g * L + li, torch.minimum(v2_in, v2_out)


def _exact_nn1(xq: torch.Tensor, y: torch.Tensor, rows_b: torch.Tensor, my: torch.Tensor | None) -> torch.Tensor:
    """Brute-force nearest index ``(R,)`` for query points xq ``(R, D)`` of batch ``rows_b``.

    Exact distances (:func:`sqdist`, the reference's arithmetic), then ``argmin``, which
    PyTorch documents to return the first minimal index: ties go to the lowest index.
    """
    R, D = xq.shape
    M = y.shape[1]
    out = torch.empty(R, dtype=torch.int64, device=xq.device)
    step = max(1, DENSE_BYTES["cpu"] // max(1, M * D * y.element_size()))
    for s in range(0, R, step):
        bb = rows_b[s:s + step]
        d = sqdist(xq[s:s + step, None, :], y[bb])  # (r, M)
        if my is not None:
            d = d.masked_fill(~my[bb], float("inf"))
        out[s:s + step] = d.argmin(1)
    return out


def _augment(p: torch.Tensor, pp: torch.Tensor, P: int, x_side: bool) -> torch.Tensor:
    """``[-2p, 1, |p|^2]`` (x side) or ``[p, |p|^2, 1]`` (y side), ``(B, P, D + 2)``; rows
    beyond the real ones are lane padding ``[0, 1, inf]`` / ``[0, inf, 1]`` (score +inf;
    each inf meets a constant 1, never a 0)."""
    B, n, D = p.shape
    one = torch.ones(B, n, 1, dtype=p.dtype, device=p.device)
    a = torch.cat([p * -2.0, one, pp[..., None]] if x_side else [p, pp[..., None], one], -1)
    if P > n:
        pad = torch.zeros(D + 2, dtype=p.dtype, device=p.device)
        pad[D] = 1 if x_side else float("inf")
        pad[D + 1] = float("inf") if x_side else 1
        a = torch.cat([a, pad.expand(B, P - n, D + 2)], 1)
    return a


@torch.no_grad()
def nn1_dense_torch(x: torch.Tensor, y: torch.Tensor, lengths_x: torch.Tensor | None = None,
                    lengths_y: torch.Tensor | None = None, both: bool = True,
                    chunk_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Small-problem path: nearest-neighbour indices in BOTH directions from one score matrix.

    x ``(B, N, D)``, y ``(B, M, D)`` (validated, ``N, M >= 1``; use when
    :func:`dense_fits`). Returns ``(idx_x (B, N), idx_y (B, M) or None)``: for each x point
    the index of its nearest y point and (``both``) for each y point that of its nearest
    x point, exact (ties: lowest index), the same as :func:`nn_idx_torch` with ``k = 1``.
    Padded entries are unspecified but in range (the caller applies the padding rule).

    Per group of batch elements one bmm builds the full approximate squared distance
    ``|x|^2 + |y|^2 - 2 x.y`` (both clouds centred on y's centroid); a row minimum
    (and a column minimum) is certified when the runner-up exceeds it by more than a
    bound on the rounding error of the two scores; the few uncertified rows/columns
    are redone by brute force from exact differences. Memory: one ``(b, N, M)`` matrix
    within the dense budget, plus ``O(B (N + M) D)``.
    """
    B, N, D = x.shape
    M = y.shape[1]
    dev = x.device
    cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xs, ys = x.detach().to(cdtype), y.detach().to(cdtype)
    mx = None if lengths_x is None else torch.arange(N, device=dev)[None, :] < lengths_x[:, None]
    my = None if lengths_y is None else torch.arange(M, device=dev)[None, :] < lengths_y[:, None]
    if my is not None:
        ys = ys.masked_fill(~my[..., None], 0)
        center = ys.sum(1, keepdim=True) / lengths_y.clamp(min=1).to(cdtype)[:, None, None]
    else:
        center = ys.mean(1, keepdim=True)
    xs = xs - center
    ys = ys - center
    if mx is not None:
        xs = xs.masked_fill(~mx[..., None], 0)
    if my is not None:
        ys = ys.masked_fill(~my[..., None], 0)
    xx, yy = (xs * xs).sum(-1), (ys * ys).sum(-1)  # (B, N), (B, M); padding: 0
    # |S - d| <= (2 gamma_{D+2} + gamma_D)(|x|^2 + |y|^2) per score (dot product of D + 2
    # terms plus the rounding of |x|^2, |y|^2); twice that for a comparison, and a factor
    # 2 of safety on top (eps = 2 u gives another).
    coef = 2.0 * (3 * D + 4) * _matmul_eps(cdtype, dev)
    tol_x = coef * (xx + yy.amax(1, keepdim=True))  # (B, N)
    tol_y = coef * (yy + xx.amax(1, keepdim=True)) if both else None  # (B, M)
    square = both and _lane_pad(N) == _lane_pad(M) and _lane_pad(N) % _LANES == 0
    Np = Mp = _lane_pad(max(N, M)) if square else None
    if not square:
        Np, Mp = (_lane_pad(N) if both else N), _lane_pad(M)
    inf = float("inf")
    xa = _augment(xs, xx if mx is None else xx.masked_fill(~mx, inf), Np, True)  # (B, Np, D + 2)
    ya = _augment(ys, yy if my is None else yy.masked_fill(~my, inf), Mp, False)  # (B, Mp, D + 2)
    budget = DENSE_BYTES.get(dev.type, DENSE_BYTES["cuda"]) if chunk_bytes is None else int(chunk_bytes)
    step = max(1, budget // (Np * Mp * xs.element_size()))
    ix, vx1, vx2, iy, vy1, vy2 = [], [], [], [], [], []
    buf = torch.empty(min(step, B), Np, Mp, dtype=cdtype, device=dev)  # reused: no page faults per group
    for b0 in range(0, B, step):
        nb = min(step, B - b0)
        score = torch.bmm(xa[b0:b0 + nb], ya[b0:b0 + nb].transpose(1, 2), out=buf[:nb])  # (b, Np, Mp)
        if square:
            v1, i1, v2 = _min1_both(score)
            ix.append(i1[:, :N]), vx1.append(v1[:, :N]), vx2.append(v2[:, :N])
            iy.append(i1[:, Np:Np + M]), vy1.append(v1[:, Np:Np + M]), vy2.append(v2[:, Np:Np + M])
            continue
        v1, i1, v2 = _min1(score)
        ix.append(i1[:, :N]), vx1.append(v1[:, :N]), vx2.append(v2[:, :N])
        if both:
            v1, i1, v2 = _min1_cols(score)
            iy.append(i1[:, :M]), vy1.append(v1[:, :M]), vy2.append(v2[:, :M])
    cat = (lambda t: t[0]) if len(ix) == 1 else (lambda t: torch.cat(t, 0))  # noqa: E731
    idx_x = cat(ix).clamp(max=M - 1)  # rows without a real partner score +inf: keep in range
    bad_x = ~(cat(vx2) - cat(vx1) > tol_x)
    if mx is not None:
        bad_x &= mx
    if my is not None:  # rows without a real partner are padding for the caller
        bad_x &= (lengths_y > 0)[:, None]
    if bool(bad_x.any()):
        bb, nn = bad_x.nonzero(as_tuple=True)
        idx_x[bb, nn] = _exact_nn1(x.detach()[bb, nn], y.detach(), bb, my)
    if not both:
        return idx_x, None
    idx_y = cat(iy).clamp(max=N - 1)
    bad_y = ~(cat(vy2) - cat(vy1) > tol_y)
    if my is not None:
        bad_y &= my
    if mx is not None:
        bad_y &= (lengths_x > 0)[:, None]
    if bool(bad_y.any()):
        bb, mm = bad_y.nonzero(as_tuple=True)
        idx_y[bb, mm] = _exact_nn1(y.detach()[bb, mm], x.detach(), bb, mx)
    return idx_x, idx_y


@torch.no_grad()
def nn_idx_torch(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None = None,
                 lengths_y: torch.Tensor | None = None, chunk_bytes: int | None = None) -> torch.Tensor:
    """Indices ``(B, N, k)`` int64 of the k nearest ``y`` points of each ``x`` point, sorted.

    x ``(B, N, D)``, y ``(B, M, D)`` (validated by the caller, ``1 <= k <= M``). Results
    for padded query rows and for slots ``j >= lengths_y[b]`` are unspecified (the
    caller applies the padding rule). Peak extra memory is about ``chunk_bytes`` plus
    ``O(B (N + M) D)``.
    """
    chunk_bytes = resolve_chunk_bytes(chunk_bytes, x.device)
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
    return finish_candidates(x, y, idx, bad, lengths_x, lengths_y, chunk_bytes)


def finish_candidates(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, bad: torch.Tensor,
                      lengths_x: torch.Tensor | None, lengths_y: torch.Tensor | None,
                      chunk_bytes: int | None = None) -> torch.Tensor:
    """Exact, sorted k-NN indices ``(B, N, k)`` from candidate k-sets (shared by the fast paths).

    ``idx`` ``(B, N, k)``: for every row whose ``bad`` ``(B, N)`` is False, a k-set of ``y``
    that is *certified* to be the brute-force one (any order; a ragged ``y``'s padding slots
    may hold padded indices, which sort last); rows with ``bad`` True are redone by brute
    force. The k members are ordered by distances recomputed from coordinate differences in
    the inputs' dtype (the reference's arithmetic), ties by lowest index.
    """
    chunk_bytes = resolve_chunk_bytes(chunk_bytes, x.device)
    B, N, k = idx.shape
    M, D = y.shape[1], y.shape[2]
    my = None if lengths_y is None else torch.arange(M, device=x.device)[None, :] < lengths_y[:, None]
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
        bad = bad & (torch.arange(N, device=x.device)[None, :] < lengths_x[:, None])
    if bool(bad.any()):
        bb, nn = bad.nonzero(as_tuple=True)
        idx[bb, nn] = _exact_rows(x.detach()[bb, nn], y.detach(), bb, k, my, chunk_bytes)
    return idx
