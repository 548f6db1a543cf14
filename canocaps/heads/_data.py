"""Dataset access shared by the evaluation functions of the heads."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["open_dataset", "pick", "dataset_arrays", "test_transforms", "batched"]


def pick(total: int, limit: int | None) -> np.ndarray:
    """Indices of ``limit`` items spread evenly over ``range(total)`` (all when ``limit`` is None).

    Datasets are often ordered by class, so the first N items would be one class only.
    """
    if limit is None or limit >= total:
        return np.arange(total)
    if limit < 1:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"--limit must be >= 1, got {limit}")
    return np.unique(np.linspace(0, total - 1, int(limit)).round().astype(np.int64))


def open_dataset(data: str, split: str, num_points: int, **kwargs: Any) -> Any:
    """:func:`canocaps.data.build_dataset` from one string.

    ``data`` is a dataset name (``"procedural"``), ``"NAME:ROOT"`` (e.g.
    ``"modelnet40:/data/modelnet"``), or a path: a ``.h5`` file is read as a converted
    dataset, a folder as a folder of point-cloud/mesh files.
    """
    from pathlib import Path

    from canocaps.data import DATASETS, build_dataset

    name, root = data, None
    if data not in DATASETS:
        head, sep, tail = data.partition(":")
        if sep and head.lower() in DATASETS + ("modelnet",) and len(head) > 1:
            name, root = head, tail
        else:
            p = Path(data).expanduser()
            if not p.exists():
                from canocaps.errors import CanocapsInputError

                raise CanocapsInputError(f"--data {data}: not a dataset name ({', '.join(DATASETS)}), "
                                         "NAME:ROOT, or an existing path")
            name, root = ("converted" if p.is_file() else "folder"), str(p)
    kwargs.setdefault("seed", 0)  # fixed point selection: evaluations must be reproducible
    return build_dataset(name, split, num_points, root=root, **kwargs)


def dataset_arrays(data: str, split: str, num_points: int, limit: int | None = None,
                   **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(S, N, 3)`` float32 points and ``(S,)`` int64 labels of a dataset split.

    ``data``: see :func:`open_dataset`. ``limit`` keeps that many items spread evenly
    over the split (:func:`pick`).
    """
    ds = open_dataset(data, split, num_points, **kwargs)
    pts, labels = [], []
    for i in pick(len(ds), limit):
        item = ds[int(i)]
        p = item["points"]
        pts.append(p.numpy() if hasattr(p, "numpy") else np.asarray(p))
        lab = item.get("label", -1)
        labels.append(int(lab.item() if hasattr(lab, "item") else lab))
    if not pts:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"dataset {data!r} split {split!r} is empty")
    return np.stack(pts).astype(np.float32), np.asarray(labels, dtype=np.int64)


def test_transforms() -> tuple[np.ndarray, np.ndarray]:
    """The fixed test transforms ``(T1, T2)``, each ``(M, 4, 4)`` float64.

    Test item ``i`` is seen as ``T1[i % M] x`` (view 1) and ``T2[i % M] x`` (view 2);
    see :func:`canocaps.data.test_transforms.load_test_transforms`.
    """
    from canocaps.data.test_transforms import load_test_transforms

    tt = load_test_transforms()
    return (tt.T1.double().numpy().reshape(-1, 4, 4), tt.T2.double().numpy().reshape(-1, 4, 4))


def batched(n: int, size: int) -> list[slice]:
    """Slices cutting ``range(n)`` into chunks of ``size``."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
