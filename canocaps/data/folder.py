"""Any folder of files that :func:`canocaps.io.read_points` reads (clouds and meshes).

Layout::

    root/<class>/**/<file>.{ply,pcd,xyz,pts,txt,npy,npz,obj,off,stl}   class = first-level sub-folder
    root/<file>.ext                                                  files directly in root: one class,
                                                                     named after the folder
    root/train/..., root/test/... (optional)                         with ``split``, only that sub-folder

Files are sorted by path; labels index the sorted class names. Meshes are sampled to
``points_per_file`` surface points (seeded per file, so a file always gives the same
sample), clouds with more points are subsampled to it; the selection of N then follows
``sampling``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from canocaps.data.base import PointCloudDataset, check_split
from canocaps.errors import CanocapsInputError

__all__ = ["PointFolder", "list_folder"]


def list_folder(root: str | os.PathLike) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names) of a folder laid out as in the module docstring."""
    from canocaps.io import READ_EXTENSIONS

    root = Path(root)
    if not root.is_dir():
        raise CanocapsInputError(f"{root}: not a folder")

    def readable(p: Path) -> bool:
        return p.is_file() and p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith(".")

    entries = []
    top = sorted(p for p in root.iterdir() if readable(p))
    if top:
        entries += [(p, root.name) for p in top]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entries += [(p, sub.name) for p in sorted(sub.rglob("*")) if readable(p)]
    if not entries:
        raise CanocapsInputError(f"{root}: no readable point-cloud or mesh files (extensions {', '.join(READ_EXTENSIONS)})")
    names = sorted({c for _, c in entries})
    return [p for p, _ in entries], [names.index(c) for _, c in entries], names


class PointFolder(PointCloudDataset):
    """A folder of point clouds / meshes as a dataset (see the module docstring).

    Args:
        root: the folder.
        split: None (the whole folder) or ``train``/``val``/``test`` (reads ``root/<split>``,
            ``valid`` accepted as folder name for ``val``).
        points_per_file: surface samples per mesh / cap on cloud size (default ``2 * num_points``).
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None, num_points: int = 1024,
                 points_per_file: int | None = None, **kw: Any) -> None:
        super().__init__(num_points, **kw)
        root = Path(root)
        if split is not None:
            s = check_split(split)
            cands = [root / s] + ([root / "valid"] if s == "val" else [])
            found = [c for c in cands if c.is_dir()]
            if not found:
                raise CanocapsInputError(f"{root}: no '{s}' sub-folder for split {split!r}")
            root = found[0]
            self.split = s
        self.root = root
        self.paths, labels, self.class_names = list_folder(root)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.points_per_file = int(points_per_file or 2 * self.num_points)

    def __len__(self) -> int:
        return len(self.paths)

    def get_cloud(self, index: int) -> np.ndarray:
        from canocaps.io import read_points

        return read_points(self.paths[index], num_points=self.points_per_file, seed=index)

    def get_label(self, index: int) -> int:
        return int(self.labels[index])
