"""Chamfer distance between batched point clouds: ``pytorch3d.loss.chamfer_distance``'s arguments.

The one Chamfer of the package: the geometry metric, the reconstruction loss and head,
and the benchmarks all call :func:`chamfer`. Its brute-force twin is
:func:`canocaps.ops.reference.chamfer_reference`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.ops._common import check_pair, sqdist, valid_mask
from canocaps.ops._dispatch import nn1_pair, nn_idx

__all__ = ["chamfer"]

_POINT_RED = ("mean", "sum", "max", None)
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


def _nearest_l1(x: torch.Tensor, y: torch.Tensor, lx: torch.Tensor | None, ly: torch.Tensor | None,
                chunk_bytes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 distance ``(B, N)`` from each x point to its L1-nearest y point, and its index.

    Chunked over x (``torch.cdist(p=1)``, memory ``chunk_bytes`` or 64 MiB per chunk);
    ties to the lowest index; padded x rows: 0 and -1. Differentiable in x and y.
    """
    B, N, D = x.shape
    M = y.shape[1]
    if B == 0 or N == 0 or M == 0:
        return (x * 0).sum(-1) + (y * 0).sum((1, 2))[:, None], torch.full((B, N), -1, dtype=torch.int64,
                                                                             device=x.device)
    my = valid_mask(ly, B, M, x.device)
    rows = max(1, int(chunk_bytes or 64 << 20) // max(1, B * M * x.element_size()))
    idx = []
    with torch.no_grad():
        for i in range(0, N, rows):
            d = torch.cdist(x[:, i:i + rows], y, p=1)
            if my is not None:
                d = d.masked_fill(~my[:, None, :], float("inf"))
            idx.append(d.argmin(-1))
    nn = torch.cat(idx, 1)
    mx = valid_mask(lx, B, N, x.device)
    if mx is not None:
        nn = nn.masked_fill(~mx, 0)
    d = (x - torch.gather(y, 1, nn[..., None].expand(B, N, D))).abs().sum(-1)
    if mx is not None:
        d = d.masked_fill(~mx, 0)
        nn = nn.masked_fill(~mx, -1)
    return d, nn


def _one_direction(dist: torch.Tensor, idx: torch.Tensor, x_normals: torch.Tensor | None,
                   y_normals: torch.Tensor | None, mask: torch.Tensor | None, weights: torch.Tensor | None,
                   abs_cosine: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-point distances and normal terms of one direction, masked and weighted (``(B, N)`` each)."""
    norm_term = None
    if x_normals is not None and y_normals is not None:
        B, N, D = x_normals.shape
        near = torch.gather(y_normals, 1, idx.clamp(min=0)[..., None].expand(B, N, D))
        cos = F.cosine_similarity(x_normals, near, dim=2, eps=1e-6)
        norm_term = 1 - (cos.abs() if abs_cosine else cos)
        if mask is not None:
            norm_term = norm_term.masked_fill(~mask, 0)
    if weights is not None:
        dist = dist * weights[:, None]
        norm_term = None if norm_term is None else norm_term * weights[:, None]
    return dist, norm_term


def _reduce_points(v: torch.Tensor, lengths: torch.Tensor | int, how: str) -> torch.Tensor:
    if how == "max":
        return v.amax(1) if v.shape[1] else v.sum(1)
    out = v.sum(1)
    if how == "mean":
        out = out / (max(lengths, 1) if isinstance(lengths, int) else lengths.clamp(min=1).to(out.dtype))
    return out


def _reduce_batch(v: torch.Tensor | None, weights: torch.Tensor | None, how: str | None) -> torch.Tensor | None:
    if v is None or how is None:
        return v
    total = v.sum()
    if how == "mean":
        if weights is None:
            return total / max(v.shape[0], 1)
        wsum = weights.sum()
        return total / torch.where(wsum == 0, torch.ones_like(wsum), wsum)
    return total


def chamfer(x: torch.Tensor, y: torch.Tensor,
            x_lengths: torch.Tensor | Sequence[int] | None = None,
            y_lengths: torch.Tensor | Sequence[int] | None = None,
            x_normals: torch.Tensor | None = None, y_normals: torch.Tensor | None = None,
            weights: torch.Tensor | None = None,
            batch_reduction: str | None = "mean", point_reduction: str | None = "mean",
            norm: int = 2, single_directional: bool = False, abs_cosine: bool = True, *,
            squared: bool = True, backend: str = "auto", chunk_bytes: int | None = None) -> tuple[Any, Any]:
    """Chamfer distance with the arguments, defaults and return convention of
    ``pytorch3d.loss.chamfer_distance`` (so code switching from pytorch3d changes nothing),
    plus ``squared`` / ``backend`` / ``chunk_bytes``.

    For each point of ``x`` the distance to its nearest point of ``y`` (``cham_x``,
    ``(B, N)``) and, unless ``single_directional``, vice versa (``cham_y``, ``(B, M)``):
    the *squared* Euclidean distance for ``norm=2`` (the official Canonical Capsules and
    pytorch3d convention; ``squared=False``: the Euclidean distance, gradient 0 where it
    is 0) or the L1 distance for ``norm=1``. Padded points (past the lengths) count 0.
    ``weights`` ``(B,)`` >= 0 multiply each cloud's terms. Then:

    - ``point_reduction``: ``"mean"`` (sum / lengths, lengths clamped to >= 1), ``"sum"``,
      ``"max"`` (per cloud: the largest nearest distance; both directions combined with
      ``max``, i.e. the Hausdorff distance; no normals), or ``None`` (per-point values:
      the pair ``(cham_x, cham_y)``, or ``cham_x`` alone when ``single_directional``;
      requires ``batch_reduction=None``). Otherwise the two directions are summed.
    - ``batch_reduction``: ``"mean"`` (sum / B, or / ``weights.sum()``; an empty batch
      gives 0, not NaN), ``"sum"``, ``None`` (``(B,)``).
    - normals: with ``x_normals`` ``(B, N, D)`` and ``y_normals`` ``(B, M, D)``, the second
      result is the same reduction of ``1 - |cos|`` (``abs_cosine=False``: ``1 - cos``)
      between each point's normal and its nearest neighbour's; else it is None.

    Args:
        x: ``(B, N, D)``, y: ``(B, M, D)`` clouds (same dtype/device).
        x_lengths, y_lengths: optional ``(B,)`` numbers of real points (ragged batches).
        backend, chunk_bytes: as in :func:`canocaps.ops.knn` (``norm=2``). On the torch
            backend, when one batch element's ``N x M`` score matrix fits the dense budget
            (:data:`canocaps.ops.DENSE_BYTES`, 4 MiB on CPU, or ``chunk_bytes`` when
            given), both directions are read from ONE matrix per group of batch elements.
            ``norm=1`` runs chunked ``torch.cdist(p=1)`` on any device.

    Returns:
        ``(loss, loss_normals)``. Differentiable in x, y (and the normals); memory
        ``O(B (N + M) D)`` plus one bounded chunk or dense matrix. A zero ``weights``
        sum gives a zero loss (scalar, or ``(B,)`` without batch reduction) still
        connected to the graph.

    Raises:
        CanocapsInputError: bad shapes/lengths/options, NaN/inf points, negative weights,
        or a cloud with real points whose partner cloud has none (undefined distance).
    """
    if point_reduction not in _POINT_RED:
        raise CanocapsInputError(f"point_reduction must be one of {_POINT_RED}, got {point_reduction!r}")
    if batch_reduction not in _BATCH_RED:
        raise CanocapsInputError(f"batch_reduction must be one of {_BATCH_RED}, got {batch_reduction!r}")
    if point_reduction is None and batch_reduction is not None:
        raise CanocapsInputError("point_reduction=None needs batch_reduction=None")
    if norm not in (1, 2):
        raise CanocapsInputError(f"norm must be 1 (L1) or 2 (squared L2), got {norm!r}")
    if norm == 1 and not squared:
        raise CanocapsInputError("squared=False applies to norm=2 only (norm=1 is the L1 distance)")
    if point_reduction == "max" and (x_normals is not None or y_normals is not None):
        raise CanocapsInputError('normals must be None with point_reduction="max"')
    lx, ly = check_pair(x, y, x_lengths, y_lengths, lnames=("x_lengths", "y_lengths"))
    B, N, _ = x.shape
    M = y.shape[1]
    normals = x_normals is not None and y_normals is not None
    if (x_normals is None) != (y_normals is None):
        raise CanocapsInputError("give both x_normals and y_normals, or neither")
    if normals:
        for t, name, ref in ((x_normals, "x_normals", x), (y_normals, "y_normals", y)):
            if not isinstance(t, torch.Tensor) or t.shape[:2] != ref.shape[:2] or t.ndim != 3:
                raise CanocapsInputError(f"{name} must be a tensor of shape {tuple(ref.shape[:2])} + (D,)")
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        if weights.shape != (B,):
            raise CanocapsInputError(f"weights must have shape ({B},), got {tuple(weights.shape)}")
        if not bool((weights >= 0).all()):
            raise CanocapsInputError("weights cannot be negative")
        if B and float(weights.sum()) == 0.0:
            zero = x.sum((1, 2)) * weights * 0.0
            zero = zero if batch_reduction is None else zero.sum()
            return zero, (zero.clone() if normals else None)
    if lx is None and ly is None:  # no tensor ops needed for the check
        if B and (N > 0) != (M > 0):
            raise CanocapsInputError(f"chamfer: batch element 0 has {N} x points and {M} "
                                     "y points; both must be non-empty (or both empty)")
        nx: torch.Tensor | int = N
        ny: torch.Tensor | int = M
    else:
        nx = lx if lx is not None else torch.full((B,), N, dtype=torch.int64, device=x.device)
        ny = ly if ly is not None else torch.full((B,), M, dtype=torch.int64, device=x.device)
        one_sided = ((nx > 0) != (ny > 0)).nonzero()
        if one_sided.numel():
            b = int(one_sided[0, 0])
            raise CanocapsInputError(f"chamfer: batch element {b} has {int(nx[b])} x points and {int(ny[b])} "
                                     "y points; both must be non-empty (or both empty)")
    if norm == 1:
        cham_x, idx_x = _nearest_l1(x, y, lx, ly, chunk_bytes)
        cham_y, idx_y = _nearest_l1(y, x, ly, lx, chunk_bytes) if not single_directional else (None, None)
    else:
        pair = nn1_pair(x, y, lx, ly, backend, chunk_bytes)
        if pair is not None:  # small problem: both directions from one dense score matrix
            cham_x, idx_x = gathered_sqdist(x, y, pair[0], lx)
            cham_y, idx_y = gathered_sqdist(y, x, pair[1], ly) if not single_directional else (None, None)
        else:
            cham_x, idx_x = nearest_sqdist(x, y, lx, ly, backend, chunk_bytes)
            cham_y, idx_y = (nearest_sqdist(y, x, ly, lx, backend, chunk_bytes) if not single_directional
                             else (None, None))
        if not squared:
            cham_x = _safe_sqrt(cham_x)
            cham_y = None if cham_y is None else _safe_sqrt(cham_y)
    mx, my = valid_mask(lx, B, N, x.device), valid_mask(ly, B, M, x.device)
    cham_x, norm_x = _one_direction(cham_x, idx_x, x_normals, y_normals, mx, weights, abs_cosine)
    if cham_y is not None:
        cham_y, norm_y = _one_direction(cham_y, idx_y, y_normals, x_normals, my, weights, abs_cosine)
    if point_reduction is None:
        if single_directional:
            return cham_x, norm_x
        return (cham_x, cham_y), ((norm_x, norm_y) if normals else None)
    loss = _reduce_points(cham_x, nx, point_reduction)
    loss_n = None if norm_x is None else _reduce_points(norm_x, nx, point_reduction)
    if cham_y is not None:
        ry = _reduce_points(cham_y, ny, point_reduction)
        loss = torch.maximum(loss, ry) if point_reduction == "max" else loss + ry
        if loss_n is not None:
            loss_n = loss_n + _reduce_points(norm_y, ny, point_reduction)
    return _reduce_batch(loss, weights, batch_reduction), _reduce_batch(loss_n, weights, batch_reduction)
