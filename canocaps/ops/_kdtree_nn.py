"""k-nearest-neighbour index search through scipy's k-d tree, for CPU tensors (internal).

:func:`nn_idx_kdtree` returns the same indices as the brute-force reference (exact,
sorted, ties broken by the lowest index) at ``O((N + M) log M)`` instead of ``O(N M)``:
for each batch element a ``scipy.spatial.cKDTree`` of the real points of ``y`` answers
the ``k + 1`` nearest of each real point of ``x`` in float64. A row is *certified* when
the gap between its k-th and (k+1)-th squared distances exceeds a bound on the rounding
of the reference's arithmetic in the inputs' dtype; certified k-sets are then ordered by
distances recomputed from coordinate differences, and the other rows (near ties,
duplicated points) are redone by brute force, exactly as on the chunked torch path
(:func:`canocaps.ops._torch_nn.finish_candidates`). Low dimensions only pay off (a k-d
tree degrades with ``D``); ``backend="auto"`` picks it for CPU float32/float64 clouds
with ``D <= KDTREE_MAX_DIM``.
"""
from __future__ import annotations

import numpy as np
import torch

from canocaps.ops._torch_nn import finish_candidates, resolve_chunk_bytes

__all__ = ["nn_idx_kdtree", "KDTREE_MAX_DIM"]

#: Largest point dimension for which ``backend="auto"`` uses the k-d tree on CPU.
KDTREE_MAX_DIM = 4


@torch.no_grad()
def nn_idx_kdtree(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None = None,
                  lengths_y: torch.Tensor | None = None, chunk_bytes: int | None = None) -> torch.Tensor:
    """Indices ``(B, N, k)`` int64 of the k nearest ``y`` points of each ``x`` point, sorted.

    x ``(B, N, D)``, y ``(B, M, D)`` CPU tensors (validated by the caller, ``1 <= k <= M``).
    Results for padded query rows and for slots ``j >= lengths_y[b]`` are unspecified (the
    caller applies the padding rule). ``chunk_bytes`` bounds the brute-force fallback only.
    The tree queries run on ``torch.get_num_threads()`` threads.
    """
    from scipy.spatial import cKDTree

    chunk_bytes = resolve_chunk_bytes(chunk_bytes, x.device)
    B, N, D = x.shape
    M = y.shape[1]
    idx = torch.zeros(B, N, k, dtype=torch.int64)
    bad = torch.zeros(B, N, dtype=torch.bool)
    if B == 0 or N == 0:
        return idx
    xs = x.detach().to(torch.float64).numpy()
    ys = y.detach().to(torch.float64).numpy()
    # |d_ref - d| <= (D + 2) u d for the reference's sum of squared differences in the inputs'
    # dtype (u = eps / 2), the tree's float64 distances far closer: a gap above 4 (D + 2) eps d
    # between the k-th and (k+1)-th cannot be reversed by rounding (a factor 4 of safety).
    tol_coef = 4.0 * (D + 2) * max(torch.finfo(x.dtype).eps, float(np.finfo(np.float64).eps))
    workers = max(1, torch.get_num_threads())
    for b in range(B):
        n = N if lengths_x is None else int(lengths_x[b])
        m = M if lengths_y is None else int(lengths_y[b])
        if n == 0 or m == 0:
            continue
        kc = min(k + 1, m)
        d, i = cKDTree(ys[b, :m]).query(xs[b, :n], kc, workers=workers)
        d, i = d.reshape(n, kc), i.reshape(n, kc)
        if kc > k:
            d2 = d * d
            bad[b, :n] = torch.from_numpy(~(d2[:, k] - d2[:, k - 1] > tol_coef * d2[:, k]))
            idx[b, :n] = torch.from_numpy(i[:, :k])
        else:  # every real point of y is a neighbour; the rest of the row is padding
            idx[b, :n, :m] = torch.from_numpy(i)
            idx[b, :n, m:] = torch.arange(m, k)
    return finish_candidates(x, y, idx, bad, lengths_x, lengths_y, chunk_bytes)
