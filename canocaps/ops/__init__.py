"""Nearest-neighbour operators on batched point clouds: :func:`knn` and :func:`chamfer`.

One dispatcher each: a fused Triton kernel for CUDA tensors (running top-k / running
min, never an ``N x M`` matrix), scipy's k-d tree for low-dimensional CPU clouds, and a
chunked pure-PyTorch path; all give the same indices (exact, ties broken by the lowest
index). Naive brute-force references live
in :mod:`canocaps.ops.reference`. Importing this package does not import triton.
"""
from __future__ import annotations

from canocaps.ops._dispatch import BACKENDS, MAX_TRITON_K, triton_available
from canocaps.ops._torch_nn import DEFAULT_CHUNK_BYTES, DENSE_BYTES, default_chunk_bytes
from canocaps.ops.chamfer import chamfer
from canocaps.ops.knn import KNN, KNNResult, knn, knn_gather

__all__ = ["knn", "knn_gather", "KNN", "KNNResult", "chamfer", "BACKENDS",
           "MAX_TRITON_K", "DEFAULT_CHUNK_BYTES", "DENSE_BYTES", "default_chunk_bytes", "triton_available"]
