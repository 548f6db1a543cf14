"""On-disk layout of a trajectory data folder and the torch Dataset the trainer reads.

A data folder holds

- ``meta.json``: ``{"dataset": "boids" | "basketball", "n_agents": A, "seq_len": T, ...}``;
- ``train.npz``, ``val.npz``, ``test.npz``: key ``data`` ``(S, T, 2A)`` float32 positions
  in raw units (simulator units / feet), optional ``label`` ``(S,)`` int64 (boids:
  1 friendly, 0 unfriendly);
- ``{split}_macro_{lf}.npz`` (written by ``label``): key ``macro`` ``(S, T, A)`` int64 and
  ``num_classes``.

Models see normalised positions: identity for boids (as the authors), and
:func:`canocaps.extras.trajectories.basketball.normalize` for basketball.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from canocaps._files import atomic_path, atomic_write_text
from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories import basketball

SPLITS = ("train", "val", "test")
DATASETS = ("boids", "basketball")


def write_npz(path: str | Path, force: bool = False, **arrays: np.ndarray) -> Path:
    """Atomically write an uncompressed ``.npz`` (never overwrites unless ``force``)."""
    with atomic_path(path, force, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def read_npz(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise CanocapsInputError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise CanocapsInputError(f"{p}: missing key(s) {', '.join(missing)} (found: {', '.join(z.files)})")
            return {k: np.asarray(z[k]) for k in z.files}
    except CanocapsInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CanocapsInputError(f"{p}: not a readable .npz ({exc.__class__.__name__})") from None


def write_meta(data_dir: str | Path, meta: dict[str, Any], force: bool = False) -> Path:
    return atomic_write_text(Path(data_dir) / "meta.json", json.dumps(meta, indent=2) + "\n", force)


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    p = Path(data_dir) / "meta.json"
    if not p.is_file():
        raise CanocapsInputError(f"{data_dir}: not a trajectory data folder (no meta.json; run 'simulate' first)")
    try:
        meta = json.loads(p.read_text())
    except json.JSONDecodeError:
        raise CanocapsInputError(f"{p}: not valid JSON") from None
    if meta.get("dataset") not in DATASETS:
        raise CanocapsInputError(f"{p}: 'dataset' must be one of {', '.join(DATASETS)}")
    return meta


def split_path(data_dir: str | Path, split: str) -> Path:
    if split not in SPLITS:
        raise CanocapsInputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    return Path(data_dir) / f"{split}.npz"


def macro_path(data_dir: str | Path, split: str, lf_name: str) -> Path:
    return Path(data_dir) / f"{split}_macro_{lf_name}.npz"


def read_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(data (S, T, 2A) float32 raw units, labels (S,) int64 or None)``."""
    p = split_path(data_dir, split)
    z = read_npz(p, ("data",))
    data = z["data"]
    if data.ndim != 3 or data.shape[-1] % 2 or data.shape[1] < 2 or data.shape[0] < 1:
        raise CanocapsInputError(f"{p}: 'data' must be (S, T>=2, 2A), got {data.shape}")
    if not np.isfinite(data).all():
        raise CanocapsInputError(f"{p}: 'data' contains NaN or inf")
    labels = z.get("label")
    if labels is not None and labels.shape != (data.shape[0],):
        raise CanocapsInputError(f"{p}: 'label' must be ({data.shape[0]},), got {labels.shape}")
    return data.astype(np.float32), None if labels is None else labels.astype(np.int64)


def read_macro(data_dir: str | Path, split: str, lf_name: str, expect_shape: tuple[int, ...] | None = None
               ) -> tuple[np.ndarray, int]:
    """``(macro (S, T, A) int64, num_classes)`` written by the ``label`` command."""
    p = macro_path(data_dir, split, lf_name)
    if not p.is_file():
        raise CanocapsInputError(f"{p}: no such file (run 'label --lf {lf_name}' first)")
    z = read_npz(p, ("macro", "num_classes"))
    macro, k = z["macro"].astype(np.int64), int(z["num_classes"])
    if expect_shape is not None and macro.shape != tuple(expect_shape):
        raise CanocapsInputError(f"{p}: 'macro' must be {tuple(expect_shape)}, got {macro.shape}")
    return macro, k


def normalize(meta: dict[str, Any], data: np.ndarray) -> np.ndarray:
    """Raw units -> model units (identity for boids)."""
    return basketball.normalize(data) if meta["dataset"] == "basketball" else np.asarray(data, dtype=np.float32)


def unnormalize(meta: dict[str, Any], data: np.ndarray) -> np.ndarray:
    """Model units -> raw units."""
    return basketball.unnormalize(data) if meta["dataset"] == "basketball" else np.asarray(data, dtype=np.float32)


class TrajectoryDataset(Dataset):
    """Items ``{"x": (T, 2A) float32, "macro": (T, A) int64 (if given), "label": () int64 (-1 if none), "index": int}``."""

    def __init__(self, x: np.ndarray, macro: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
        if x.ndim != 3 or x.shape[-1] % 2:
            raise CanocapsInputError(f"trajectories must be (S, T, 2A), got {x.shape}")
        if macro is not None and macro.shape != (x.shape[0], x.shape[1], x.shape[2] // 2):
            raise CanocapsInputError(f"macro-intents must be {(x.shape[0], x.shape[1], x.shape[2] // 2)}, got {macro.shape}")
        self.x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        self.macro = None if macro is None else torch.as_tensor(macro, dtype=torch.long)
        lab = np.full(len(x), -1) if labels is None else labels
        self.labels = torch.as_tensor(lab, dtype=torch.long)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"x": self.x[i], "label": self.labels[i], "index": i}
        if self.macro is not None:
            item["macro"] = self.macro[i]
        return item


def load_dataset(data_dir: str | Path, split: str, macro_lf: str | None = None,
                 limit: int | None = None) -> tuple[TrajectoryDataset, int | None]:
    """Normalised dataset of one split (+ macro-intents of LF ``macro_lf``) and the number of intent classes."""
    meta = read_meta(data_dir)
    data, labels = read_split(data_dir, split)
    macro, k = None, None
    if macro_lf:
        macro, k = read_macro(data_dir, split, macro_lf, (*data.shape[:2], data.shape[2] // 2))
    if limit is not None:
        data = data[:limit]
        labels = None if labels is None else labels[:limit]
        macro = None if macro is None else macro[:limit]
    return TrajectoryDataset(normalize(meta, data), macro, labels), k
