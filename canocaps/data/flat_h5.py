"""Point clouds stored as flat h5 arrays: ``data (S, N, 3)`` and ``label (S,)`` or ``(S, 1)``.

The layout of the ModelNet40 release (``ply_data_train0.h5`` ...), of the ShapeNet
1024/2048-point releases (``shapenetcorev2_hdf5_2048/train0.h5``, ShapeNetPart
``ply_data_*.h5``) and of files written by ``tools/convert_meshes.py``. Extra datasets
(``normal``, ``pid`` ...) are ignored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from canocaps.data.base import ArrayDataset
from canocaps.errors import CanocapsInputError

__all__ = ["read_flat_h5", "FlatH5Dataset"]


def read_flat_h5(path: str | os.PathLike, require_label: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one file: points ``(S, N, 3)`` (first 3 channels) and labels ``(S,)`` int64 (zeros if absent and allowed)."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise CanocapsInputError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise CanocapsInputError(f"{p}: empty file")
    try:
        with h5py.File(p, "r") as f:
            if "data" not in f:
                raise CanocapsInputError(f"{p}: missing dataset 'data' (expected data (S, N, 3) and label (S,))")
            data = np.asarray(f["data"])
            if "label" in f:
                label = np.asarray(f["label"])
            elif require_label:
                raise CanocapsInputError(f"{p}: missing dataset 'label'")
            else:
                label = np.zeros(len(data), dtype=np.int64)
    except OSError as e:
        raise CanocapsInputError(f"{p}: not a readable h5 file ({str(e).splitlines()[0]})") from None
    if data.ndim != 3 or data.shape[2] < 3 or data.shape[1] < 1:
        raise CanocapsInputError(f"{p}: 'data' must have shape (S, N, 3), got {tuple(data.shape)}")
    label = label.reshape(len(label), -1)
    if label.shape != (len(data), 1):
        raise CanocapsInputError(f"{p}: 'label' must have shape (S,) or (S, 1) with S = {len(data)}, got {tuple(label.shape)}")
    data = data[..., :3]
    if not np.isfinite(data).all():
        raise CanocapsInputError(f"{p}: 'data' contains NaN or inf")
    return data.astype(np.float32, copy=False), label[:, 0].astype(np.int64)


class FlatH5Dataset(ArrayDataset):
    """One or more flat h5 files, concatenated in the given order and held in memory.

    ``class_names`` defaults to ``class_0 ...`` up to the largest label.
    """

    def __init__(self, files: Sequence[str | os.PathLike], num_points: int = 1024,
                 class_names: Sequence[str] | None = None, **kw: Any) -> None:
        if not files:
            raise CanocapsInputError("no h5 files given")
        parts = [read_flat_h5(f) for f in files]
        sizes = {p[0].shape[1] for p in parts}
        if len(sizes) > 1:
            raise CanocapsInputError(f"h5 files hold clouds of different sizes {sorted(sizes)}: {', '.join(map(str, files))}")
        points = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if labels.size and labels.min() < 0:
            raise CanocapsInputError(f"negative labels in {', '.join(map(str, files))}")
        n_cls = int(labels.max()) + 1 if labels.size else 0
        if class_names is None:
            class_names = [f"class_{i}" for i in range(n_cls)]
        elif n_cls > len(class_names):
            raise CanocapsInputError(f"labels go up to {n_cls - 1} but only {len(class_names)} class names are known")
        super().__init__(points, labels, class_names, num_points, **kw)
        self.files = [Path(f) for f in files]
