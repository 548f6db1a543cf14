"""Shared input checks and small exact helpers for :mod:`canocaps.ops` (internal).

Everything here is used by both the fast paths and the brute-force references, so
that the two compute distances with the very same floating-point operations.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from canocaps.errors import CanocapsInputError

__all__ = ["KNN", "check_pair", "check_k", "valid_mask", "sqdist", "pad_invalid"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class KNN(NamedTuple):
    """Result of :func:`canocaps.ops.knn`.

    dists: ``(B, N, k)`` squared Euclidean distances (same dtype as the inputs).
    idx:   ``(B, N, k)`` int64 indices into the second cloud's point axis.
    """

    dists: torch.Tensor
    idx: torch.Tensor


def _as_lengths(lengths: torch.Tensor | Sequence[int] | None, B: int, P: int, device: torch.device,
                name: str) -> torch.Tensor | None:
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor):
        try:
            lengths = torch.as_tensor(list(lengths))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CanocapsInputError(f"{name} must be a 1-D integer tensor of shape ({B},): {exc}") from None
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise CanocapsInputError(f"{name} must hold integers, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != B:
        raise CanocapsInputError(f"{name} must have shape ({B},), got {tuple(lengths.shape)}")
    lengths = lengths.to(device=device, dtype=torch.int64)
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > P):
        raise CanocapsInputError(f"{name} values must lie in [0, {P}], got min {int(lengths.min())} "
                                 f"max {int(lengths.max())}")
    return lengths


def valid_mask(lengths: torch.Tensor | None, B: int, P: int, device: torch.device) -> torch.Tensor | None:
    """``(B, P)`` bool mask of real (non-padding) points, or None when every point is real."""
    if lengths is None:
        return None
    return torch.arange(P, device=device)[None, :] < lengths[:, None]


def check_pair(x: torch.Tensor, y: torch.Tensor, lengths_x, lengths_y, names=("x", "y"),
               lnames=("lengths_x", "lengths_y")):
    """Validate two padded clouds ``(B, N, D)`` / ``(B, M, D)`` and their lengths.

    Returns ``(lengths_x, lengths_y)`` as int64 tensors on the clouds' device (or None).
    Raises :class:`CanocapsInputError` (one line) on any problem, including NaN/inf in a
    real (non-padding) point.
    """
    nx, ny = names
    for t, n in ((x, nx), (y, ny)):
        if not isinstance(t, torch.Tensor):
            raise CanocapsInputError(f"{n} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise CanocapsInputError(f"{n} must have shape (B, P, D), got {tuple(t.shape)}")
        if t.dtype not in _FLOATS:
            raise CanocapsInputError(f"{n} must be a floating-point tensor, got {t.dtype}")
    if x.shape[0] != y.shape[0]:
        raise CanocapsInputError(f"{nx} and {ny} batch sizes differ: {x.shape[0]} vs {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise CanocapsInputError(f"{nx} and {ny} point dimensions differ: {x.shape[2]} vs {y.shape[2]}")
    if x.shape[2] < 1:
        raise CanocapsInputError(f"{nx} and {ny} must have at least one coordinate (D >= 1)")
    if x.dtype != y.dtype:
        raise CanocapsInputError(f"{nx} and {ny} dtypes differ: {x.dtype} vs {y.dtype}")
    if x.device != y.device:
        raise CanocapsInputError(f"{nx} and {ny} are on different devices: {x.device} vs {y.device}")
    B = x.shape[0]
    lx = _as_lengths(lengths_x, B, x.shape[1], x.device, lnames[0])
    ly = _as_lengths(lengths_y, B, y.shape[1], y.device, lnames[1])
    for t, n, ln in ((x, nx, lx), (y, ny, ly)):
        with torch.no_grad():
            if bool(torch.isfinite(t).all()):  # one fused reduction in the common case
                continue
            bad = ~torch.isfinite(t).all(-1)
            mask = valid_mask(ln, B, t.shape[1], t.device)
            if mask is not None:
                bad &= mask
            if bool(bad.any()):
                b, p = (int(v) for v in bad.nonzero()[0])
                raise CanocapsInputError(f"{n} has a NaN or infinite coordinate (batch {b}, point {p})")
    return lx, ly


def check_k(k: int, M: int) -> int:
    """Validate the neighbour count ``1 <= k <= M``."""
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            import operator
            k = operator.index(k)
        except TypeError:
            raise CanocapsInputError(f"k must be an int, got {type(k).__name__}") from None
    if k < 1:
        raise CanocapsInputError(f"k must be >= 1, got {k}")
    if k > M:
        raise CanocapsInputError(f"k={k} is larger than the number of points in y (M={M})")
    return k


def sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance over the last axis, from exact differences.

    ``a`` and ``b`` broadcast against each other (``(..., D)``); returns ``(...)``. The
    sum runs over coordinates in a fixed order, so equal inputs give bitwise-equal
    outputs whatever the surrounding shape (this makes ties between duplicated
    points exact in the fast paths and in the references alike). Differentiable.
    """
    diff = a - b
    D = diff.shape[-1]
    sq = diff * diff  # elementwise: the same products as squaring each coordinate alone
    if D > 8:
        return sq.sum(-1)
    out = sq[..., 0]
    for j in range(1, D):
        out = out + sq[..., j]
    return out


def pad_invalid(dists: torch.Tensor, idx: torch.Tensor, lengths_x: torch.Tensor | None,
                lengths_y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the padding rule to ``(B, N, k)`` results.

    Entry ``[b, i, j]`` is padding when ``i >= lengths_x[b]`` or ``j >= lengths_y[b]``;
    there ``dists = 0`` (no gradient) and ``idx = -1``.
    """
    B, N, k = idx.shape
    pad = None
    if lengths_x is not None:
        pad = (torch.arange(N, device=idx.device)[None, :, None] >= lengths_x[:, None, None]).expand(B, N, k)
    if lengths_y is not None:
        py = (torch.arange(k, device=idx.device)[None, None, :] >= lengths_y[:, None, None]).expand(B, N, k)
        pad = py if pad is None else (pad | py)
    if pad is None:
        return dists, idx
    return dists.masked_fill(pad, 0), idx.masked_fill(pad, -1)
