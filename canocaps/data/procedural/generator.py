"""Deterministic generation of the bundled procedural shape set.

A shape is fixed by ``(seed, split, class, index)``: the builder of its class draws every
proportion, part count and style from a generator seeded with that tuple; every part is
then resized about its own centre (up to +-25 % per axis), the whole shape is stretched
(up to x1.8 per axis), tapered and bent along the up axis, and the mesh is normalised (area-weighted surface centroid at the origin, farthest surface point at
radius 1). Points are then sampled uniformly on the surface (area-weighted).

Canonical pose of every class: **+y up, front along +z** (airplane nose, car bonnet,
chair/sofa/bench seat front, screen and guitar face, boat bow), width along x.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from canocaps.data.procedural import furniture, objects, vehicles
from canocaps.data.procedural.mesh import Mesh, concat, sample_surface

__all__ = ["CLASS_BUILDERS", "CLASS_NAMES", "SPLIT_CODES", "shape_rng", "make_mesh", "sample_shape",
           "sample_shape_parts", "generate_split"]

#: class name -> builder(rng) -> list of parts. Label = position in this (sorted) table.
CLASS_BUILDERS: dict[str, Callable[[np.random.Generator], list[Mesh]]] = {
    "airplane": vehicles.airplane,
    "bench": furniture.bench,
    "boat": vehicles.boat,
    "bottle": objects.bottle,
    "car": vehicles.car,
    "chair": furniture.chair,
    "guitar": objects.guitar,
    "lamp": furniture.lamp,
    "monitor": objects.monitor,
    "mug": objects.mug,
    "rocket": vehicles.rocket,
    "sofa": furniture.sofa,
    "table": furniture.table,
    "tree": objects.tree,
}
CLASS_NAMES: tuple[str, ...] = tuple(CLASS_BUILDERS)

#: split name -> code mixed into the seed, so splits never share a shape.
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def shape_rng(seed: int, split: str, class_name: str, index: int) -> np.random.Generator:
    """The generator that fixes shape ``index`` of ``class_name`` in ``split`` for a base ``seed``."""
    return np.random.default_rng([int(seed), SPLIT_CODES[split], CLASS_NAMES.index(class_name), int(index)])


def _deform(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global deformation that keeps the pose: per-axis stretch ``exp(U(-0.6, 0.6))``, taper of x/z along y
    (+-15 % at the ends) and a quadratic bend of up to 8 % of the height."""
    v = v * np.exp(rng.uniform(-0.6, 0.6, size=3))
    lo, hi = v[:, 1].min(), v[:, 1].max()
    s = (v[:, 1] - lo) / max(hi - lo, 1e-9)  # 0 at the bottom, 1 at the top
    taper = 1.0 + rng.uniform(-0.3, 0.3) * (s - 0.5)
    v = v * np.stack([taper, np.ones_like(taper), taper], 1)
    bend = rng.uniform(-0.08, 0.08, size=2) * (hi - lo)
    v[:, 0] += bend[0] * s ** 2
    v[:, 2] += bend[1] * s ** 2
    return v


def normalize_mesh(mesh: Mesh) -> Mesh:
    """Centre on the area-weighted surface centroid and scale the farthest surface point to radius 1.

    The farthest point of a triangle from any point is one of its corners, so the max over
    vertices is the exact bounding radius of the surface.
    """
    areas = mesh.face_areas()
    centroids = mesh.vertices[mesh.faces].mean(1)
    c = (areas[:, None] * centroids).sum(0) / areas.sum()
    v = mesh.vertices - c
    used = np.unique(mesh.faces)
    return Mesh(v / np.linalg.norm(v[used], axis=1).max(), mesh.faces)


def _jitter_parts(parts: list[Mesh], rng: np.random.Generator, amount: float = 0.25) -> list[Mesh]:
    """Scale every part about its own centre by ``exp(U(-amount, amount))`` per axis (part-level variation)."""
    out = []
    for p in parts:
        c = 0.5 * (p.vertices.min(0) + p.vertices.max(0))
        out.append(Mesh((p.vertices - c) * np.exp(rng.uniform(-amount, amount, size=3)) + c, p.faces))
    return out


def make_mesh(class_name: str, rng: np.random.Generator,
              return_parts: bool = False) -> Mesh | tuple[Mesh, np.ndarray]:
    """Build, deform and normalise one shape of ``class_name`` (canonical pose, unit sphere).

    With ``return_parts`` also the part of every face, ``(F,)`` int64: the index of the
    builder's part (seat, leg, wing, ...) the face belongs to.
    """
    parts = CLASS_BUILDERS[class_name](rng)
    mesh = concat(_jitter_parts(parts, rng))
    mesh = normalize_mesh(Mesh(_deform(mesh.vertices, rng), mesh.faces))
    if not return_parts:
        return mesh
    return mesh, np.repeat(np.arange(len(parts), dtype=np.int64), [len(p.faces) for p in parts])


def sample_shape(class_name: str, seed: int = 0, split: str = "train", index: int = 0,
                 num_points: int = 2048) -> np.ndarray:
    """Surface sample ``(num_points, 3)`` float32 of one procedural shape (deterministic)."""
    rng = shape_rng(seed, split, class_name, index)
    mesh = make_mesh(class_name, rng)
    return sample_surface(mesh, num_points, rng).astype(np.float32)


def sample_shape_parts(class_name: str, seed: int = 0, split: str = "train", index: int = 0,
                       num_points: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_shape` (the very same points) and the part of every point ``(num_points,)`` int64."""
    rng = shape_rng(seed, split, class_name, index)
    mesh, face_part = make_mesh(class_name, rng, return_parts=True)
    points, faces = sample_surface(mesh, num_points, rng, return_faces=True)
    return points.astype(np.float32), face_part[faces]


def generate_split(split: str, per_class: int, num_points: int = 2048, seed: int = 0,
                   classes: tuple[str, ...] = CLASS_NAMES, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All shapes of one split: points ``(C * per_class, num_points, 3)`` float32 and labels ``(C * per_class,)`` int64.

    Labels index :data:`CLASS_NAMES` (not ``classes``), so subsets keep their labels.
    Shape ``i`` of a class is the same whatever ``per_class`` is (a prefix of a bigger set).
    """
    from tqdm.auto import tqdm

    total = len(classes) * per_class
    points = np.empty((total, num_points, 3), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    bar = tqdm(total=total, desc=f"procedural {split}", unit="shape", disable=not progress, leave=False)
    k = 0
    for name in classes:
        for i in range(per_class):
            points[k] = sample_shape(name, seed, split, i, num_points)
            labels[k] = CLASS_NAMES.index(name)
            k += 1
            bar.update(1)
    bar.close()
    return points, labels
