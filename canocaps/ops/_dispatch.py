"""Backend choice shared by :func:`knn` and :func:`chamfer` (internal).

Triton is imported only when a Triton backend is actually used.
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops._torch_nn import nn_idx_torch

__all__ = ["BACKENDS", "MAX_TRITON_K", "triton_available", "nn_idx"]

BACKENDS = ("auto", "torch", "triton")
#: Largest k the fused Triton kernel keeps in registers; larger k uses the torch path.
MAX_TRITON_K = 32


def triton_available() -> bool:
    """True when the ``triton`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(backend: str, x: torch.Tensor, k: int) -> str:
    """Return ``"torch"`` or ``"triton"`` for this call (see :func:`canocaps.ops.knn`)."""
    if backend not in BACKENDS:
        raise CanocapsInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        return "triton" if (x.is_cuda and k <= MAX_TRITON_K and triton_available()) else "torch"
    if not triton_available():
        raise CanocapsInputError("backend='triton' needs the triton package (pip install triton)")
    if not x.is_cuda and not _interpreting():
        raise CanocapsInputError("backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")
    if k > MAX_TRITON_K:
        warnings.warn(f"canocaps.ops: k={k} > {MAX_TRITON_K} is not supported by the Triton kernel; "
                      "using the torch path", RuntimeWarning, stacklevel=3)
        return "torch"
    return "triton"


def nn_idx(x: torch.Tensor, y: torch.Tensor, k: int, lengths_x: torch.Tensor | None,
           lengths_y: torch.Tensor | None, backend: str, chunk_bytes: int | None) -> torch.Tensor:
    """Sorted k-NN indices ``(B, N, k)`` int64 (no gradient) with the chosen backend."""
    if resolve_backend(backend, x, k) == "triton":
        from canocaps.ops._triton_kernels import nn_idx_triton

        return nn_idx_triton(x, y, k, lengths_x, lengths_y)
    return nn_idx_torch(x, y, k, lengths_x, lengths_y, chunk_bytes=chunk_bytes)
