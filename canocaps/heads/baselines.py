"""Baselines measured beside Canonical Capsules.

* :class:`PCACanonicalizer`: canonical frame = principal axes (skewness-signed,
  :func:`canocaps.geometry.pca_frame`). Same ``canonicalize`` interface as the model,
  so every head (registration, stability, classification) runs on it unchanged.
  (:func:`canocaps.heads.registration.pca_register` registers with it.)
* :func:`fpfh_ransac_icp`: Open3D's global registration pipeline: voxel downsampling,
  FPFH features, RANSAC on feature matches, then the same ICP as :func:`canocaps.register`.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from canocaps.errors import CanocapsInputError
from canocaps.heads import icp as _icp
from canocaps.heads.results import HypothesisScore, RegistrationResult
from canocaps.io import as_points, subsample, unit_sphere

__all__ = ["PCACanonical", "PCACanonicalizer", "fpfh_ransac_icp"]


def __getattr__(name: str) -> Any:
    if name == "PCACanonical":  # the old name of the PCA result: the one canonicalisation result class
        from canocaps.model.results import CanonicalizationResult

        return CanonicalizationResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PCACanonicalizer:
    """Parameter-free canonicaliser: rotate each cloud into its principal axes, centred."""

    num_capsules = 3  # needs 3 points for a covariance; there are no capsules

    def canonicalize(self, points: Any) -> Any:
        """``points`` ``(B, N, 3)`` or ``(N, 3)`` tensor/array -> a
        :class:`~canocaps.model.results.CanonicalizationResult` (float64 tensors; no capsules:
        keypoints and descriptors are None), ``canonical = points @ R^T + t``."""
        import torch

        from canocaps.geometry import pca_frame
        from canocaps.model.results import CanonicalizationResult

        x = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points)
        x = x.to(torch.float64)
        R, t = pca_frame(x)
        canon = x @ R.transpose(-1, -2) + t.unsqueeze(-2)
        return CanonicalizationResult(canonical_points=canon, R=R, t=t)

    def __repr__(self) -> str:
        return "PCACanonicalizer()"


def fpfh_ransac_icp(a: Any, b: Any, *, voxel_size: float | None = None, refine: bool = True,
                    max_correspondence_distance: float | None = None, icp_method: str = "point_to_plane",
                    max_icp_points: int = 4096, ransac_iterations: int = 100_000, confidence: float = 0.999,
                    seed: int = 0) -> RegistrationResult:
    """Open3D global registration: FPFH + RANSAC, then ICP (the classical baseline).

    Args:
        a, b: clouds (anything :func:`canocaps.register` accepts).
        voxel_size: downsampling voxel for features, input units; default ``0.05 * radius(b)``.
            Normals use radius ``2 * voxel``, FPFH radius ``5 * voxel``, RANSAC inlier
            distance ``1.5 * voxel`` (Open3D's tutorial settings).
        refine, max_correspondence_distance, icp_method, max_icp_points: as in
            :func:`canocaps.register` (default distance ``0.05 * radius(b)``).
        ransac_iterations, confidence: RANSAC stopping criteria.
        seed: Open3D's global random seed (RANSAC is otherwise non-deterministic).

    Returns:
        :class:`RegistrationResult` with ``hypothesis="ransac"``.
    """
    import open3d as o3d

    reg = o3d.pipelines.registration
    pa = as_points(a, "a", min_points=3, seed=seed, dtype=np.float64, pose=True)
    pb = as_points(b, "b", min_points=3, seed=seed, dtype=np.float64, pose=True)
    if icp_method not in _icp.ICP_METHODS:
        raise CanocapsInputError(f"icp_method must be one of {', '.join(_icp.ICP_METHODS)}, not {icp_method!r}")
    t0 = time.perf_counter()
    _, rb = unit_sphere(pb)
    voxel = float(voxel_size) if voxel_size is not None else 0.05 * rb
    dist = float(max_correspondence_distance) if max_correspondence_distance is not None else 0.05 * rb
    if voxel <= 0 or dist <= 0:
        raise CanocapsInputError("voxel_size and max_correspondence_distance must be > 0")
    o3d.utility.random.seed(seed)

    def features(p: np.ndarray) -> tuple[Any, Any]:
        pcd = _icp.to_pcd(p).voxel_down_sample(voxel)
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        f = reg.compute_fpfh_feature(pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100))
        return pcd, f

    d = 1.5 * voxel
    # Open3D prints its warnings (e.g. "too few correspondences") on stdout: keep --json clean
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        sa, fa = features(pa)
        sb, fb = features(pb)
        ransac = reg.registration_ransac_based_on_feature_matching(
            sa, sb, fa, fb, True, d, reg.TransformationEstimationPointToPoint(False), 3,
            [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(d)],
            reg.RANSACConvergenceCriteria(ransac_iterations, confidence))
    src = _icp.to_pcd(subsample(pa, max_icp_points, seed + 2))
    tgt = _icp.to_pcd(subsample(pb, max_icp_points, seed + 3))
    if refine:
        if icp_method == "point_to_plane":
            _icp.estimate_normals(tgt)
        out = _icp.icp(src, tgt, np.asarray(ransac.transformation), dist, icp_method)
    else:
        out = _icp.evaluate(src, tgt, np.asarray(ransac.transformation), dist)
    return RegistrationResult(
        transformation=out.transformation, fitness=out.fitness, inlier_rmse=out.inlier_rmse,
        correspondence_set=out.correspondence_set, hypothesis="ransac", time_s=time.perf_counter() - t0,
        refined=refine, max_correspondence_distance=dist,
        candidates=[HypothesisScore("ransac", out.fitness, out.inlier_rmse, out.transformation)])
