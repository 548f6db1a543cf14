"""The common dataset behaviour: unit-sphere normalisation, N-point selection, resampled views.

Every dataset of :mod:`canocaps.data` is a :class:`PointCloudDataset`. Subclasses say how
many items they have and return the *stored* cloud of item ``i`` (``(M, 3)``, any M >= 1)
and its label; this class does the rest, identically for all of them:

1. the stored cloud is normalised into the unit sphere: centred on its centroid (mean of
   the stored points) and scaled so that its farthest point has norm 1;
2. ``num_points`` points are selected: ``sampling="random"`` draws a random subset
   (without replacement when M >= N, else all points plus random repeats), from a
   per-item generator; ``sampling="first"`` takes the first N (the official test protocol);
3. with ``resample_views=True`` a second, *independent* selection ``points_b`` of the same
   surface is added: disjoint from ``points`` when M >= 2N (two independent uniform samples
   of the surface, since the stored points are i.i.d. surface samples), else an independent
   random subset (which may share points with ``points``).

Items are dicts ``{"points": FloatTensor (N, 3), "label": LongTensor (), "index": int}``
(+ ``"points_b"``), the contract in docs/CONTRIBUTING.md.

Randomness: with ``seed=None`` each call draws a fresh seed from torch's global generator
(the DataLoader seeds it per worker, so runs are reproducible under ``torch.manual_seed``);
with an integer ``seed`` item ``i`` uses ``numpy.random.default_rng([seed, epoch, i])``, so
the same (seed, epoch, index) always gives the same points; call :meth:`set_epoch` to vary
them per epoch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from canocaps.errors import CanocapsInputError
from canocaps.io import unit_sphere

__all__ = ["PointCloudDataset", "ArrayDataset", "normalize_unit_sphere", "select_indices", "check_split", "SAMPLING_MODES",
           "cache_root"]

SAMPLING_MODES = ("random", "first")


def cache_root() -> Path:
    """The package's cache folder: ``$CANOCAPS_CACHE`` or ``~/.cache/canocaps`` (generated/converted data)."""
    root = os.environ.get("CANOCAPS_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "canocaps"


def normalize_unit_sphere(points: np.ndarray, name: str = "points") -> np.ndarray:
    """Centre ``(M, 3)`` points on their mean and scale the farthest to norm 1 (float32 copy).

    Raises :class:`CanocapsInputError` for an empty, non-finite or single-location cloud.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
        raise CanocapsInputError(f"{name}: expected an (M, 3) array with M >= 1, got shape {tuple(p.shape)}")
    if not np.isfinite(p).all():
        raise CanocapsInputError(f"{name}: contains NaN or inf")
    c, r = unit_sphere(p, min_radius=0.0)  # the one normalisation (canocaps.io)
    if not r > 0:
        raise CanocapsInputError(f"{name}: all points coincide, cannot normalise")
    return ((p - c) / r).astype(np.float32)


def select_indices(m: int, n: int, mode: str, rng: np.random.Generator | None, views: int = 1) -> list[np.ndarray]:
    """Indices of ``views`` selections of ``n`` out of ``m`` stored points (see the module docstring).

    ``mode="first"`` is deterministic: view 0 is ``0..n-1``, view 1 is the next n (wrapping
    modulo m). ``mode="random"`` needs ``rng``; views are disjoint when ``m >= views * n``.
    """
    if m < 1 or n < 1:
        raise CanocapsInputError(f"cannot select {n} of {m} points")
    if mode == "first":
        return [np.arange(v * n, (v + 1) * n) % m for v in range(views)]
    if mode != "random":
        raise CanocapsInputError(f"sampling must be one of {SAMPLING_MODES}, got {mode!r}")
    assert rng is not None
    if m >= views * n:
        perm = rng.permutation(m)
        return [perm[v * n:(v + 1) * n] for v in range(views)]
    out = []
    for _ in range(views):
        if m >= n:
            out.append(rng.permutation(m)[:n])
        else:  # all points once, the rest random repeats, shuffled
            out.append(rng.permutation(np.concatenate([np.arange(m), rng.integers(0, m, n - m)])))
    return out


_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def check_split(split: str) -> str:
    """Canonical split name (``train``/``val``/``test``; ``valid``/``validation`` mean ``val``)."""
    s = _SPLIT_ALIASES.get(str(split).lower())
    if s is None:
        raise CanocapsInputError(f"split must be one of train/val/test, got {split!r}")
    return s


class PointCloudDataset(Dataset):
    """Base class: implement ``__len__``, :meth:`get_cloud` and :meth:`get_label`; set ``class_names``.

    Args:
        num_points: points per item N (>= 1).
        sampling: ``"random"`` (training) or ``"first"`` (fixed test inputs).
        resample_views: add ``"points_b"``, an independent selection of the same surface.
        seed: ``None`` (draw from torch's global RNG) or an int (per-item deterministic).
        normalize: normalise each stored cloud into the unit sphere (default True).
    """

    class_names: Sequence[str] = ()

    def __init__(self, num_points: int = 1024, *, sampling: str = "random", resample_views: bool = False,
                 seed: int | None = None, normalize: bool = True) -> None:
        if int(num_points) < 1:
            raise CanocapsInputError(f"num_points must be >= 1, got {num_points}")
        if sampling not in SAMPLING_MODES:
            raise CanocapsInputError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        self.num_points = int(num_points)
        self.sampling = sampling
        self.resample_views = bool(resample_views)
        self.seed = seed
        self.normalize = normalize
        self.epoch = 0

    # --- to implement -------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_cloud(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        """The stored cloud of item ``index``, ``(M, 3)`` (any float dtype)."""
        raise NotImplementedError

    def get_label(self, index: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def set_epoch(self, epoch: int) -> None:
        """Vary the random selections of a seeded dataset per epoch."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,)).item()))
        return np.random.default_rng([int(self.seed), self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index = int(index) % n
        cloud = np.asarray(self.get_cloud(index))
        if self.normalize:
            cloud = normalize_unit_sphere(cloud, f"{type(self).__name__} item {index}")
        else:
            cloud = cloud.astype(np.float32, copy=False)
        rng = self._rng(index) if self.sampling == "random" else None
        idx = select_indices(len(cloud), self.num_points, self.sampling, rng, 2 if self.resample_views else 1)
        item: dict[str, Any] = {
            "points": torch.from_numpy(np.ascontiguousarray(cloud[idx[0]])),
            "label": torch.tensor(int(self.get_label(index)), dtype=torch.long),
            "index": index,
        }
        if self.resample_views:
            item["points_b"] = torch.from_numpy(np.ascontiguousarray(cloud[idx[1]]))
        return item

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(items={len(self)}, classes={self.num_classes}, num_points={self.num_points}, "
                f"sampling={self.sampling!r}, resample_views={self.resample_views})")


class ArrayDataset(PointCloudDataset):
    """Clouds held in memory: ``points (S, M, 3)`` (float16/32), ``labels (S,)`` int, ``class_names``."""

    def __init__(self, points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], num_points: int = 1024,
                 **kw: Any) -> None:
        super().__init__(num_points, **kw)
        points = np.asarray(points)
        labels = np.asarray(labels).reshape(-1)
        if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] < 1:
            raise CanocapsInputError(f"points must have shape (S, M, 3), got {tuple(points.shape)}")
        if len(labels) != len(points):
            raise CanocapsInputError(f"{len(points)} clouds but {len(labels)} labels")
        self.points = points
        self.labels = labels.astype(np.int64)
        self.class_names = list(class_names)

    def __len__(self) -> int:
        return len(self.points)

    def get_cloud(self, index: int) -> np.ndarray:
        return self.points[index]

    def get_label(self, index: int) -> int:
        return int(self.labels[index])
