"""Data for the DNI experiments: scikit-learn's 8x8 digits (bundled) and MNIST IDX files.

The digits come from :func:`canocaps.extras.digits.load_digits` (shared with the mechanics
extra); the experiments use its ``method="randperm"`` split (1438 train / 359 test), the one
docs/extras_dni.md was measured with.

Nothing is downloaded. Items are dicts ``{"x": FloatTensor, "y": LongTensor ()}``:
``x`` is ``(64,)`` / ``(1, 8, 8)`` for digits and ``(784,)`` / ``(1, 28, 28)`` for MNIST,
pixel values scaled to ``[0, 1]``.

MNIST: put the four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``) in one folder.
IDX format: big-endian; magic ``0x00000803`` (2051, ubyte, 3 dims) for images and
``0x00000801`` (2049, ubyte, 1 dim) for labels, then one uint32 per dimension, then the data.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from canocaps.errors import CanocapsInputError
from canocaps.extras.digits import TensorPairDataset, load_digits

__all__ = ["TensorPairDataset", "RepeatedBatch", "read_idx", "load_mnist", "load_digits", "load_dataset",
           "regression_data", "IDX_FILES"]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into an array of its stored shape and dtype."""
    path = Path(path)
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise CanocapsInputError(f"{path}: file not found") from None
    except (OSError, EOFError) as e:
        raise CanocapsInputError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CanocapsInputError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES or ndim < 1:
        raise CanocapsInputError(f"{path}: not an IDX file (type code 0x{code:02x}, {ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CanocapsInputError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CanocapsInputError(f"{path}: IDX header says {dims} ({expected} bytes of data) "
                                 f"but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise CanocapsInputError(f"MNIST file {name}[.gz] not found in {root} (nothing is downloaded; "
                             f"put the four IDX files there)")


def load_mnist(root: str | os.PathLike, split: str = "train", flatten: bool = True) -> TensorPairDataset:
    """MNIST from IDX files in ``root``; ``split`` = "train" | "test".

    Returns x ``(N, 784)`` (``flatten``) or ``(N, 1, 28, 28)`` float32 in [0, 1], y ``(N,)`` int64.
    """
    if split not in IDX_FILES:
        raise CanocapsInputError(f"MNIST split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise CanocapsInputError(f"MNIST folder {root} does not exist (nothing is downloaded)")
    img_path, lbl_path = (_find(root, n) for n in IDX_FILES[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise CanocapsInputError(f"{img_path}: expected a 3-d ubyte IDX file (magic 2051), got {images.ndim}-d")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise CanocapsInputError(f"{lbl_path}: expected a 1-d ubyte IDX file (magic 2049), got {labels.ndim}-d")
    if images.shape[0] != labels.shape[0]:
        raise CanocapsInputError(f"{img_path}: {images.shape[0]} images but {lbl_path.name} has {labels.shape[0]} labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = x.reshape(x.shape[0], -1) if flatten else x[:, None]
    return TensorPairDataset(x, torch.from_numpy(labels.astype(np.int64)))


VAL_FRACTION = 0.1


def load_dataset(name: str, split: str, mnist_dir: str | os.PathLike | None = None,
                 flatten: bool = True) -> TensorPairDataset:
    """``name`` = "digits" (the ``randperm`` split) | "mnist" (the latter needs ``mnist_dir``); ``split`` = "train",
    "test", or "fit" / "val": the training split cut into 90 % / 10 % by a fixed permutation
    (seed 0), for model selection without looking at the test set."""
    if split in ("fit", "val"):
        full = load_dataset(name, "train", mnist_dir, flatten)
        perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
        n_val = max(1, int(round(VAL_FRACTION * len(full))))
        idx = perm[:n_val] if split == "val" else perm[n_val:]
        return TensorPairDataset(full.x[idx], full.y[idx])
    if name == "digits":
        return load_digits(split, flatten=flatten, method="randperm")
    if name == "mnist":
        if mnist_dir is None:
            raise CanocapsInputError("--data mnist needs --mnist-dir DIR with the four IDX files")
        return load_mnist(mnist_dir, split, flatten=flatten)
    raise CanocapsInputError(f"unknown dataset {name!r} (expected 'digits' or 'mnist')")


class RepeatedBatch(Dataset):
    """``length`` copies of one whole batch: full-batch gradient descent through the trainer.

    Use with ``DataLoader(RepeatedBatch(batch, steps), batch_size=None)``: every step sees
    the whole batch dict (tensors ``(N, ...)``).
    """

    def __init__(self, batch: dict[str, torch.Tensor], length: int):
        if length < 1:
            raise CanocapsInputError(f"RepeatedBatch length must be >= 1, got {length}")
        self.batch, self.length = batch, int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        return self.batch


def regression_data(n: int, d: int, k: int, noise: float = 0.0, rank: int | None = None, bias: float = 0.0,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs x ``(n, d)`` and targets ``y = x M + bias + noise * eps`` ``(n, k)``.

    ``M`` ``(d, k)`` has entries ``N(0, 1/d)`` (of rank ``rank`` when given); ``noise = 0``
    gives realisable data. Deterministic in ``seed``.
    """
    if min(n, d, k) < 1 or noise < 0 or (rank is not None and not 1 <= rank <= min(d, k)):
        raise CanocapsInputError(f"regression_data: bad sizes n={n} d={d} k={k} rank={rank} noise={noise}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    if rank is None:
        m = torch.randn(d, k, generator=g) / d ** 0.5
    else:
        m = torch.randn(d, rank, generator=g) @ torch.randn(rank, k, generator=g) / (d * rank) ** 0.5
    y = x @ m + bias + noise * torch.randn(n, k, generator=g)
    return x, y
