"""Open3D geometries for the same five pictures, for interactive viewers.

Each builder returns a list of ``open3d.geometry.Geometry`` (point clouds and keypoint
spheres) ready for :func:`canocaps.viz.show`. Side-by-side layouts shift clouds along
+x by ``spacing`` (in the clouds' units).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from canocaps.viz.colors import MOVED, SOURCE, TARGET, capsule_colors, palette_for
from canocaps.viz.png import _as_points


def _o3d():
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


def point_cloud(points, colors, offset: Sequence[float] = (0.0, 0.0, 0.0)):
    """An ``o3d.geometry.PointCloud`` of (N, 3) points; colours (3,) or (N, 3) in [0, 1]."""
    o3d = _o3d()
    pts = _as_points(points) + np.asarray(offset, dtype=np.float64)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    colors = np.asarray(colors, dtype=np.float64)
    pcd.colors = o3d.utility.Vector3dVector(np.broadcast_to(colors, pts.shape).copy())
    return pcd


def keypoint_spheres(keypoints, radius: float = 0.04, colors=None, offset=(0.0, 0.0, 0.0)) -> list:
    """One sphere mesh of ``radius`` per keypoint (K, 3)."""
    o3d = _o3d()
    kps = _as_points(keypoints)
    colors = palette_for(len(kps)) if colors is None else np.asarray(colors)
    spheres = []
    for p, c in zip(kps, colors):
        s = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=10)
        s.translate(p + np.asarray(offset, dtype=np.float64))
        s.paint_uniform_color(c)
        s.compute_vertex_normals()
        spheres.append(s)
    return spheres


def capsule_geometries(points, assignment, keypoints, radius: float = 0.04) -> list:
    """(a) a cloud coloured by capsule assignment with keypoints as spheres."""
    k = len(_as_points(keypoints))
    return [point_cloud(points, capsule_colors(assignment, k)), *keypoint_spheres(keypoints, radius)]


def canonical_geometries(points, canonical, spacing: float = 2.5) -> list:
    """(b) input (orange) and canonical pose (blue) side by side."""
    return [point_cloud(points, SOURCE), point_cloud(canonical, TARGET, (spacing, 0, 0))]


def reconstruction_geometries(points, reconstruction, spacing: float = 2.5) -> list:
    """(c) input (blue) and reconstruction (green) side by side."""
    return [point_cloud(points, TARGET), point_cloud(reconstruction, MOVED, (spacing, 0, 0))]


def registration_geometries(a, b, moved_a, spacing: float = 3.0) -> list:
    """(d) left: A (orange) and B (blue) before; right: moved A (green) on B."""
    return [point_cloud(a, SOURCE), point_cloud(b, TARGET),
            point_cloud(moved_a, MOVED, (spacing, 0, 0)), point_cloud(b, TARGET, (spacing, 0, 0))]


def stability_geometries(rotated: Sequence, canonical: Sequence, spacing: float = 3.0) -> list:
    """(e) left: the rotated copies; right: their canonical clouds overlaid (one colour per copy)."""
    colors = palette_for(len(rotated))
    return ([point_cloud(r, c) for r, c in zip(rotated, colors)]
            + [point_cloud(x, c, (spacing, 0, 0)) for x, c in zip(canonical, colors)])
