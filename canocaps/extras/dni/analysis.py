"""Closed-form references for the DNI experiments: least squares and linear CKA.

All computations run in float64 on CPU tensors or numpy arrays.
"""
from __future__ import annotations

import numpy as np
import torch

from canocaps.errors import CanocapsInputError

__all__ = ["least_squares", "mse", "linear_cka", "linear_cka_naive"]


def _as64(a: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(a).detach().to("cpu", torch.float64)
    if t.dim() != 2:
        raise CanocapsInputError(f"{name} must be a 2-d (N, D) array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise CanocapsInputError(f"{name} contains NaN or inf")
    return t


def least_squares(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
                  bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The minimiser of ``mean_n ||x_n W + b - y_n||^2``: returns ``W (D, K)``, ``b (K,)`` (float64).

    x ``(N, D)``, y ``(N, K)``. Without ``bias`` the returned ``b`` is zero.
    Solved with ``torch.linalg.lstsq`` (minimum-norm solution when rank-deficient).
    """
    x, y = _as64(x, "x"), _as64(y, "y")
    if x.shape[0] != y.shape[0]:
        raise CanocapsInputError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    a = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1) if bias else x
    sol = torch.linalg.lstsq(a, y, driver="gelsd").solution
    if bias:
        return sol[:-1], sol[-1]
    return sol, torch.zeros(y.shape[1], dtype=x.dtype)


def mse(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    """``0.5 * mean_n ||x_n W + b - y_n||^2`` in float64 (the loss the experiments minimise)."""
    x, y = _as64(x, "x"), _as64(y, "y")
    r = x @ w.detach().to("cpu", torch.float64) + b.detach().to("cpu", torch.float64) - y
    return float(0.5 * (r ** 2).sum(1).mean())


def linear_cka(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between representations x ``(N, D1)`` and y ``(N, D2)``.

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred Xc, Yc; in [0, 1],
    1 for representations equal up to rotation and isotropic scaling. Cost O(N D^2).
    """
    x, y = _as64(x, "x"), _as64(y, "y")
    if x.shape[0] != y.shape[0]:
        raise CanocapsInputError(f"CKA needs the same examples: {x.shape[0]} vs {y.shape[0]} rows")
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = torch.linalg.matrix_norm(y.T @ x) ** 2
    den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(num / den) if den > 0 else 0.0


def linear_cka_naive(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Reference: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with Gram matrices K = x x^T, L = y y^T.

    ``HSIC(K, L) = tr(K H L H)``, H the centring matrix. Cost O(N^2 D + N^3); for tests.
    """
    x, y = _as64(x, "x"), _as64(y, "y")
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.trace(a @ h @ b @ h)

    den = torch.sqrt(hsic(k, k) * hsic(l_, l_))
    return float(hsic(k, l_) / den) if den > 0 else 0.0
