"""Chamfer distance between batched point clouds (``pytorch3d.loss.chamfer_distance``-like)."""
from __future__ import annotations

from typing import Sequence

import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops._common import check_pair, sqdist, valid_mask
from canocaps.ops._dispatch import nn1_pair, nn_idx

__all__ = ["chamfer"]

_POINT_RED = ("mean", "sum", None)
_BATCH_RED = ("mean", "sum", None)


def _safe_sqrt(d: torch.Tensor) -> torch.Tensor:
    """sqrt with value 0 and gradient 0 at 0 (instead of inf/NaN)."""
    pos = d > 0
    return torch.where(pos, torch.where(pos, d, torch.ones_like(d)).sqrt(), torch.zeros_like(d))


def nearest_sqdist(x: torch.Tensor, y: torch.Tensor, lengths_x: torch.Tensor | None,
                   lengths_y: torch.Tensor | None, backend: str = "auto",
                   chunk_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance ``(B, N)`` from each x point to its nearest y point, and its index ``(B, N)``.

    Inputs already validated (lengths as int64 tensors or None). Padded x rows get
    distance 0 and index -1. Differentiable in x and y; memory ``O(B (N + M) D)`` plus
    one chunk. Requires every cloud with real x points to have real y points.
    """
    B, N, D = x.shape
    if B == 0 or N == 0:
        # zeros that stay connected to the graph, so ``loss.backward()`` works on empty input
        return (x * 0).sum(-1) + (y * 0).sum((1, 2))[:, None], torch.zeros(B, N, dtype=torch.int64,
                                                                             device=x.device)
    idx = nn_idx(x, y, 1, lengths_x, lengths_y, backend, chunk_bytes)[..., 0]  # (B, N)
    return gathered_sqdist(x, y, idx, lengths_x)


def gathered_sqdist(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                    lengths_x: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sqdist(x, y[idx]) (B, N), idx (B, N))`` with the padding rule (padded x: 0 and -1).

    Differentiable in x and y through the gathered points only (``O(B N D)``)."""
    B, N, D = x.shape
    mx = valid_mask(lengths_x, B, N, x.device)
    if mx is not None:
        idx = idx.masked_fill(~mx, 0)
    yg = torch.gather(y, 1, idx[..., None].expand(B, N, D))
    d = sqdist(x, yg)
    if mx is not None:
        d = d.masked_fill(~mx, 0)
        idx = idx.masked_fill(~mx, -1)
    return d, idx


def chamfer(x: torch.Tensor, y: torch.Tensor,
            x_lengths: torch.Tensor | Sequence[int] | None = None,
            y_lengths: torch.Tensor | Sequence[int] | None = None,
            point_reduction: str | None = "mean", batch_reduction: str | None = "mean",
            squared: bool = True, backend: str = "auto",
            chunk_bytes: int | None = None) -> tuple[torch.Tensor | tuple[torch.Tensor, torch.Tensor], None]:
    """Chamfer distance, the convention of pytorch3d and of the official Canonical Capsules code.

    For each point of ``x`` the squared distance to its nearest point of ``y``
    (``cham_x``, ``(B, N)``) and vice versa (``cham_y``, ``(B, M)``); with
    ``squared=False`` the Euclidean distance instead (sqrt of the nearest squared
    distance, gradient 0 where it is 0). Then:

    - ``point_reduction="mean"``: ``cham_x.sum(1) / x_lengths + cham_y.sum(1) / y_lengths``
      (lengths clamped to >= 1), ``"sum"``: the plain sums; either gives ``(B,)``.
    - ``batch_reduction="mean"``: sum over the batch / B (0 for an empty batch, not NaN),
      ``"sum"``: the sum, ``None``: the ``(B,)`` tensor.
    - ``point_reduction=None`` (requires ``batch_reduction=None``): the loss is the pair
      ``(cham_x, cham_y)`` of per-point distances, 0 at padded points.

    Args:
        x: ``(B, N, D)``, y: ``(B, M, D)`` clouds (same dtype/device).
        x_lengths, y_lengths: optional ``(B,)`` numbers of real points (ragged batches).
        backend, chunk_bytes: as in :func:`canocaps.ops.knn`. On the torch backend,
            when one batch element's ``N x M`` score matrix fits the dense budget
            (:data:`canocaps.ops.DENSE_BYTES`, 4 MiB on CPU, or ``chunk_bytes`` when
            given), both directions are read from ONE matrix per group of batch
            elements (same exact indices as the chunked path).

    Returns:
        ``(loss, None)`` like ``pytorch3d.loss.chamfer_distance`` (the second slot is
        its normals term, unsupported here). Differentiable in x and y; memory
        ``O(B (N + M) D)`` plus one bounded chunk or dense matrix (nearest index first,
        then gather).

    Raises:
        CanocapsInputError: bad shapes/lengths/options, NaN/inf points, or a cloud
        with real points whose partner cloud has none (the distance is undefined).
    """
    if point_reduction not in _POINT_RED:
        raise CanocapsInputError(f"point_reduction must be one of {_POINT_RED}, got {point_reduction!r}")
    if batch_reduction not in _BATCH_RED:
        raise CanocapsInputError(f"batch_reduction must be one of {_BATCH_RED}, got {batch_reduction!r}")
    if point_reduction is None and batch_reduction is not None:
        raise CanocapsInputError("point_reduction=None needs batch_reduction=None")
    lx, ly = check_pair(x, y, x_lengths, y_lengths, lnames=("x_lengths", "y_lengths"))
    B, N, _ = x.shape
    M = y.shape[1]
    if lx is None and ly is None:  # no tensor ops needed for the check
        if B and (N > 0) != (M > 0):
            raise CanocapsInputError(f"chamfer: batch element 0 has {N} x points and {M} "
                                     "y points; both must be non-empty (or both empty)")
        nx, ny = N, M
    else:
        nx = lx if lx is not None else torch.full((B,), N, dtype=torch.int64, device=x.device)
        ny = ly if ly is not None else torch.full((B,), M, dtype=torch.int64, device=x.device)
        one_sided = ((nx > 0) != (ny > 0)).nonzero()
        if one_sided.numel():
            b = int(one_sided[0, 0])
            raise CanocapsInputError(f"chamfer: batch element {b} has {int(nx[b])} x points and {int(ny[b])} "
                                     "y points; both must be non-empty (or both empty)")
    pair = nn1_pair(x, y, lx, ly, backend, chunk_bytes)
    if pair is not None:  # small problem: both directions from one dense score matrix
        cham_x, _ = gathered_sqdist(x, y, pair[0], lx)
        cham_y, _ = gathered_sqdist(y, x, pair[1], ly)
    else:
        cham_x, _ = nearest_sqdist(x, y, lx, ly, backend, chunk_bytes)
        cham_y, _ = nearest_sqdist(y, x, ly, lx, backend, chunk_bytes)
    if not squared:
        cham_x, cham_y = _safe_sqrt(cham_x), _safe_sqrt(cham_y)
    if point_reduction is None:
        return (cham_x, cham_y), None
    cx, cy = cham_x.sum(1), cham_y.sum(1)
    if point_reduction == "mean":
        if isinstance(nx, int):
            cx, cy = cx / max(nx, 1), cy / max(ny, 1)
        else:
            cx = cx / nx.clamp(min=1).to(cx.dtype)
            cy = cy / ny.clamp(min=1).to(cy.dtype)
    loss = cx + cy
    if batch_reduction == "sum":
        loss = loss.sum()
    elif batch_reduction == "mean":
        loss = loss.sum() / max(B, 1)
    return loss, None
