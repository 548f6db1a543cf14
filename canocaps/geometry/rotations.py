"""Rotation representations and random rotations (torch, batched, differentiable).

Conventions used throughout canocaps:

* A rotation matrix ``R`` acts on column vectors: ``x' = R x``. For row-stored point
  clouds ``(..., N, 3)`` this is ``points @ R.transpose(-1, -2)``.
* Quaternions are ``(w, x, y, z)`` (scalar first), unit norm, and *sign-canonical*:
  functions that return quaternions return the representative with ``w >= 0``.
* Axis-angle is the rotation vector ``v = theta * axis`` with ``theta`` in radians,
  ``theta = |v|`` in ``[0, pi]`` for returned values.
* The 6D representation (Zhou et al., CVPR 2019) is the first two *columns* of ``R``,
  concatenated: ``(..., 6) = [R[..., :, 0], R[..., :, 1]]``. It is mapped back by
  Gram-Schmidt.

Every function accepts arbitrary leading batch dimensions ``(...)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from canocaps.errors import CanocapsInputError

__all__ = [
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "standardize_quaternion",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "random_quaternion",
    "random_rotation",
    "rotation_angle",
    "skew",
]


def _check_last(x: Tensor, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(x, Tensor):
        raise CanocapsInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
        want = "(..., " + ", ".join(str(s) for s in shape) + ")"
        raise CanocapsInputError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def skew(v: Tensor) -> Tensor:
    """Cross-product matrix ``[v]_x`` of ``v`` ``(..., 3)`` -> ``(..., 3, 3)``, ``[v]_x u = v x u``."""
    _check_last(v, (3,), "v")
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def standardize_quaternion(q: Tensor) -> Tensor:
    """Return the sign-canonical representative (``w >= 0``) of quaternions ``(..., 4)``."""
    _check_last(q, (4,), "q")
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` from quaternions ``(..., 4)`` in ``(w, x, y, z)`` order.

    ``q`` need not be unit: it is normalised first (``q`` and ``-q`` give the same matrix).
    """
    _check_last(q, (4,), "q")
    w, x, y, z = q.unbind(-1)
    two_s = 2.0 / (q * q).sum(-1).clamp_min(torch.finfo(q.dtype).tiny)
    m = torch.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(R: Tensor) -> Tensor:
    """Unit, sign-canonical (``w >= 0``) quaternions ``(..., 4)`` ``(w, x, y, z)`` from ``R`` ``(..., 3, 3)``.

    Numerically careful everywhere (including angles near 0 and pi): four candidate
    quaternions are formed (Shepperd's method) and, per rotation, the one computed from
    the largest diagonal term is kept, so no division by a small number happens.
    """
    _check_last(R, (3, 3), "R")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = R.reshape(*R.shape[:-2], 9).unbind(-1)
    # 4 * (w^2, x^2, y^2, z^2)
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    # sqrt with a zero-safe gradient: candidates with tiny sq are never selected.
    abs2 = torch.sqrt(sq.clamp_min(0.1))  # 2 * |component|, only where it is large
    cands = torch.stack(
        [
            torch.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], dim=-1),
        ],
        dim=-2,
    ) / (2.0 * abs2[..., :, None])
    best = sq.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return standardize_quaternion(q)


def axis_angle_to_quaternion(v: Tensor) -> Tensor:
    """Quaternions ``(..., 4)`` ``(w, x, y, z)`` from rotation vectors ``(..., 3)`` (radians).

    Uses ``sin(theta/2)/theta`` with its Taylor series near 0, so the map and its
    gradient are smooth at the identity. The result is unit but *not* standardised
    (``w < 0`` for ``|v| > pi``); use :func:`standardize_quaternion` if needed.
    """
    _check_last(v, (3,), "v")
    theta2 = (v * v).sum(-1, keepdim=True)
    small = theta2 < 1e-6
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    half_sinc = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(theta / 2) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(theta / 2))
    return torch.cat([w, v * half_sinc], dim=-1)


def quaternion_to_axis_angle(q: Tensor) -> Tensor:
    """Rotation vectors ``(..., 3)`` (radians, ``|v|`` in ``[0, pi]``) from quaternions ``(..., 4)``.

    ``q`` is normalised and standardised first; ``theta = 2 atan2(|xyz|, w)`` is exact near
    0 and pi. At exactly pi both ``v`` and ``-v`` are valid; the one from the ``w >= 0``
    representative is returned.
    """
    _check_last(q, (4,), "q")
    q = standardize_quaternion(q / q.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny))
    xyz = q[..., 1:]
    n2 = (xyz * xyz).sum(-1, keepdim=True)
    small = n2 < 1e-8
    n = torch.sqrt(torch.where(small, torch.ones_like(n2), n2))
    theta = 2.0 * torch.atan2(n, q[..., :1])
    # For a unit quaternion theta / n = theta / sin(theta / 2) = 2 + n^2 / 3 + O(n^4).
    scale = torch.where(small, 2.0 + n2 / 3.0, theta / n)
    return xyz * scale


