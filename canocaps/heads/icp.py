"""Open3D helpers shared by the registration head and the baselines: clouds, ICP, scoring.

All transforms are ``(4, 4)`` float64 and map the source onto the target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ICP_METHODS", "ROBUST_SCALE", "CORE_FRACTION", "IcpOutcome", "to_pcd", "estimate_normals", "evaluate",
           "icp", "nearest_distances", "robust_score", "core_distance"]

#: Supported ICP error metrics.
ICP_METHODS = ("point_to_plane", "point_to_point")

#: Scale of :func:`robust_score`, as a fraction of the inlier distance (0.5: chosen on the
#: real-mesh validation pairs, ``tools/study_registration_selection.py``, where 0.3 did about
#: as well and 1.0 worse on clean, partial and sparse pairs).
ROBUST_SCALE = 0.5

#: Fraction of points :func:`core_distance` averages over (0.1: chosen with the overlap
#: threshold of :func:`canocaps.heads.registration.register` on the validation pairs, among
#: 0.1 / 0.2 / 0.3).
CORE_FRACTION = 0.1


@dataclass
class IcpOutcome:
    """What one ICP run (or one evaluation) gives: transform, fitness, inlier RMSE, pairs.

    ``score`` (:func:`robust_score`) and ``core_distance`` (:func:`core_distance`) are
    filled in when the caller computed them (NaN otherwise).
    """

    transformation: np.ndarray
    fitness: float
    inlier_rmse: float
    correspondence_set: np.ndarray
    score: float = float("nan")
    core_distance: float = float("nan")

    @classmethod
    def from_open3d(cls, r: Any) -> "IcpOutcome":
        return cls(np.array(r.transformation, dtype=np.float64), float(r.fitness), float(r.inlier_rmse),
                   np.asarray(r.correspondence_set, dtype=np.int64).reshape(-1, 2))


def to_pcd(points: np.ndarray) -> Any:
    """``(N, 3)`` array -> ``open3d.geometry.PointCloud`` (float64 copy)."""
    import open3d as o3d

    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))


def estimate_normals(pcd: Any, knn: int = 30) -> Any:
    """Estimate unoriented normals in place from the ``knn`` nearest neighbours; returns ``pcd``.

    A k-nearest-neighbour search (not a radius) keeps this independent of the units.
    """
    import open3d as o3d

    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn))
    return pcd


def evaluate(source: Any, target: Any, transformation: np.ndarray, max_distance: float) -> IcpOutcome:
    """Score ``transformation`` without moving it (inliers within ``max_distance``)."""
    import open3d as o3d

    r = o3d.pipelines.registration.evaluate_registration(source, target, float(max_distance),
                                                        np.asarray(transformation, dtype=np.float64))
    return IcpOutcome.from_open3d(r)


def icp(source: Any, target: Any, init: np.ndarray, max_distance: float, method: str = "point_to_plane",
        max_iteration: int = 50, coarse_factor: float = 3.0) -> IcpOutcome:
    """Refine ``init`` with Open3D ICP; the returned figures are measured at ``max_distance``.

    Two stages: first with a correspondence distance ``coarse_factor * max_distance``
    (widens the basin when the initial alignment is off by a few degrees), then at
    ``max_distance``. ``method="point_to_plane"`` needs normals on ``target``
    (:func:`estimate_normals`).
    """
    import open3d as o3d

    reg = o3d.pipelines.registration
    if method == "point_to_plane":
        estimation = reg.TransformationEstimationPointToPlane()
    elif method == "point_to_point":
        estimation = reg.TransformationEstimationPointToPoint(False)
    else:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"icp method must be one of {', '.join(ICP_METHODS)}, not {method!r}")
    criteria = reg.ICPConvergenceCriteria(relative_fitness=1e-6, relative_rmse=1e-6, max_iteration=max_iteration)
    T = np.asarray(init, dtype=np.float64)
    for dist in ((coarse_factor * max_distance, max_distance) if coarse_factor > 1 else (max_distance,)):
        T = np.array(reg.registration_icp(source, target, float(dist), T, estimation, criteria).transformation)
    return evaluate(source, target, T, max_distance)


def nearest_distances(source_points: np.ndarray, target_tree: Any, transformation: np.ndarray) -> np.ndarray:
    """``(N,)`` distance (unsquared, input units) from each moved source point ``(N, 3)`` to the target.

    ``target_tree``: a ``scipy.spatial.cKDTree`` of the target points; ``transformation``
    ``(4, 4)`` moves the source onto the target.
    """
    T = np.asarray(transformation, dtype=np.float64)
    moved = np.asarray(source_points, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]
    d, _ = target_tree.query(moved)
    return np.asarray(d, dtype=np.float64)


def robust_score(distances: np.ndarray, max_distance: float, scale: float = ROBUST_SCALE) -> float:
    """Robust alignment score in [0, 1] from :func:`nearest_distances` ``(N,)``; higher is better.

    The mean Geman-McClure similarity ``1 / (1 + (d / (scale * max_distance))^2)``. Unlike
    Open3D's fitness (inlier fraction within ``max_distance``) every distance counts, so
    of two alignments with the same overlap the tighter one wins: on near-symmetric
    shapes the 180-degree-turned alignment often has a higher fitness by a few thousandths
    but a larger inlier RMSE. On the 130 real-mesh validation pairs, choosing among the
    same ICP-refined hypotheses by this score instead of fitness-then-RMSE raised recall
    from 0.838 / 0.877 / 0.354 / 0.700 to 0.946 / 0.938 / 0.415 / 0.823 (clean / noisy /
    partial / sparse; ``python tools/study_registration_selection.py``).
    """
    d = np.asarray(distances, dtype=np.float64)
    return float(np.mean(1.0 / (1.0 + (d / (scale * float(max_distance))) ** 2)))


def core_distance(distances: np.ndarray, fraction: float = CORE_FRACTION) -> float:
    """Mean of the smallest ``fraction`` of :func:`nearest_distances` ``(N,)`` (input units); lower is better.

    The trimmed criterion of trimmed ICP (Chetverikov et al. 2002) taken to a small
    overlap: how tightly the best-matching part of the source lies on the target. Two
    partial views overlap in part only, and a wrong alignment can cover more of the
    target than the right one (a higher fitness and robust score) while fitting its best
    part less tightly.
    """
    d = np.sort(np.asarray(distances, dtype=np.float64))
    return float(d[:max(1, int(fraction * len(d)))].mean())
