"""Fused Triton kernels for k-NN index search (internal; imported lazily).

One program handles ``BLOCK_N`` query points of one batch element and streams the
reference cloud in tiles of ``BLOCK_M`` points. Distances are computed from exact
coordinate differences (no ``|x|^2 - 2 x.y + |y|^2`` cancellation) and folded into a
running minimum (``K == 1``) or a running sorted top-``K`` kept in registers
(``K <= 32``): the ``N x M`` matrix never exists. Ties are broken by the lowest
index, like the torch path and the references. FMA contraction is disabled so that
a distance is the same float as :func:`canocaps.ops._common.sqdist` computes (the
product-then-sum order of the references), which keeps near-ties consistent.

The kernels run on CUDA tensors, and on CPU tensors under ``TRITON_INTERPRET=1``
(set before triton is imported) -- which is how the test-suite checks their logic
without a GPU.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["nn_idx_triton"]

_BIG = tl.constexpr(2**31 - 1)  # index sentinel: "no point"


@triton.jit
def _tile_sqdist(x0, xb, yc, sxd, syd, row_ok, col_ok, D: tl.constexpr):
    """Exact squared distances (BLOCK_N, BLOCK_M) between a block of x rows and a tile of y
    columns, from coordinate differences (no |x|^2 + |y|^2 - 2xy cancellation); invalid
    columns are +inf. ``x0`` is the rows' first coordinate, already loaded."""
    diff = x0[:, None] - tl.load(yc, mask=col_ok, other=0.0)[None, :]
    d = diff * diff
    for j in tl.static_range(1, D):
        xj = tl.load(xb + j * sxd, mask=row_ok, other=0.0)
        diff = xj[:, None] - tl.load(yc + j * syd, mask=col_ok, other=0.0)[None, :]
        d = d + diff * diff
    return tl.where(col_ok[None, :], d, float("inf"))


