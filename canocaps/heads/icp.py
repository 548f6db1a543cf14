"""Open3D helpers shared by the registration head and the baselines: clouds, ICP, scoring.

All transforms are ``(4, 4)`` float64 and map the source onto the target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ICP_METHODS", "IcpOutcome", "to_pcd", "estimate_normals", "evaluate", "icp"]

#: Supported ICP error metrics.
ICP_METHODS = ("point_to_plane", "point_to_point")


@dataclass
class IcpOutcome:
    """What one ICP run (or one evaluation) gives: transform, fitness, inlier RMSE, pairs."""

    transformation: np.ndarray
    fitness: float
    inlier_rmse: float
    correspondence_set: np.ndarray

    @classmethod
    def from_open3d(cls, r: Any) -> "IcpOutcome":
        return cls(np.array(r.transformation, dtype=np.float64), float(r.fitness), float(r.inlier_rmse),
                   np.asarray(r.correspondence_set, dtype=np.int64).reshape(-1, 2))

    def better_than(self, other: "IcpOutcome | None", tol: float = 1e-3) -> bool:
        """Higher fitness wins; within ``tol`` of each other, lower inlier RMSE wins."""
        if other is None:
            return True
        if abs(self.fitness - other.fitness) > tol:
            return self.fitness > other.fitness
        return self.inlier_rmse < other.inlier_rmse


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
