"""k-nearest neighbours between two batched point clouds (``pytorch3d.ops.knn_points``-like)."""
from __future__ import annotations

from typing import Sequence

import torch

from canocaps.ops._common import KNN, check_k, check_pair, pad_invalid, sqdist
from canocaps.ops._dispatch import nn_idx

__all__ = ["knn", "knn_gather", "KNN", "KNNResult"]

KNNResult = KNN  # name used by the contract in docs/CONTRIBUTING.md


def knn_gather(y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather neighbours: y ``(B, M, C)``, idx ``(B, N, k)`` int64 -> ``(B, N, k, C)``.

    Entries with ``idx == -1`` (padding) are filled with zeros. Differentiable in ``y``;
    memory ``O(B N k C)``.
    """
    B, N, k = idx.shape
    C = y.shape[2]
    safe = idx.clamp(min=0)
    out = torch.gather(y, 1, safe.reshape(B, N * k, 1).expand(B, N * k, C)).view(B, N, k, C)
    if bool((idx < 0).any()):
        out = out.masked_fill((idx < 0)[..., None], 0)
    return out


def knn(x: torch.Tensor, y: torch.Tensor, k: int,
        lengths_x: torch.Tensor | Sequence[int] | None = None,
        lengths_y: torch.Tensor | Sequence[int] | None = None,
        return_sorted: bool = True, backend: str = "auto", chunk_bytes: int | None = None) -> KNN:
    """The ``k`` nearest points of ``y`` for every point of ``x`` (squared Euclidean).

    Args:
        x: ``(B, N, D)`` query clouds (float16/bfloat16/float32/float64).
        y: ``(B, M, D)`` reference clouds, same dtype and device.
        k: neighbours per query, ``1 <= k <= M`` (else :class:`CanocapsInputError`).
        lengths_x, lengths_y: optional ``(B,)`` int numbers of real points per cloud
            (ragged batches, padding at the end). None means all points are real.
        return_sorted: accepted for pytorch3d compatibility; results are always
            sorted by increasing distance (ties: lowest index first).
        backend: ``"auto"`` (CUDA: the Triton kernel when triton is installed and
            ``k <= 32``, else the chunked torch path; CPU float32/float64 with ``D <= 4``:
            scipy's k-d tree, except ``k = 1`` problems small enough for one dense score
            matrix; otherwise the chunked torch path), ``"torch"``, ``"triton"`` (``k > 32``
            falls back to torch with a warning) or ``"kdtree"`` (CPU tensors). Every backend
            returns the same indices.
        chunk_bytes: torch path only: size of one chunk of the score matrix
            (default :data:`canocaps.ops.DEFAULT_CHUNK_BYTES`: 2 MiB on CPU, 256 MiB
            on CUDA); the full ``N x M`` matrix is never built when larger. Small
            problems with ``k = 1`` build one batch element's whole matrix when it
            fits :data:`canocaps.ops.DENSE_BYTES` (4 MiB on CPU; an explicit
            ``chunk_bytes`` is that budget instead). Results do not depend on it.

    Returns:
        ``KNN(dists, idx)``: dists ``(B, N, k)`` squared distances, differentiable
        w.r.t. ``x`` and ``y`` (recomputed exactly from the gathered points, memory
        ``O(B N k D)``); idx ``(B, N, k)`` int64.

    Padding rule: entry ``[b, i, j]`` with ``i >= lengths_x[b]`` (padded query) or
    ``j >= lengths_y[b]`` (fewer than k real neighbours) has ``dists = 0`` and
    ``idx = -1``. (pytorch3d pads idx with 0; -1 cannot be mistaken for a point.)
    Ties are broken by the lowest index, identically on every backend.
    """
    lx, ly = check_pair(x, y, lengths_x, lengths_y)
    k = check_k(k, y.shape[1])
    idx = nn_idx(x, y, k, lx, ly, backend, chunk_bytes)
    dists = sqdist(x[:, :, None, :], knn_gather(y, idx))
    return KNN(*pad_invalid(dists, idx, lx, ly))
