"""The procedural dataset: generated on first use, cached as h5, loaded into memory.

Cache: ``$CANOCAPS_CACHE/procedural/`` (default ``~/.cache/canocaps/procedural/``), one file
per split, named ``procedural-v{VERSION}-{split}-{per_class}x{points}-seed{seed}.h5`` with
``points (S, P, 3) float16`` (quantisation <= 2.5e-4 inside the unit sphere), ``label (S,)
int64`` and attributes (version, classes, split, seed). Files are written atomically (a
temporary file renamed at the end), so an interrupted generation leaves no cache behind;
bump :data:`VERSION` whenever a builder changes so that stale caches are never read.
Sizes at the defaults (300/30/50 shapes per class, 2048 points, 14 classes): 52 MB train,
5.2 MB val, 8.6 MB test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from canocaps._files import atomic_path
from canocaps.data.base import ArrayDataset, cache_root, check_split
from canocaps.data.procedural.generator import CLASS_NAMES, generate_split
from canocaps.errors import CanocapsInputError, OutputExistsError

__all__ = ["VERSION", "DEFAULT_PER_CLASS", "ProceduralShapes", "cache_dir", "cache_path", "load_or_generate"]

#: bump when any shape builder changes (the cache file name carries it)
VERSION = 2
#: shapes per class of each split by default
DEFAULT_PER_CLASS = {"train": 300, "val": 30, "test": 50}


def cache_dir() -> Path:
    """``$CANOCAPS_CACHE/procedural`` or ``~/.cache/canocaps/procedural``."""
    return cache_root() / "procedural"


def cache_path(split: str, per_class: int, points_per_shape: int = 2048, seed: int = 0, root: str | Path | None = None) -> Path:
    """Where the cache file of one split lives."""
    split = check_split(split)
    base = Path(root) if root is not None else cache_dir()
    return base / f"procedural-v{VERSION}-{split}-{per_class}x{points_per_shape}-seed{seed}.h5"


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        if int(f.attrs.get("version", -1)) != VERSION or json.loads(f.attrs["classes"]) != list(CLASS_NAMES):
            raise OSError("stale cache")
        return np.asarray(f["points"]), np.asarray(f["label"])


def load_or_generate(split: str, per_class: int, points_per_shape: int = 2048, seed: int = 0,
                     root: str | Path | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(14 * per_class, P, 3)`` float16 and labels of one split, from the cache or generated now."""
    import h5py

    split = check_split(split)
    if int(per_class) < 1 or int(points_per_shape) < 1:
        raise CanocapsInputError(f"per_class and points_per_shape must be >= 1, got {per_class}, {points_per_shape}")
    path = cache_path(split, per_class, points_per_shape, seed, root)
    if path.exists():
        try:
            return _read(path)
        except (OSError, KeyError, ValueError):
            print(f"canocaps: regenerating unreadable cache {path}", file=sys.stderr)
    points, labels = generate_split(split, int(per_class), int(points_per_shape), int(seed), progress=progress)
    points16 = points.astype(np.float16)
    try:
        with atomic_path(path, force=path.exists()) as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("points", data=points16)
                f.create_dataset("label", data=labels)
                f.attrs.update(version=VERSION, classes=json.dumps(list(CLASS_NAMES)), split=split, seed=int(seed),
                               per_class=int(per_class), convention="+y up, front +z, unit sphere")
    except OutputExistsError:
        pass  # another process wrote the same cache meanwhile: identical content
    except OSError as e:  # read-only cache folder: keep going without a cache
        print(f"canocaps: could not write cache {path}: {e}", file=sys.stderr)
    return points16, labels


class ProceduralShapes(ArrayDataset):
    """The bundled offline dataset: 14 classes of procedural shapes in canonical pose (+y up, front +z).

    Args:
        split: ``train`` / ``val`` (``valid``) / ``test``; splits never share a shape.
        num_points: points per item N (default 1024).
        per_class: shapes per class (default 300 / 30 / 50 for train / val / test); tests use a few.
        points_per_shape: stored surface samples per shape (default 2048).
        classes: a subset of :data:`CLASS_NAMES` (labels keep their global index) or None.
        shape_seed: base seed of the generated shapes (default 0, the documented set).
        cache_root: cache folder (default ``$CANOCAPS_CACHE/procedural``).
        seed: seed of the per-item point selection (as for every dataset; None = torch's global RNG).
        **kw: ``sampling``, ``resample_views``, ``normalize`` (see :class:`~canocaps.data.base.PointCloudDataset`).
    """

    def __init__(self, split: str = "train", num_points: int = 1024, *, per_class: int | None = None,
                 points_per_shape: int = 2048, classes: Sequence[str] | None = None, shape_seed: int = 0,
                 cache_root: str | Path | None = None, progress: bool = True, seed: int | None = None,
                 **kw: Any) -> None:
        split = check_split(split)
        per_class = DEFAULT_PER_CLASS[split] if per_class is None else int(per_class)
        points, labels = load_or_generate(split, per_class, points_per_shape, shape_seed, cache_root, progress)
        if classes is not None:
            unknown = [c for c in classes if c not in CLASS_NAMES]
            if unknown:
                raise CanocapsInputError(f"unknown procedural class(es) {unknown}; known: {', '.join(CLASS_NAMES)}")
            keep = np.isin(labels, [CLASS_NAMES.index(c) for c in classes])
            points, labels = points[keep], labels[keep]
        super().__init__(points, labels, CLASS_NAMES, num_points, seed=seed, **kw)
        self.split = split
