"""Fixed rigid transforms for reproducible test inputs (the official code's never-shipped ``random_T_*.h5``).

The bundled ``data/test_transforms.h5`` was written by::

    python tools/make_test_transforms.py --count 1000 --seed 0 -o data/test_transforms.h5

It holds ``T1``, ``T2`` (``(count, 4, 4)`` float32): test item ``i`` is seen as
``apply_transform(T1[i % count], x)`` and ``apply_transform(T2[i % count], x)``; ``T12 = T2 @
inv(T1)`` maps view 1 onto view 2. The law is :class:`canocaps.data.pairs.SE3PairSampler`'s
(Haar-uniform rotations, translations uniform in [-0.2, 0.2]^3), drawn from a CPU
``torch.Generator`` seeded with ``seed`` (deterministic). Attributes record count, seed,
max_angle_deg, max_translation and the format version.

The data folder is ``$CANOCAPS_DATA_DIR`` if set, else the package's bundled
``canocaps/resources/data`` (package data; :mod:`canocaps._resources`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps.errors import CanocapsInputError

__all__ = ["TestTransforms", "data_dir", "default_path", "make_test_transforms", "write_test_transforms",
           "load_test_transforms", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def data_dir() -> Path:
    """``$CANOCAPS_DATA_DIR`` or the package's bundled data folder (:func:`canocaps._resources.data_dir`)."""
    from canocaps._resources import data_dir as _data_dir

    return _data_dir()


def default_path() -> Path:
    return data_dir() / "test_transforms.h5"


@dataclass
class TestTransforms:
    """``T1``, ``T2``: ``(count, 4, 4)`` float32 tensors; ``attrs``: the file's metadata."""

    __test__ = False  # not a pytest test class

    T1: torch.Tensor
    T2: torch.Tensor
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.T1)

    @property
    def T12(self) -> torch.Tensor:
        """``(count, 4, 4)``: ``T2 @ inv(T1)``, maps view 1 onto view 2."""
        from canocaps.geometry import compose_transforms, invert_transform

        return compose_transforms(self.T2.double(), invert_transform(self.T1.double())).float()

    def for_items(self, indices: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T1, T2)`` of test items ``indices`` (``(B,)``), cycling when there are more items than transforms."""
        idx = torch.as_tensor(indices, dtype=torch.long) % len(self)
        return self.T1[idx], self.T2[idx]


def make_test_transforms(count: int = 1000, seed: int = 0, max_angle_deg: float = 180.0,
                         max_translation: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic ``(T1, T2)``, each ``(count, 4, 4)`` float32 (see the module docstring)."""
    from canocaps.data.pairs import SE3PairSampler

    if int(count) < 1:
        raise CanocapsInputError(f"count must be >= 1, got {count}")
    sampler = SE3PairSampler(max_angle_deg=max_angle_deg, max_translation=max_translation)
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    T1 = sampler.sample_transform(int(count), "cpu", torch.float64, g)
    T2 = sampler.sample_transform(int(count), "cpu", torch.float64, g)
    return T1.float().numpy(), T2.float().numpy()


def write_test_transforms(path: str | os.PathLike, count: int = 1000, seed: int = 0, max_angle_deg: float = 180.0,
                          max_translation: float = 0.2, force: bool = False) -> Path:
    """Write :func:`make_test_transforms` to ``path`` (h5, atomically, no overwrite without ``force``)."""
    import h5py

    from canocaps._files import atomic_path

    T1, T2 = make_test_transforms(count, seed, max_angle_deg, max_translation)
    with atomic_path(path, force) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("T1", data=T1)
            f.create_dataset("T2", data=T2)
            f.attrs.update(count=int(count), seed=int(seed), max_angle_deg=float(max_angle_deg),
                           max_translation=float(max_translation), format_version=FORMAT_VERSION,
                           rotation_law="haar" if max_angle_deg >= 180 else "haar restricted to the angle limit",
                           convention="4x4 row-major, x' = R x + t; T12 = T2 @ inv(T1) maps view 1 onto view 2",
                           command=f"python tools/make_test_transforms.py --count {count} --seed {seed}")
        os.chmod(tmp, 0o644)
    return Path(path)


def load_test_transforms(path: str | os.PathLike | None = None) -> TestTransforms:
    """Load fixed test transforms (default: the bundled ``data/test_transforms.h5``)."""
    import h5py

    p = Path(path) if path is not None else default_path()
    if not p.is_file():
        raise CanocapsInputError(f"{p}: no such file (make one with tools/make_test_transforms.py)")
    try:
        with h5py.File(p, "r") as f:
            missing = [k for k in ("T1", "T2") if k not in f]
            if missing:
                raise CanocapsInputError(f"{p}: missing dataset(s) {', '.join(missing)}")
            T1, T2 = np.asarray(f["T1"], dtype=np.float32), np.asarray(f["T2"], dtype=np.float32)
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    except OSError as e:
        raise CanocapsInputError(f"{p}: not a readable h5 file ({str(e).splitlines()[0]})") from None
    for name, T in (("T1", T1), ("T2", T2)):
        if T.ndim != 3 or T.shape[1:] != (4, 4) or len(T) == 0:
            raise CanocapsInputError(f"{p}: {name} must have shape (count, 4, 4), got {tuple(T.shape)}")
        R = T[:, :3, :3].astype(np.float64)
        if not np.isfinite(T).all() or np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max() > 1e-4 \
                or np.abs(np.linalg.det(R) - 1).max() > 1e-4 or np.abs(T[:, 3] - [0, 0, 0, 1]).max() > 1e-6:
            raise CanocapsInputError(f"{p}: {name} holds matrices that are not rigid transforms")
    if T1.shape != T2.shape:
        raise CanocapsInputError(f"{p}: T1 and T2 differ in shape {T1.shape} vs {T2.shape}")
    return TestTransforms(torch.from_numpy(T1), torch.from_numpy(T2), attrs)
