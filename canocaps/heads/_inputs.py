"""Turn whatever a user passes as a point cloud into a checked ``(N, 3)`` float32 array.

Accepted: numpy arrays and torch tensors of shape ``(N, 3)`` (or ``(1, N, 3)``),
Open3D ``PointCloud`` / ``TriangleMesh``, trimesh ``PointCloud`` / ``Trimesh`` (surfaces
are sampled), and paths (read through :func:`canocaps.io.read_points`).
Everything funnels through :func:`canocaps.io.validate_points`, so bad input raises
:class:`canocaps.errors.CanocapsInputError` with one line naming the culprit.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from canocaps.errors import CanocapsInputError

__all__ = ["as_points", "subsample", "normalization", "model_device", "min_points_of"]

#: Points sampled from a mesh object passed directly (files use io's own default).
MESH_SAMPLES = 2048


def as_points(obj: Any, name: str = "points", min_points: int = 1, seed: int = 0) -> np.ndarray:
    """Return ``obj`` as a validated ``(N, 3)`` float32 numpy array (see module doc)."""
    from canocaps.io import read_points, validate_points

    if isinstance(obj, (str, os.PathLike)):
        return read_points(Path(obj), min_points=min_points, seed=seed)
    arr: Any = obj
    mod = type(obj).__module__ or ""
    if mod.startswith("torch"):
        arr = obj.detach().cpu().numpy()
    elif mod.startswith("open3d"):
        import open3d as o3d

        if isinstance(obj, o3d.geometry.TriangleMesh):
            if len(obj.triangles) == 0:
                arr = np.asarray(obj.vertices)
            else:
                arr = np.asarray(obj.sample_points_uniformly(MESH_SAMPLES, use_triangle_normal=False).points)
        elif hasattr(obj, "points"):
            arr = np.asarray(obj.points)
        else:
            raise CanocapsInputError(f"{name}: unsupported Open3D object {type(obj).__name__}")
    elif mod.startswith("trimesh"):
        import trimesh

        if isinstance(obj, trimesh.Trimesh) and len(obj.faces) > 0:
            arr, _ = trimesh.sample.sample_surface(obj, MESH_SAMPLES, seed=seed)
        elif hasattr(obj, "vertices"):
            arr = np.asarray(obj.vertices)
        else:
            raise CanocapsInputError(f"{name}: unsupported trimesh object {type(obj).__name__}")
    if isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    try:
        arr = np.asarray(arr)
    except Exception as exc:  # ragged lists and the like
        raise CanocapsInputError(f"{name}: cannot be read as an (N, 3) array ({exc})") from None
    return validate_points(arr, min_points, name)


def subsample(points: np.ndarray, num: int | None, seed: int = 0) -> np.ndarray:
    """A random subset of ``num`` rows of ``points`` ``(N, 3)`` (all of them if N <= num).

    Deterministic for a given ``seed``; order of the kept points is preserved.
    """
    if num is None or points.shape[0] <= num:
        return points
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(points.shape[0], size=num, replace=False))
    return points[idx]


def normalization(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid ``(3,)`` and radius (largest distance to the centroid) of ``(N, 3)`` points.

    The networks are trained on clouds centred and scaled into the unit sphere;
    ``(points - centroid) / radius`` brings any cloud there. The radius is floored
    at 1e-12 so a degenerate cloud does not divide by zero.
    """
    c = points.mean(axis=0, dtype=np.float64)
    r = float(np.sqrt(((points - c) ** 2).sum(axis=1)).max())
    return c, max(r, 1e-12)


def model_device(model: Any) -> "Any":
    """The torch device of ``model``'s parameters (CPU for parameter-free objects)."""
    import torch

    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    dev = getattr(model, "device", None)
    return torch.device(dev) if dev is not None else torch.device("cpu")


def min_points_of(model: Any) -> int:
    """The fewest points ``model`` accepts: its number of capsules K (at least 3)."""
    for attr in ("num_capsules",):
        k = getattr(model, attr, None)
        if isinstance(k, int):
            return max(k, 3)
    cfg = getattr(model, "config", None)
    k = getattr(cfg, "num_capsules", None)
    return max(int(k), 3) if isinstance(k, int) else 3