def axis_angle_to_matrix(v: Tensor) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` from rotation vectors ``(..., 3)`` (radians)."""
    return quaternion_to_matrix(axis_angle_to_quaternion(v))


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """Rotation vectors ``(..., 3)`` (radians, norm in ``[0, pi]``) from ``R`` ``(..., 3, 3)``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def matrix_to_rotation_6d(R: Tensor) -> Tensor:
    """6D representation ``(..., 6)``: the first two columns of ``R`` ``(..., 3, 3)``, column 0 first."""
    _check_last(R, (3, 3), "R")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rotation_6d_to_matrix(d6: Tensor, eps: float = 1e-12) -> Tensor:
    """Rotation matrices ``(..., 3, 3)`` from 6D vectors ``(..., 6)`` by Gram-Schmidt (Zhou et al. 2019).

    ``b1 = a1/|a1|``, ``b2 = normalise(a2 - (b1.a2) b1)``, ``b3 = b1 x b2``; these are the
    columns of ``R``. ``eps`` guards the normalisations (degenerate input gives a finite,
    not necessarily orthonormal, result).
    """
    _check_last(d6, (6,), "d6")
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(eps)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True).clamp_min(eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotation_angle(R: Tensor) -> Tensor:
    """Rotation angle ``(...)`` in radians, in ``[0, pi]``, of rotation matrices ``(..., 3, 3)``.

    Computed as ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``, which equals the usual
    ``acos(clamp((tr R - 1) / 2, -1, 1))`` for rotations but keeps full precision near 0
    and pi, where the ``acos`` form loses about half the digits.
    """
    _check_last(R, (3, 3), "R")
    cos = (R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0) / 2.0
    sv = torch.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], dim=-1
    )
    # |sv| with a gradient that stays finite at sv = 0
    sn2 = (sv * sv).sum(-1)
    sin = torch.where(sn2 > 0, torch.sqrt(torch.where(sn2 > 0, sn2, torch.ones_like(sn2))), torch.zeros_like(sn2)) / 2.0
    return torch.atan2(sin, cos)


def _rng_kwargs(device, dtype, generator) -> tuple[torch.device, torch.dtype, torch.device]:
    """(output device, output dtype, device to draw on = the generator's device)."""
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    draw = generator.device if generator is not None else device
    return device, dtype, draw


def random_quaternion(
    B: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(B, 4)`` unit quaternions uniform on S^3 (hence Haar-uniform rotations), ``w >= 0``."""
    device, dtype, draw = _rng_kwargs(device, dtype, generator)
    if int(B) < 0:
        raise CanocapsInputError(f"batch size must be >= 0, got {B}")
    q = torch.randn(int(B), 4, device=draw, dtype=torch.float64, generator=generator)
    # A zero draw has probability 0, but guard anyway.
    n = q.norm(dim=-1, keepdim=True)
    q = torch.where(n > 1e-12, q / n.clamp_min(1e-12), torch.tensor([1.0, 0, 0, 0], dtype=q.dtype, device=draw))
    return standardize_quaternion(q).to(device=device, dtype=dtype)


def random_rotation(
    B: int,
    max_angle: float | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random rotation matrices ``(B, 3, 3)``.

    * ``max_angle=None``: uniform (Haar) on SO(3), from uniform unit quaternions.
    * ``max_angle`` (radians, in ``[0, pi]``): the axis is uniform on the sphere and the
      angle is uniform in ``[0, max_angle]``. Note this is *not* the Haar measure even for
      ``max_angle = pi`` (Haar angles have density ``(1 - cos t) / pi``, favouring large
      angles); pass ``None`` for uniform SO(3).

    ``generator`` (a ``torch.Generator``) makes draws reproducible; samples are drawn in
    float64 on the generator's device and returned as ``dtype`` (default: torch's
    default dtype) on ``device`` (default: the generator's device, else CPU), so a CPU
    generator can seed CUDA outputs.
    """
    device, dtype, draw = _rng_kwargs(device, dtype, generator)
    if int(B) < 0:
        raise CanocapsInputError(f"batch size must be >= 0, got {B}")
    if max_angle is None:
        q = random_quaternion(B, draw, torch.float64, generator)
        return quaternion_to_matrix(q).to(device=device, dtype=dtype)
    max_angle = float(max_angle)
    if not (0.0 <= max_angle <= math.pi + 1e-9):
        raise CanocapsInputError(f"max_angle must be in [0, pi] radians, got {max_angle}")
    axis = torch.randn(int(B), 3, device=draw, dtype=torch.float64, generator=generator)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    angle = torch.rand(int(B), 1, device=draw, dtype=torch.float64, generator=generator) * max_angle
    return axis_angle_to_matrix(axis * angle).to(device=device, dtype=dtype)
