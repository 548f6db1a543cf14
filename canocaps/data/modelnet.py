"""ModelNet40 in the h5 release used by PointNet/DGCNN (``modelnet40_ply_hdf5_2048``).

Layout (``root``)::

    ply_data_train0.h5 ... ply_data_train4.h5    data (S, 2048, 3) float32, label (S, 1) uint8
    ply_data_test0.h5, ply_data_test1.h5
    shape_names.txt                               optional: one class name per line (label order)

Splits: ``train`` and ``test`` (there is no official validation split: ``val`` raises).
Without ``shape_names.txt`` the 40 standard names below are used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from canocaps.data.base import check_split
from canocaps.data.flat_h5 import FlatH5Dataset
from canocaps.errors import CanocapsInputError

__all__ = ["MODELNET40_CLASSES", "ModelNet40H5", "read_class_names"]

MODELNET40_CLASSES = (
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone", "cup", "curtain",
    "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard", "lamp", "laptop", "mantel",
    "monitor", "night_stand", "person", "piano", "plant", "radio", "range_hood", "sink", "sofa", "stairs", "stool",
    "table", "tent", "toilet", "tv_stand", "vase", "wardrobe", "xbox",
)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names, one per non-empty line (first whitespace-separated token)."""
    names = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    if not names:
        raise CanocapsInputError(f"{path}: no class names")
    return names


class ModelNet40H5(FlatH5Dataset):
    """ModelNet40 h5 files of one split (see the module docstring); items per :class:`PointCloudDataset`."""

    def __init__(self, root: str | os.PathLike, split: str = "train", num_points: int = 1024, **kw: Any) -> None:
        root = Path(root)
        split = check_split(split)
        if split == "val":
            raise CanocapsInputError("ModelNet40 has no validation split; use train or test")
        if not root.is_dir():
            raise CanocapsInputError(f"{root}: not a folder (expected ModelNet40 ply_data_{split}*.h5 files)")
        files = sorted(root.glob(f"ply_data_{split}*.h5"), key=lambda p: (len(p.name), p.name))
        if not files:
            raise CanocapsInputError(f"{root}: no ply_data_{split}*.h5 files")
        names_file = root / "shape_names.txt"
        names = read_class_names(names_file) if names_file.is_file() else list(MODELNET40_CLASSES)
        super().__init__(files, num_points, class_names=names, **kw)
        self.split = split
