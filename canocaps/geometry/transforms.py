"""Rigid transforms SE(3) as homogeneous 4x4 matrices and as ``(R, t)`` pairs.

A transform ``T = [[R, t], [0, 1]]`` maps a point ``x`` to ``R x + t``. Point clouds are
stored as rows ``(..., N, 3)``, so ``apply_transform(T, p) = p @ R^T + t``. Composition
is matrix product: ``compose_transforms(T1, T2) = T1 @ T2`` applies ``T2`` first.
All functions accept leading batch dimensions; ``(4, 4)`` and ``(B, 4, 4)`` are the
common cases.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from canocaps.errors import CanocapsInputError
from canocaps.geometry.rotations import _rng_kwargs, random_rotation

__all__ = [
    "make_transform",
    "split_transform",
    "invert_transform",
    "compose_transforms",
    "apply_transform",
    "apply_rotation",
    "random_transform",
]


def _check_T(T: Tensor, name: str = "T") -> None:
    if not isinstance(T, Tensor):
        raise CanocapsInputError(f"{name} must be a torch.Tensor, got {type(T).__name__}")
    if T.ndim < 2 or tuple(T.shape[-2:]) != (4, 4):
        raise CanocapsInputError(f"{name} must have shape (4, 4) or (B, 4, 4), got {tuple(T.shape)}")


def make_transform(R: Tensor, t: Tensor | None = None) -> Tensor:
    """Homogeneous transforms ``(..., 4, 4)`` from rotations ``(..., 3, 3)`` and translations ``(..., 3)``.

    ``t=None`` means zero translation. Batch dimensions of ``R`` and ``t`` broadcast.
    Differentiable in ``R`` and ``t``.
    """
    if not isinstance(R, Tensor) or R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise CanocapsInputError(f"R must have shape (..., 3, 3), got {tuple(getattr(R, 'shape', ()))}")
    if t is None:
        t = R.new_zeros(R.shape[:-2] + (3,))
    if not isinstance(t, Tensor) or t.ndim < 1 or t.shape[-1] != 3:
        raise CanocapsInputError(f"t must have shape (..., 3), got {tuple(getattr(t, 'shape', ()))}")
    batch = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    R = R.expand(batch + (3, 3))
    t = t.to(R.dtype).expand(batch + (3,))
    top = torch.cat([R, t[..., :, None]], dim=-1)  # (..., 3, 4)
    bottom = R.new_zeros(batch + (1, 4))
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def split_transform(T: Tensor) -> tuple[Tensor, Tensor]:
    """``(R, t)`` with R ``(..., 3, 3)`` and t ``(..., 3)`` from ``T`` ``(..., 4, 4)`` (views, no copy)."""
    _check_T(T)
    return T[..., :3, :3], T[..., :3, 3]


def invert_transform(T: Tensor) -> Tensor:
    """Inverse of rigid transforms ``(..., 4, 4)``: ``[[R^T, -R^T t], [0, 1]]``.

    Uses the rigid structure (exact transpose), not a general matrix inverse; ``T`` must
    have an orthonormal rotation block.
    """
    R, t = split_transform(T)
    Rt = R.transpose(-1, -2)
    return make_transform(Rt, -(Rt @ t[..., None])[..., 0])


def compose_transforms(T1: Tensor, T2: Tensor) -> Tensor:
    """``T1 @ T2`` ``(..., 4, 4)``: the transform that applies ``T2`` first, then ``T1``."""
    _check_T(T1, "T1")
    _check_T(T2, "T2")
    return T1 @ T2


def apply_rotation(R: Tensor, points: Tensor) -> Tensor:
    """Rotate points: ``points @ R^T``. R ``(3, 3)`` / ``(B, 3, 3)``; points ``(N, 3)`` / ``(B, N, 3)``."""
    if not isinstance(R, Tensor) or R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise CanocapsInputError(f"R must have shape (3, 3) or (B, 3, 3), got {tuple(getattr(R, 'shape', ()))}")
    _check_points(points)
    return points @ R.transpose(-1, -2).to(points.dtype)


def _check_points(points: Tensor) -> None:
    if not isinstance(points, Tensor):
        raise CanocapsInputError(f"points must be a torch.Tensor, got {type(points).__name__}")
    if points.ndim < 2 or points.shape[-1] != 3:
        raise CanocapsInputError(f"points must have shape (N, 3) or (B, N, 3), got {tuple(points.shape)}")


def apply_transform(T: Tensor, points: Tensor) -> Tensor:
    """Move points by rigid transforms: ``points @ R^T + t``.

    Args:
        T: ``(4, 4)`` or ``(B, 4, 4)``.
        points: ``(N, 3)`` or ``(B, N, 3)``.

    Returns:
        ``(N, 3)`` if both are unbatched, else ``(B, N, 3)`` (a single ``T`` moves every
        cloud of a batch; a batch of ``T`` applied to one cloud gives ``B`` copies).
        Output dtype is ``points.dtype``.
    """
    _check_T(T)
    _check_points(points)
    if T.ndim == 3 and points.ndim == 3 and T.shape[0] != points.shape[0]:
        raise CanocapsInputError(
            f"batch sizes differ: T has {T.shape[0]} transforms, points has {points.shape[0]} clouds"
        )
    R, t = split_transform(T.to(points.dtype))
    return points @ R.transpose(-1, -2) + t[..., None, :]


def random_transform(
    B: int,
    max_angle: float | None = None,
    max_translation: float = 0.2,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random rigid transforms ``(B, 4, 4)``.

    The rotation is drawn by :func:`~canocaps.geometry.random_rotation` (``max_angle`` in
    radians; ``None`` = Haar-uniform SO(3)); the translation is uniform in
    ``[-max_translation, max_translation]^3`` (same units as the points).
    """
    if not (max_translation >= 0 and math.isfinite(max_translation)):
        raise CanocapsInputError(f"max_translation must be a finite number >= 0, got {max_translation}")
    device, dtype, draw = _rng_kwargs(device, dtype, generator)
    R = random_rotation(B, max_angle=max_angle, device=draw, dtype=torch.float64, generator=generator)
    t = (torch.rand(int(B), 3, device=draw, dtype=torch.float64, generator=generator) * 2.0 - 1.0) * max_translation
    return make_transform(R, t).to(device=device, dtype=dtype)