@triton.jit
def _nn1_kernel(x_ptr, y_ptr, lx_ptr, ly_ptr, out_ptr, N,
                sxb, sxn, sxd, syb, sym, syd,
                D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    """Nearest neighbour (K = 1): running (min distance, lowest index) per query row."""
    pid_n = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    n_len = tl.load(lx_ptr + b)
    m_len = tl.load(ly_ptr + b)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n_len
    xb = x_ptr + b * sxb + rows.to(tl.int64) * sxn
    yb = y_ptr + b * syb
    x0 = tl.load(xb, mask=row_ok, other=0.0)
    best_d = tl.full((BLOCK_N,), float("inf"), x0.dtype)
    best_i = tl.full((BLOCK_N,), _BIG, tl.int32)
    for m0 in range(0, m_len, BLOCK_M):
        cols = m0 + tl.arange(0, BLOCK_M)
        col_ok = cols < m_len
        yc = yb + cols.to(tl.int64) * sym
        d = _tile_sqdist(x0, xb, yc, sxd, syd, row_ok, col_ok, D)
        tmin = tl.min(d, axis=1)
        targ = tl.min(tl.where(d == tmin[:, None], cols[None, :], _BIG), axis=1)
        upd = tmin < best_d  # strict: an earlier (lower) index wins a tie
        best_d = tl.where(upd, tmin, best_d)
        best_i = tl.where(upd, targ, best_i)
    best_i = tl.where(best_i == _BIG, -1, best_i)
    tl.store(out_ptr + b * N + rows, best_i.to(tl.int64), mask=row_ok)


@triton.jit
def _knn_kernel(x_ptr, y_ptr, lx_ptr, ly_ptr, out_ptr, N,
                sxb, sxn, sxd, syb, sym, syd,
                D: tl.constexpr, K: tl.constexpr, KP: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    """k nearest neighbours (2 <= K <= KP, KP a power of two): running sorted top-K."""
    pid_n = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    n_len = tl.load(lx_ptr + b)
    m_len = tl.load(ly_ptr + b)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n_len
    xb = x_ptr + b * sxb + rows.to(tl.int64) * sxn
    yb = y_ptr + b * syb
    x0 = tl.load(xb, mask=row_ok, other=0.0)
    kcol = tl.arange(0, KP)[None, :]
    best_d = tl.full((BLOCK_N, KP), float("inf"), x0.dtype)
    best_i = tl.full((BLOCK_N, KP), _BIG, tl.int32)
    for m0 in range(0, m_len, BLOCK_M):
        cols = m0 + tl.arange(0, BLOCK_M)
        col_ok = cols < m_len
        yc = yb + cols.to(tl.int64) * sym
        d = _tile_sqdist(x0, xb, yc, sxd, syd, row_ok, col_ok, D)
        ci = tl.where(col_ok[None, :], cols[None, :], _BIG) + tl.zeros((BLOCK_N, BLOCK_M), tl.int32)
        # Skip the merge when no row of the block has a tile point closer than its K-th.
        kth = tl.max(tl.where(kcol == K - 1, best_d, float("-inf")), axis=1)
        need = tl.max(tl.where(tl.min(d, axis=1) <= kth, 1, 0), axis=0)
        if need > 0:
            new_d = tl.full((BLOCK_N, KP), float("inf"), x0.dtype)
            new_i = tl.full((BLOCK_N, KP), _BIG, tl.int32)
            for r in range(K):
                m1 = tl.minimum(tl.min(d, axis=1), tl.min(best_d, axis=1))
                i1 = tl.minimum(tl.min(tl.where(d == m1[:, None], ci, _BIG), axis=1),
                                tl.min(tl.where(best_d == m1[:, None], best_i, _BIG), axis=1))
                new_d = tl.where(kcol == r, m1[:, None], new_d)
                new_i = tl.where(kcol == r, i1[:, None], new_i)
                hit_t = ci == i1[:, None]
                d = tl.where(hit_t, float("inf"), d)
                ci = tl.where(hit_t, _BIG, ci)
                hit_b = best_i == i1[:, None]
                best_d = tl.where(hit_b, float("inf"), best_d)
                best_i = tl.where(hit_b, _BIG, best_i)
            best_d = new_d
            best_i = new_i
    best_i = tl.where(best_i == _BIG, -1, best_i)
    out = out_ptr + b * N * K + rows[:, None] * K + kcol
    tl.store(out, best_i.to(tl.int64), mask=row_ok[:, None] & (kcol < K))


def nn_idx_triton(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None = None,
                  lengths_y: torch.Tensor | None = None) -> torch.Tensor:
    """Sorted k-NN indices ``(B, N, k)`` int64 of y points for each x point (no gradient).

    x ``(B, N, D)``, y ``(B, M, D)`` on CUDA (or CPU under ``TRITON_INTERPRET=1``),
    validated by the caller; ``1 <= k <= 32``. float64 inputs are searched in
    float64, everything else in float32. Padded rows are left 0; slots beyond
    ``lengths_y`` hold -1 (the caller applies the padding rule).
    """
    B, N, D = x.shape
    M = y.shape[1]
    out = torch.zeros(B, N, k, dtype=torch.int64, device=x.device)
    if B == 0 or N == 0:
        return out
    cdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xs = x.detach().to(cdtype)
    ys = y.detach().to(cdtype)
    lx = lengths_x if lengths_x is not None else torch.full((B,), N, dtype=torch.int64, device=x.device)
    ly = lengths_y if lengths_y is not None else torch.full((B,), M, dtype=torch.int64, device=x.device)
    lx = lx.to(torch.int32).contiguous()
    ly = ly.to(torch.int32).contiguous()
    strides = (*xs.stride(), *ys.stride())
    if k == 1:
        BLOCK_N, BLOCK_M = 64, 64
        grid = (triton.cdiv(N, BLOCK_N), B)
        _nn1_kernel[grid](xs, ys, lx, ly, out, N, *strides, D=D, BLOCK_N=BLOCK_N, BLOCK_M=BLOCK_M,
                          enable_fp_fusion=False)
    else:
        KP = triton.next_power_of_2(k)
        BLOCK_N, BLOCK_M = (32, 32) if KP <= 16 else (16, 32)
        grid = (triton.cdiv(N, BLOCK_N), B)
        _knn_kernel[grid](xs, ys, lx, ly, out, N, *strides, D=D, K=k, KP=KP,
                          BLOCK_N=BLOCK_N, BLOCK_M=BLOCK_M, enable_fp_fusion=False)
    return out
