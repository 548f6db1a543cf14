"""Registration and reconstruction metrics, and the PCA canonical frame (baseline).

* RRE: :func:`rotation_error_deg`, the geodesic angle between rotations, in degrees.
* RTE: :func:`translation_error`, Euclidean distance between translations (point units).
* RMSE: :func:`registration_rmse`, root mean square distance between the cloud moved by
  the estimated and by the ground-truth transform (point units).
* Chamfer: :func:`chamfer_distance`, conventions selectable (see its docstring).
* :func:`pca_frame`: rotate/translate a cloud into its principal axes.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from canocaps.errors import CanocapsInputError
from canocaps.geometry.rotations import rotation_angle
from canocaps.geometry.transforms import _check_T, _check_points, apply_transform

__all__ = [
    "rotation_error_deg",
    "translation_error",
    "registration_rmse",
    "chamfer_distance",
    "pca_frame",
]


def rotation_error_deg(R_est: Tensor, R_gt: Tensor) -> Tensor:
    """Relative rotation error (RRE) in degrees, ``(B,)`` for ``(B, 3, 3)`` inputs (``()`` for ``(3, 3)``).

    ``RRE = angle(R_est^T R_gt) = acos(clamp((tr(R_est^T R_gt) - 1) / 2, -1, 1))``, in
    ``[0, 180]``. It is evaluated with the equivalent ``atan2`` form
    (:func:`~canocaps.geometry.rotation_angle`), which keeps full precision near 0 and 180
    degrees where ``acos`` loses half the digits. Also accepts 4x4 transforms.
    """
    R_est, R_gt = _rotation_block(R_est, "R_est"), _rotation_block(R_gt, "R_gt")
    rel = R_est.transpose(-1, -2) @ R_gt.to(R_est.dtype)
    return torch.rad2deg(rotation_angle(rel))


def _rotation_block(R: Tensor, name: str) -> Tensor:
    if not isinstance(R, Tensor) or R.ndim < 2 or tuple(R.shape[-2:]) not in ((3, 3), (4, 4)):
        raise CanocapsInputError(f"{name} must have shape (..., 3, 3) or (..., 4, 4), got {tuple(getattr(R, 'shape', ()))}")
    return R[..., :3, :3]


def translation_error(t_est: Tensor, t_gt: Tensor) -> Tensor:
    """Relative translation error (RTE) ``|t_est - t_gt|_2``, ``(B,)`` for ``(B, 3)`` inputs, point units."""
    for name, t in (("t_est", t_est), ("t_gt", t_gt)):
        if not isinstance(t, Tensor) or t.ndim < 1 or t.shape[-1] != 3:
            raise CanocapsInputError(f"{name} must have shape (..., 3), got {tuple(getattr(t, 'shape', ()))}")
    return (t_est - t_gt.to(t_est.dtype)).norm(dim=-1)


def registration_rmse(points: Tensor, T_est: Tensor, T_gt: Tensor) -> Tensor:
    """RMSE between the cloud moved by ``T_est`` and by ``T_gt``: ``sqrt(mean_n |T_est p_n - T_gt p_n|^2)``.

    Args:
        points: ``(B, N, 3)`` or ``(N, 3)``, the source cloud (before any transform).
        T_est, T_gt: ``(B, 4, 4)`` or ``(4, 4)``.

    Returns:
        ``(B,)`` (``()`` if nothing is batched), in point units.
    """
    _check_points(points)
    _check_T(T_est, "T_est")
    _check_T(T_gt, "T_gt")
    if points.shape[-2] == 0:
        raise CanocapsInputError("registration_rmse needs at least one point")
    diff = apply_transform(T_est, points) - apply_transform(T_gt, points)
    return diff.pow(2).sum(-1).mean(-1).sqrt()


def chamfer_distance(
    x: Tensor,
    y: Tensor,
    squared: bool = True,
    reduction: Literal["sum", "mean"] = "sum",
    batch_reduction: Literal["none", "mean", "sum"] | None = "none",
    x_lengths: Tensor | None = None,
    y_lengths: Tensor | None = None,
) -> Tensor:
    """Chamfer distance between clouds ``x`` ``(B, N, 3)`` and ``y`` ``(B, M, 3)`` (or unbatched ``(N, 3)``).

    Per sample: ``d(x->y) = mean_n min_m D(x_n, y_m)`` and ``d(y->x)`` likewise, where
    ``D`` is the squared Euclidean distance if ``squared`` (default) else the Euclidean
    distance. The two directions are combined by ``reduction``:

    * ``"sum"`` (default): ``d(x->y) + d(y->x)``. With ``squared=True`` this is the
      Canonical Capsules / AtlasNet / pytorch3d convention (the paper's numbers).
    * ``"mean"``: ``(d(x->y) + d(y->x)) / 2``.

    ``batch_reduction``: ``"none"`` (or None, as :func:`canocaps.ops.chamfer` spells it) returns ``(B,)`` (``()`` for unbatched input),
    ``"mean"``/``"sum"`` a scalar. ``x_lengths``/``y_lengths`` ``(B,)`` give the valid
    number of points of padded clouds. Built on :func:`canocaps.ops.chamfer`
    (differentiable, memory-bounded).
    """
    from canocaps.ops import chamfer  # lazy: ops may pull in Triton

    if reduction not in ("sum", "mean"):
        raise CanocapsInputError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if batch_reduction is None:  # ops.chamfer's spelling of "none"
        batch_reduction = "none"
    if batch_reduction not in ("none", "mean", "sum"):
        raise CanocapsInputError(f"batch_reduction must be None/'none', 'mean' or 'sum', got {batch_reduction!r}")
    for name, p in (("x", x), ("y", y)):
        _check_points(p)
        if p.ndim != 2 and p.ndim != 3:
            raise CanocapsInputError(f"{name} must have shape (N, 3) or (B, N, 3), got {tuple(p.shape)}")
        if p.shape[-2] == 0:
            raise CanocapsInputError(f"chamfer_distance: {name} has no points")
    if x.ndim != y.ndim:
        raise CanocapsInputError(f"x and y must both be batched or both unbatched: {tuple(x.shape)} vs {tuple(y.shape)}")
    unbatched = x.ndim == 2
    if unbatched:
        x, y = x[None], y[None]
    if x.shape[0] != y.shape[0]:
        raise CanocapsInputError(f"batch sizes differ: {x.shape[0]} vs {y.shape[0]}")
    per, _ = chamfer(x, y, x_lengths=x_lengths, y_lengths=y_lengths, point_reduction="mean",
                     batch_reduction=None, squared=squared)
    if reduction == "mean":
        per = per / 2.0
    if batch_reduction == "mean":
        return per.mean()
    if batch_reduction == "sum":
        return per.sum()
    return per[0] if unbatched else per


def pca_frame(points: Tensor, eps: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Rigid ``(R, t)`` putting each cloud into its principal axes: ``canonical = points @ R^T + t``.

    Args:
        points: ``(B, N, 3)`` (or ``(N, 3)``, giving unbatched outputs).

    Returns:
        ``R`` ``(B, 3, 3)`` proper rotation whose rows are the principal axes sorted by
        decreasing variance, and ``t = -R c`` ``(B, 3)`` with ``c`` the centroid, so the
        canonical cloud is centred with its largest spread along x.

    Signs: the first two axes are oriented so the third moment (skewness) of the
    coordinates along them is positive; the third axis is ``e1 x e2`` (right-handed).
    Symmetric shapes (zero skewness) or repeated variances make the frame ambiguous;
    that is the known weakness of this baseline canonicaliser. Computed with
    ``torch.linalg.eigh`` on the 3x3 covariance (meant for use without gradients).
    """
    _check_points(points)
    unbatched = points.ndim == 2
    if unbatched:
        points = points[None]
    if points.ndim != 3:
        raise CanocapsInputError(f"points must have shape (N, 3) or (B, N, 3), got {tuple(points.shape)}")
    if points.shape[1] == 0:
        raise CanocapsInputError("pca_frame needs at least one point")
    c = points.mean(dim=1)  # (B, 3)
    xc = points - c[:, None]
    cov = xc.transpose(1, 2) @ xc / points.shape[1]
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors in columns
    axes = vecs.flip(-1).transpose(1, 2)  # rows: e1 (largest variance), e2, e3
    proj = xc @ axes.transpose(1, 2)  # (B, N, 3) coordinates in the PCA frame
    m3 = proj.pow(3).mean(dim=1)  # (B, 3) third moments
    sign = torch.where(m3 < -eps, -torch.ones_like(m3), torch.ones_like(m3))
    e1 = axes[:, 0] * sign[:, :1]
    e2 = axes[:, 1] * sign[:, 1:2]
    e3 = torch.linalg.cross(e1, e2, dim=-1)
    R = torch.stack([e1, e2, e3], dim=1)
    t = -(R @ c[..., None])[..., 0]
    if unbatched:
        return R[0], t[0]
    return R, t

