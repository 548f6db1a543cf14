"""scikit-learn's bundled 8x8 digits for the extras (DNI, Neural Mechanics): one loader, one dataset class.

Items are dicts ``{"x": x[i], "y": y[i]}``: ``x`` ``(64,)`` or ``(1, 8, 8)`` pixels in [0, 1]
(``dtype``, float32 by default), ``y`` a long scalar. Nothing is downloaded (the 1797 images
ship with scikit-learn).

Splits (``split`` = "train" | "test" | "all"; "val" is the held-out part too):

* ``method="stratified"`` (default): scikit-learn's ``train_test_split`` with ``stratify=y``,
  ``round(test_fraction * N)`` test images, ``random_state=seed``;
* ``method="randperm"``: the held-out part is the first ``round(test_fraction * N)`` of
  ``torch.randperm(N)`` seeded with ``seed`` (the DNI experiments of docs/extras_dni.md);
* ``method="rng_permutation"``: the training part is the first ``int((1 - test_fraction) * N)``
  of ``numpy.random.default_rng(seed).permutation(N)`` (the Neural Mechanics runs of
  docs/extras_mechanics.md).

The two permutation methods are kept so the documented numbers reproduce exactly.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from canocaps.errors import CanocapsInputError

__all__ = ["TensorPairDataset", "load_digits", "DIGITS_SPLIT_METHODS"]

DIGITS_SPLIT_METHODS = ("stratified", "randperm", "rng_permutation")


class TensorPairDataset(Dataset):
    """In-memory dataset of ``{"x": x[i], "y": y[i]}``; x ``(N, ...)`` (floating, else cast to float32), y ``(N,)`` int64."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if x.shape[0] != y.shape[0]:
            raise CanocapsInputError(f"dataset: {x.shape[0]} inputs but {y.shape[0]} labels")
        self.x = x if x.is_floating_point() else x.float()
        self.y = y.long()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}

    @property
    def num_classes(self) -> int:
        return int(self.y.max().item()) + 1 if len(self) else 0


def _train_test_indices(y: np.ndarray, test_fraction: float, seed: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    if method == "stratified":
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(n), test_size=int(round(test_fraction * n)), random_state=seed,
                                  stratify=y)
        return np.asarray(tr), np.asarray(te)
    if method == "randperm":
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        n_test = int(round(test_fraction * n))
        return perm[n_test:], perm[:n_test]
    if method == "rng_permutation":
        perm = np.random.default_rng(seed).permutation(n)
        cut = int((1.0 - test_fraction) * n)
        return perm[:cut], perm[cut:]
    raise CanocapsInputError(f"digits split method must be one of {', '.join(DIGITS_SPLIT_METHODS)}, got {method!r}")


def load_digits(split: str = "train", *, test_fraction: float = 0.2, seed: int = 0, flatten: bool = True,
                dtype: torch.dtype = torch.float32, method: str = "stratified", upsample: int = 1) -> TensorPairDataset:
    """One split of the 8x8 digits (see the module docstring).

    Returns x ``(n, 64)`` (``flatten``) or ``(n, 1, 8k, 8k)`` of ``dtype`` in [0, 1] (``upsample`` = k:
    bilinear resize of the images; images only), y ``(n,)`` int64; the same arguments give the
    same images in the same order.
    """
    from sklearn.datasets import load_digits as _sk_digits

    if split not in ("train", "test", "val", "all"):
        raise CanocapsInputError(f"digits split must be 'train', 'test' ('val') or 'all', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise CanocapsInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    d = _sk_digits()
    x = np.asarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    tr, te = _train_test_indices(y, test_fraction, seed, method)
    idx = np.concatenate([tr, te]) if split == "all" else (tr if split == "train" else te)
    xs = torch.as_tensor(x[idx], dtype=dtype)
    if flatten:
        if upsample != 1:
            raise CanocapsInputError("upsample needs images (flatten=False)")
        return TensorPairDataset(xs, torch.as_tensor(y[idx]))
    xs = xs.reshape(-1, 1, 8, 8)
    if upsample > 1:
        xs = torch.nn.functional.interpolate(xs, scale_factor=upsample, mode="bilinear", align_corners=False)
    return TensorPairDataset(xs, torch.as_tensor(y[idx]))
