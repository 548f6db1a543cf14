"""Two views of each shape under known random rigid motions: the self-supervised training pairs.

``SE3PairSampler()(points)`` draws, per cloud of a ``(B, N, 3)`` batch, two rigid transforms
``T1, T2`` (``(B, 4, 4)``), optionally crops each view and adds noise, and returns
``PairBatch(view1, view2, T1, T2, T12)`` where ``view_i = apply_transform(T_i, points_i)``
and ``T12 = T2 @ inv(T1)`` maps view 1 onto view 2 (exactly, for the same underlying points:
no crop, no noise, ``points_b=None``).

Transforms (same units as the points):

* rotation: with ``max_angle_deg=180`` (default) uniform (Haar) on SO(3). With a smaller
  limit ``a``, uniform on the *ball* of rotations of angle <= ``a``, i.e. the Haar measure
  restricted to it: uniform axis, angle density proportional to ``1 - cos(theta)`` on
  ``[0, a]`` (``angle_distribution="uniform"`` instead draws the angle uniformly in
  ``[0, a]``, like :func:`canocaps.geometry.random_rotation` with ``max_angle``). The limit
  bounds each of ``T1``, ``T2`` (their relative rotation can reach ``2a``);
* translation: uniform in ``[-max_translation, max_translation]^3``;
* crop (``crop_ratio = r > 0``): per view, a plane with a uniformly random normal through
  the cloud drops the ``round(r N)`` points farthest along the normal; the view is
  re-filled to N points by resampling the kept ones (uniformly, with replacement) and the
  order is shuffled, so the shape stays ``(B, N, 3)``;
* noise (``noise_std = s > 0``): i.i.d. Gaussian ``N(0, s^2)`` per coordinate, added after
  the transform (sensor noise), independently per view;
* outliers (``outlier_ratio = o > 0``): per view, ``round(o N)`` random points are replaced by
  points uniform in the cloud's bounding ball (centroid, largest distance to it);
* ``crop_prob``, ``noise_prob``, ``outlier_prob`` (default 1): each degradation happens to
  each view of each shape independently with this probability, so a training batch mixes
  clean and degraded views (what scans do; see ``canocaps/train/configs``).

Everything runs on the points' device in their dtype (transforms drawn in float64). With a
``torch.Generator`` the draws happen on the generator's device (a CPU generator can drive
CUDA tensors) and are reproducible.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from canocaps.errors import CanocapsInputError
from canocaps.geometry import (apply_transform, axis_angle_to_matrix, compose_transforms, invert_transform,
                                make_transform, random_rotation)

__all__ = ["PairBatch", "SE3PairSampler", "sample_rotations", "haar_angle_cdf", "crop_and_refill", "add_noise",
           "add_outliers"]


class PairBatch(NamedTuple):
    """Output of :class:`SE3PairSampler`; unpacks as ``view1, view2, T1, T2, T12``.

    view1, view2: ``(B, N, 3)``; T1, T2, T12: ``(B, 4, 4)``, with ``T12 = T2 @ inv(T1)``.
    """

    view1: Tensor
    view2: Tensor
    T1: Tensor
    T2: Tensor
    T12: Tensor

    def to(self, device: torch.device | str) -> "PairBatch":
        return PairBatch(*(x.to(device) for x in self))


def haar_angle_cdf(theta: Tensor | float, max_angle: float = math.pi) -> Tensor:
    """CDF of the rotation angle (radians) under the Haar measure restricted to angles <= ``max_angle``.

    ``F(theta) = (theta - sin theta) / (a - sin a)``; for ``a = pi`` it is the Haar law, density ``(1 - cos theta) / pi``.
    """
    t = torch.as_tensor(theta, dtype=torch.float64).clamp(0.0, max_angle)
    return (t - torch.sin(t)) / (max_angle - math.sin(max_angle))


def _haar_angles(B: int, max_angle: float, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """Angles ``(B,)`` with CDF :func:`haar_angle_cdf`, by inverting the CDF with bisection (float64)."""
    target = torch.rand(B, dtype=torch.float64, device=device, generator=generator) * (max_angle - math.sin(max_angle))
    lo = torch.zeros_like(target)
    hi = torch.full_like(target, max_angle)
    for _ in range(60):  # interval halves each step: 60 steps reach float64 resolution
        mid = 0.5 * (lo + hi)
        below = (mid - torch.sin(mid)) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def sample_rotations(B: int, max_angle_deg: float = 180.0, angle_distribution: str = "haar",
                     device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
    """``(B, 3, 3)`` float64 rotations on ``device`` (see the module docstring for the law)."""
    draw = generator.device if generator is not None else torch.device(device or "cpu")
    if max_angle_deg >= 180.0 and angle_distribution == "haar":
        R = random_rotation(B, max_angle=None, device=draw, dtype=torch.float64, generator=generator)
    elif angle_distribution == "uniform":
        R = random_rotation(B, max_angle=math.radians(min(max_angle_deg, 180.0)), device=draw, dtype=torch.float64,
                            generator=generator)
    elif angle_distribution == "haar":
        axis = torch.randn(B, 3, dtype=torch.float64, device=draw, generator=generator)
        axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
        angle = _haar_angles(B, math.radians(max_angle_deg), draw, generator)
        R = axis_angle_to_matrix(axis * angle[:, None])
    else:
        raise CanocapsInputError(f"angle_distribution must be 'haar' or 'uniform', got {angle_distribution!r}")
    return R.to(device or draw)


def crop_and_refill(points: Tensor, ratio: float, generator: torch.Generator | None = None,
                    return_normal: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Drop the ``round(ratio * N)`` points farthest along a random direction, refill to N, shuffle.

    Args:
        points: ``(B, N, 3)``.
        ratio: fraction of points dropped, in ``[0, 1)``; at least one point is kept.
    Returns:
        ``(B, N, 3)`` (and the plane normals ``(B, 3)`` float64 if ``return_normal``): every output
        point is a kept input point; every kept point appears at least once.
    """
    B, N, _ = points.shape
    drop = min(int(round(ratio * N)), N - 1)
    keep = N - drop
    draw = generator.device if generator is not None else points.device
    normal = torch.randn(B, 3, dtype=torch.float64, device=draw, generator=generator)
    normal = (normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(points.device)
    proj = (points.to(torch.float64) @ normal[:, :, None])[..., 0]  # (B, N)
    kept = proj.argsort(dim=1)[:, :keep]
    fill = torch.randint(0, keep, (B, drop), device=draw, generator=generator).to(points.device)
    idx = torch.cat([kept, kept.gather(1, fill)], 1)
    perm = torch.rand(B, N, device=draw, generator=generator).argsort(dim=1).to(points.device)
    idx = idx.gather(1, perm)
    out = points.gather(1, idx[..., None].expand(-1, -1, 3))
    return (out, normal) if return_normal else out


def add_noise(points: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """``points + N(0, std^2)`` per coordinate (same shape, device, dtype)."""
    draw = generator.device if generator is not None else points.device
    noise = torch.randn(points.shape, dtype=torch.float32 if points.dtype == torch.float16 else points.dtype,
                        device=draw, generator=generator)
    return points + (std * noise).to(device=points.device, dtype=points.dtype)


def add_outliers(points: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Replace ``round(ratio * N)`` random points of each cloud ``(B, N, 3)`` by uniform points in its bounding ball.

    The ball: centre the centroid, radius the largest distance to it. Same shape, device, dtype.
    """
    B, N, _ = points.shape
    count = min(int(round(ratio * N)), N)
    if count == 0:
        return points
    draw = generator.device if generator is not None else points.device
    x = points.to(torch.float64)
    c = x.mean(dim=1, keepdim=True)
    radius = (x - c).norm(dim=-1).amax(dim=1).to(draw)  # (B,)
    direction = torch.randn(B, count, 3, dtype=torch.float64, device=draw, generator=generator)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    r = radius[:, None] * torch.rand(B, count, dtype=torch.float64, device=draw, generator=generator).pow(1.0 / 3.0)
    fake = (direction * r[..., None]).to(points.device) + c
    which = torch.rand(B, N, device=draw, generator=generator).argsort(dim=1)[:, :count].to(points.device)
    out = x.clone()
    out.scatter_(1, which[..., None].expand(-1, -1, 3), fake)
    return out.to(points.dtype)


def _where(mask: Tensor | None, changed: Tensor, original: Tensor) -> Tensor:
    return changed if mask is None else torch.where(mask, changed, original)


def _per_shape(prob: float, B: int, device: torch.device, generator: torch.Generator | None) -> Tensor | None:
    """``(B, 1, 1)`` bool mask, True with probability ``prob`` (None when ``prob >= 1``: always)."""
    if prob >= 1.0:
        return None
    draw = generator.device if generator is not None else device
    return (torch.rand(B, device=draw, generator=generator) < prob).to(device)[:, None, None]


class SE3PairSampler:
    """Random rigid pairs of point-cloud batches (see the module docstring).

    Args:
        max_angle_deg: rotation limit in degrees, in ``[0, 180]`` (180 = all of SO(3)).
        max_translation: translation bound per axis (units of the points), >= 0.
        noise_std: Gaussian noise std per coordinate (units of the points), >= 0.
        crop_ratio: fraction of points cut away per view by a random plane, in ``[0, 1)``.
        angle_distribution: ``"haar"`` (default) or ``"uniform"`` (angle uniform in ``[0, max]``).
        outlier_ratio: fraction of points per view replaced by uniform outliers, in ``[0, 1)``.
        crop_prob, noise_prob, outlier_prob: probability in ``[0, 1]`` that a view gets
            that degradation (independently per view and shape; default 1 = always).
    """

    def __init__(self, max_angle_deg: float = 180.0, max_translation: float = 0.2, noise_std: float = 0.0,
                 crop_ratio: float = 0.0, angle_distribution: str = "haar", outlier_ratio: float = 0.0,
                 crop_prob: float = 1.0, noise_prob: float = 1.0, outlier_prob: float = 1.0) -> None:
        if not 0.0 <= float(max_angle_deg) <= 180.0:
            raise CanocapsInputError(f"max_angle_deg must be in [0, 180], got {max_angle_deg}")
        if not (float(max_translation) >= 0.0 and math.isfinite(max_translation)):
            raise CanocapsInputError(f"max_translation must be a finite number >= 0, got {max_translation}")
        if not (float(noise_std) >= 0.0 and math.isfinite(noise_std)):
            raise CanocapsInputError(f"noise_std must be a finite number >= 0, got {noise_std}")
        if not 0.0 <= float(crop_ratio) < 1.0:
            raise CanocapsInputError(f"crop_ratio must be in [0, 1), got {crop_ratio}")
        if angle_distribution not in ("haar", "uniform"):
            raise CanocapsInputError(f"angle_distribution must be 'haar' or 'uniform', got {angle_distribution!r}")
        if not 0.0 <= float(outlier_ratio) < 1.0:
            raise CanocapsInputError(f"outlier_ratio must be in [0, 1), got {outlier_ratio}")
        for name, prob in (("crop_prob", crop_prob), ("noise_prob", noise_prob), ("outlier_prob", outlier_prob)):
            if not 0.0 <= float(prob) <= 1.0:
                raise CanocapsInputError(f"{name} must be in [0, 1], got {prob}")
        self.outlier_ratio = float(outlier_ratio)
        self.crop_prob, self.noise_prob, self.outlier_prob = float(crop_prob), float(noise_prob), float(outlier_prob)
        self.max_angle_deg = float(max_angle_deg)
        self.max_translation = float(max_translation)
        self.noise_std = float(noise_std)
        self.crop_ratio = float(crop_ratio)
        self.angle_distribution = angle_distribution

    def __repr__(self) -> str:
        return (f"SE3PairSampler(max_angle_deg={self.max_angle_deg}, max_translation={self.max_translation}, "
                f"noise_std={self.noise_std}, crop_ratio={self.crop_ratio}, angle_distribution={self.angle_distribution!r}, "
                f"outlier_ratio={self.outlier_ratio}, crop_prob={self.crop_prob}, noise_prob={self.noise_prob}, "
                f"outlier_prob={self.outlier_prob})")

    def sample_transform(self, B: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                         generator: torch.Generator | None = None) -> Tensor:
        """``(B, 4, 4)`` random rigid transforms of this sampler's law."""
        draw = generator.device if generator is not None else torch.device(device or "cpu")
        R = sample_rotations(B, self.max_angle_deg, self.angle_distribution, draw, generator)
        t = (torch.rand(B, 3, dtype=torch.float64, device=draw, generator=generator) * 2.0 - 1.0) * self.max_translation
        return make_transform(R, t).to(device=device or draw, dtype=dtype)

    def __call__(self, points_a: Tensor, points_b: Tensor | None = None,
                 generator: torch.Generator | None = None) -> PairBatch:
        """Make a pair batch from ``points_a (B, N, 3)`` (view 1) and ``points_b`` (view 2; default ``points_a``)."""
        if not isinstance(points_a, Tensor) or points_a.ndim != 3 or points_a.shape[-1] != 3 or points_a.shape[1] < 1:
            shape = tuple(points_a.shape) if isinstance(points_a, Tensor) else type(points_a).__name__
            raise CanocapsInputError(f"points_a must be a (B, N, 3) tensor, got {shape}")
        if points_b is None:
            points_b = points_a
        elif not isinstance(points_b, Tensor) or points_b.ndim != 3 or points_b.shape[0] != points_a.shape[0] \
                or points_b.shape[-1] != 3:
            shape = tuple(points_b.shape) if isinstance(points_b, Tensor) else type(points_b).__name__
            raise CanocapsInputError(f"points_b must be a (B, M, 3) tensor with B = {points_a.shape[0]}, got {shape}")
        B = points_a.shape[0]
        dev, dtype = points_a.device, points_a.dtype
        T1 = self.sample_transform(B, dev, torch.float64, generator)
        T2 = self.sample_transform(B, dev, torch.float64, generator)
        T12 = compose_transforms(T2, invert_transform(T1))
        views = []
        for T, pts in ((T1, points_a), (T2, points_b)):
            if self.crop_ratio > 0:
                pts = _where(_per_shape(self.crop_prob, B, dev, generator), crop_and_refill(pts, self.crop_ratio, generator), pts)
            if self.outlier_ratio > 0:
                pts = _where(_per_shape(self.outlier_prob, B, dev, generator), add_outliers(pts, self.outlier_ratio, generator), pts)
            v = apply_transform(T, pts.to(torch.float64)).to(dtype)
            if self.noise_std > 0:
                v = _where(_per_shape(self.noise_prob, B, dev, generator), add_noise(v, self.noise_std, generator), v)
            views.append(v)
        tdtype = dtype if dtype.is_floating_point and dtype != torch.float16 and dtype != torch.bfloat16 else torch.float32
        return PairBatch(views[0], views[1], T1.to(tdtype), T2.to(tdtype), T12.to(tdtype))
