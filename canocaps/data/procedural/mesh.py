"""Tiny triangle-mesh toolkit for the procedural shapes: parametric parts and surface sampling.

Everything is plain numpy (no trimesh objects, no boolean ops) so that a whole shape
(10-40 parts) is built and sampled in a few milliseconds. A :class:`Mesh` is just
``vertices (V, 3) float64`` and ``faces (F, 3) int64``; parts are concatenated, never
merged, which is exactly what uniform *surface* sampling needs (interior overlaps of
touching parts are sampled too; that is how scanned CAD models look as well).

Axis convention of the parts: a solid of revolution is built around the local +y axis.

Why not ``trimesh.creation`` / ``trimesh.sample`` (measured, ``OMP_NUM_THREADS=1 python
tools/bench_procedural_mesh.py``, trimesh 5.2.0, medians on a shared 2-core machine):
trimesh's primitives take 3.5-27x as long at the generator's resolutions (box 18 vs 485 us,
cylinder 192 vs 735 us, uv-sphere ellipsoid 93 vs 906 us, torus 118 vs 624 us, revolve
105 vs 509 us) because each builds and validates a ``Trimesh``; its sampler is 1.14x as slow
on the 14 class shapes (626 vs 711 us for 2048 points; 1.64x counting the ``Trimesh`` it
needs) and draws different points for the same seed, so switching would change the cached
procedural data (a cache-version bump) and every number measured on it, for no gain.
:func:`sample_surface` also returns the face of each point (part labels for
``canocaps.heads.parts``); ``sample_surface_naive`` is the reference it is tested against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Mesh",
    "concat",
    "box",
    "hexahedron",
    "lathe",
    "cylinder",
    "cone",
    "ellipsoid",
    "tube",
    "torus",
    "sweep",
    "sample_surface",
    "sample_surface_naive",
    "rotation_matrix",
]


@dataclass
class Mesh:
    """A triangle soup: ``vertices (V, 3)`` float64, ``faces (F, 3)`` int64 (counter-clockwise not required)."""

    vertices: np.ndarray
    faces: np.ndarray

    def transformed(self, R: np.ndarray | None = None, t=(0.0, 0.0, 0.0), scale=1.0) -> "Mesh":
        """Return ``R @ (scale * v) + t`` (``scale`` scalar or per-axis, applied before ``R``)."""
        v = self.vertices * np.asarray(scale, dtype=np.float64)
        if R is not None:
            v = v @ np.asarray(R, dtype=np.float64).T
        return Mesh(v + np.asarray(t, dtype=np.float64), self.faces)

    def face_areas(self) -> np.ndarray:
        """Area of every face, ``(F,)``."""
        tri = self.vertices[self.faces]
        return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def concat(parts: list[Mesh]) -> Mesh:
    """Concatenate parts into one triangle soup (vertex indices shifted)."""
    verts, faces, offset = [], [], 0
    for p in parts:
        verts.append(p.vertices)
        faces.append(p.faces + offset)
        offset += len(p.vertices)
    return Mesh(np.concatenate(verts, 0), np.concatenate(faces, 0))


def rotation_matrix(axis: str | np.ndarray, angle: float) -> np.ndarray:
    """Right-handed rotation by ``angle`` radians about ``axis`` ('x', 'y', 'z' or a 3-vector)."""
    if isinstance(axis, str):
        axis = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}[axis]
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * (K @ K)


# Faces of a hexahedron whose corners are ordered as in `hexahedron`.
_HEX_FACES = np.array(
    [[0, 1, 2], [0, 2, 3],  # bottom (y-)
     [4, 6, 5], [4, 7, 6],  # top (y+)
     [0, 4, 5], [0, 5, 1],
     [1, 5, 6], [1, 6, 2],
     [2, 6, 7], [2, 7, 3],
     [3, 7, 4], [3, 4, 0]], dtype=np.int64)


def hexahedron(corners: np.ndarray) -> Mesh:
    """A six-sided solid from 8 corners: bottom quad 0-3 then the top quad 4-7 (same order).

    Used for tapered/swept wings, sofa cushions, car bodies: any "deformed box".
    """
    c = np.asarray(corners, dtype=np.float64).reshape(8, 3)
    return Mesh(c, _HEX_FACES.copy())


def box(center, size) -> Mesh:
    """Axis-aligned box with full extents ``size = (sx, sy, sz)`` centred at ``center``."""
    sx, sy, sz = (0.5 * np.asarray(size, dtype=np.float64)).tolist()
    c = np.array([[-sx, -sy, -sz], [sx, -sy, -sz], [sx, -sy, sz], [-sx, -sy, sz],
                  [-sx, sy, -sz], [sx, sy, -sz], [sx, sy, sz], [-sx, sy, sz]])
    return hexahedron(c + np.asarray(center, dtype=np.float64))


def lathe(radii, heights, segments: int = 24, cap_bottom: bool = True, cap_top: bool = True,
          scale_xz=(1.0, 1.0)) -> Mesh:
    """Surface of revolution around +y: the profile ``radii[i]`` at ``heights[i]`` (same length).

    ``scale_xz`` squashes the cross-section into an ellipse. Caps close the ends whose
    radius is non-zero.
    """
    r = np.asarray(radii, dtype=np.float64)
    h = np.asarray(heights, dtype=np.float64)
    m = len(r)
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    cx, cz = np.cos(theta) * scale_xz[0], np.sin(theta) * scale_xz[1]
    ring = np.stack([r[:, None] * cx[None], np.broadcast_to(h[:, None], (m, segments)), r[:, None] * cz[None]], -1)
    verts = [ring.reshape(-1, 3)]
    i = np.arange(m - 1)[:, None]
    j = np.arange(segments)[None]
    a = i * segments + j
    b = i * segments + (j + 1) % segments
    c = a + segments
    d = b + segments
    faces = [np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)]
    n = m * segments
    for cap, row in ((cap_bottom, 0), (cap_top, m - 1)):
        if cap and r[row] > 0:
            verts.append(np.array([[0.0, h[row], 0.0]]))
            jj = np.arange(segments)
            faces.append(np.stack([np.full(segments, n), row * segments + jj, row * segments + (jj + 1) % segments], -1))
            n += 1
    return Mesh(np.concatenate(verts, 0), np.concatenate(faces, 0).astype(np.int64))


def cylinder(radius: float, y0: float, y1: float, segments: int = 20, **kw) -> Mesh:
    """Closed cylinder around +y from height ``y0`` to ``y1``."""
    return lathe([radius, radius], [y0, y1], segments, **kw)


def cone(r0: float, r1: float, y0: float, y1: float, segments: int = 20, **kw) -> Mesh:
    """Truncated cone (frustum) around +y: radius ``r0`` at ``y0`` to ``r1`` at ``y1``."""
    return lathe([r0, r1], [y0, y1], segments, **kw)


def ellipsoid(center, radii, rings: int = 10, segments: int = 18) -> Mesh:
    """Ellipsoid with semi-axes ``radii = (rx, ry, rz)`` at ``center``."""
    phi = np.linspace(0.0, np.pi, rings + 1)
    m = lathe(np.sin(phi), -np.cos(phi), segments, cap_bottom=False, cap_top=False)
    return m.transformed(scale=np.asarray(radii, dtype=np.float64), t=center)


def _frame_from_y(direction: np.ndarray) -> np.ndarray:
    """Rotation taking +y onto ``direction`` (unit)."""
    y = np.array([0.0, 1.0, 0.0])
    d = direction / np.linalg.norm(direction)
    v = np.cross(y, d)
    s, c = np.linalg.norm(v), float(np.dot(y, d))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return rotation_matrix(v, np.arctan2(s, c))


def tube(p0, p1, r0: float, r1: float | None = None, segments: int = 12, caps: bool = True) -> Mesh:
    """Cylinder/frustum from point ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``, default ``r0``)."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    length = float(np.linalg.norm(p1 - p0))
    m = lathe([r0, r0 if r1 is None else r1], [0.0, length], segments, cap_bottom=caps, cap_top=caps)
    return m.transformed(R=_frame_from_y(p1 - p0), t=p0)


