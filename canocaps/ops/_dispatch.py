"""Backend choice shared by :func:`knn` and :func:`chamfer` (internal).

Triton is imported only when a Triton backend is actually used.
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops._kdtree_nn import KDTREE_MAX_DIM, nn_idx_kdtree
from canocaps.ops._torch_nn import dense_fits, nn1_dense_torch, nn_idx_torch, resolve_chunk_bytes

__all__ = ["BACKENDS", "MAX_TRITON_K", "triton_available", "nn_idx", "nn1_pair"]

BACKENDS = ("auto", "torch", "triton", "kdtree")
#: Largest k the fused Triton kernel keeps in registers; larger k uses the torch path.
MAX_TRITON_K = 32


def triton_available() -> bool:
    """True when the ``triton`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(backend: str, x: torch.Tensor, k: int) -> str:
    """Return ``"torch"``, ``"triton"`` or ``"kdtree"`` for this call (see :func:`canocaps.ops.knn`)."""
    if backend not in BACKENDS:
        raise CanocapsInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "kdtree":
        if x.device.type != "cpu":
            raise CanocapsInputError("backend='kdtree' needs CPU tensors")
        return "kdtree"
    if backend == "auto":
        if x.is_cuda:
            return "triton" if (k <= MAX_TRITON_K and triton_available()) else "torch"
        if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.shape[-1] <= KDTREE_MAX_DIM:
            return "kdtree"
        return "torch"
    if not triton_available():
        raise CanocapsInputError("backend='triton' needs the triton package (pip install triton)")
    if not x.is_cuda and not _interpreting():
        raise CanocapsInputError("backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")
    if k > MAX_TRITON_K:
        warnings.warn(f"canocaps.ops: k={k} > {MAX_TRITON_K} is not supported by the Triton kernel; "
                      "using the torch path", RuntimeWarning, stacklevel=3)
        return "torch"
    return "triton"


def _elem(x: torch.Tensor) -> int:
    """Bytes per score of the torch path (float64 stays float64, the rest is float32)."""
    return 8 if x.dtype == torch.float64 else 4


def nn_idx(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None,
           lengths_y: torch.Tensor | None, backend: str, chunk_bytes: int | None) -> torch.Tensor:
    """Sorted k-NN indices ``(B, N, k)`` int64 (no gradient) with the chosen backend."""
    resolved = resolve_backend(backend, x, k)
    if resolved == "triton":
        from canocaps.ops._triton_kernels import nn_idx_triton

        return nn_idx_triton(x, y, k, lengths_x, lengths_y)
    if (k == 1 and backend != "kdtree" and x.shape[1] and y.shape[1]
            and dense_fits(x.shape[1], y.shape[1], _elem(x), x.device, chunk_bytes)):
        # small k = 1 problems: one dense score matrix beats building a tree
        return nn1_dense_torch(x, y, lengths_x, lengths_y, both=False, chunk_bytes=chunk_bytes)[0][..., None]
    if resolved == "kdtree":
        return nn_idx_kdtree(x, y, k, lengths_x, lengths_y, chunk_bytes=chunk_bytes)
    return nn_idx_torch(x, y, k, lengths_x, lengths_y, chunk_bytes=chunk_bytes)


def nn1_pair(x: torch.Tensor, y: torch.Tensor, lengths_x: torch.Tensor | None, lengths_y: torch.Tensor | None,
             backend: str, chunk_bytes: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Nearest indices in both directions ``(B, N)``, ``(B, M)`` from one dense score matrix
    (the torch backend's small-problem path), or None when that path does not apply
    (Triton backend, empty clouds, or a matrix over the dense budget)."""
    B, N, _ = x.shape
    M = y.shape[1]
    if B == 0 or N == 0 or M == 0 or backend == "kdtree" or resolve_backend(backend, x, 1) == "triton":
        return None
    if chunk_bytes is not None:
        resolve_chunk_bytes(chunk_bytes, x.device)  # validates it
    if not dense_fits(N, M, _elem(x), x.device, chunk_bytes):
        return None
    return nn1_dense_torch(x, y, lengths_x, lengths_y, both=True, chunk_bytes=chunk_bytes)
