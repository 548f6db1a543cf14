"""Dataset access shared by the evaluation functions of the heads."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dataset_arrays", "test_transforms", "batched"]


def dataset_arrays(data: str, split: str, num_points: int, limit: int | None = None,
                   **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(S, N, 3)`` float32 points and ``(S,)`` int64 labels of a dataset split.

    ``data``: see :func:`canocaps.data.open_dataset`. ``limit`` keeps that many items spread
    evenly over the split (:func:`canocaps.data.pick`).
    """
    from canocaps.data import open_dataset, pick

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