def torus(major: float, minor: float, arc: float = 2 * np.pi, segments: int = 24, tube_segments: int = 10,
          start: float = 0.0) -> Mesh:
    """Torus (or an arc of one, ``arc`` radians from ``start``) in the x-y plane, around the z axis."""
    closed = arc >= 2 * np.pi - 1e-9
    u = start + np.linspace(0.0, arc, segments, endpoint=not closed)
    v = np.linspace(0.0, 2 * np.pi, tube_segments, endpoint=False)
    U, V = np.meshgrid(u, v, indexing="ij")
    rr = major + minor * np.cos(V)
    verts = np.stack([rr * np.cos(U), rr * np.sin(U), minor * np.sin(V)], -1).reshape(-1, 3)
    nu = segments if closed else segments - 1
    i = np.arange(nu)[:, None]
    j = np.arange(tube_segments)[None]
    i1 = (i + 1) % segments
    j1 = (j + 1) % tube_segments
    a = i * tube_segments + j
    b = i1 * tube_segments + j
    c = i * tube_segments + j1
    d = i1 * tube_segments + j1
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)])
    return Mesh(verts, faces.astype(np.int64))


def sweep(path, radii, segments: int = 10, caps: bool = True) -> Mesh:
    """A tube of varying radius swept along a polyline ``path (P, 3)`` (one ring per path point)."""
    path = np.asarray(path, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(path),))
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    ref = np.array([1.0, 0.0, 0.0]) if abs(tangents[0, 0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    rings = []
    n1 = np.cross(tangents[0], ref)
    for k in range(len(path)):  # parallel transport of the normal keeps the tube untwisted
        n1 = n1 - np.dot(n1, tangents[k]) * tangents[k]
        n1 /= np.linalg.norm(n1)
        n2 = np.cross(tangents[k], n1)
        rings.append(path[k] + radii[k] * (np.cos(theta)[:, None] * n1 + np.sin(theta)[:, None] * n2))
    verts = [np.concatenate(rings, 0)]
    m = len(path)
    i = np.arange(m - 1)[:, None]
    j = np.arange(segments)[None]
    a = i * segments + j
    b = i * segments + (j + 1) % segments
    faces = [np.stack([a, a + segments, b], -1).reshape(-1, 3), np.stack([b, a + segments, b + segments], -1).reshape(-1, 3)]
    if caps:
        n = m * segments
        jj = np.arange(segments)
        for row, centre in ((0, path[0]), (m - 1, path[-1])):
            verts.append(centre[None])
            faces.append(np.stack([np.full(segments, n), row * segments + jj, row * segments + (jj + 1) % segments], -1))
            n += 1
    return Mesh(np.concatenate(verts, 0), np.concatenate(faces, 0).astype(np.int64))


def sample_surface(mesh: Mesh, count: int, rng: np.random.Generator,
                   return_faces: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``count`` points uniform on the surface (area-weighted face choice, uniform barycentrics), ``(count, 3)``.

    Vectorised: one ``searchsorted`` on the cumulative areas. Degenerate (zero-area)
    faces are never chosen. Matches :func:`sample_surface_naive` in distribution.
    With ``return_faces`` also the face of every point, ``(count,)`` int64 (the same
    draws: the points do not change).
    """
    areas = mesh.face_areas()
    cdf = np.cumsum(areas)
    if cdf[-1] <= 0:
        raise ValueError("mesh has zero surface area")
    face = np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right")
    face = np.minimum(face, len(areas) - 1)
    tri = mesh.vertices[mesh.faces[face]]
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0  # reflect into the triangle: uniform barycentric coordinates
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return (points, face.astype(np.int64)) if return_faces else points


def sample_surface_naive(mesh: Mesh, count: int, rng: np.random.Generator) -> np.ndarray:
    """Reference sampler (slow, obvious): per point, pick a face with probability ∝ area, then
    a point with the square-root barycentric formula of Osada et al. 2002."""
    areas = mesh.face_areas()
    p = areas / areas.sum()
    out = np.empty((count, 3))
    for k in range(count):
        f = rng.choice(len(p), p=p)
        a, b, c = mesh.vertices[mesh.faces[f]]
        r1, r2 = np.sqrt(rng.random()), rng.random()
        out[k] = (1 - r1) * a + r1 * (1 - r2) * b + r1 * r2 * c
    return out
