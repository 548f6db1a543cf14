"""Weighted Procrustes (Kabsch with the determinant fix), batched, with safe gradients.

The rotation comes from one batched SVD of the 3x3 weighted cross-covariance. PyTorch's
SVD backward divides by ``s_i^2 - s_j^2`` and returns inf/NaN when two singular values
coincide, which happens for degenerate inputs (collinear or repeated points, all-zero
weights). :func:`safe_svd` uses the same forward but a backward in which those factors
are replaced by the bounded ``d / (d^2 + delta^2)`` (``d = s_j^2 - s_i^2``), equal to
``1/d`` whenever ``|d| >> delta``. The gradient is therefore exact on generic input and
finite (the ill-defined component is damped) on degenerate input.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from canocaps.errors import CanocapsInputError

__all__ = ["weighted_procrustes", "weighted_procrustes_reference", "safe_svd"]


class _SafeSVD(torch.autograd.Function):
    """Full SVD of square matrices ``(..., n, n)`` with a bounded backward (see module doc)."""

    @staticmethod
    def forward(ctx, A: Tensor, rel_delta: float, abs_delta: float):  # type: ignore[override]
        U, S, Vh = torch.linalg.svd(A)
        ctx.save_for_backward(U, S, Vh)
        ctx.rel_delta = rel_delta
        ctx.abs_delta = abs_delta
        return U, S, Vh

    @staticmethod
    @once_differentiable
    def backward(ctx, gU: Tensor | None, gS: Tensor | None, gVh: Tensor | None):  # type: ignore[override]
        U, S, Vh = ctx.saved_tensors
        V = Vh.transpose(-1, -2)
        Ut = U.transpose(-1, -2)
        s2 = S * S
        d = s2[..., None, :] - s2[..., :, None]  # d_ij = s_j^2 - s_i^2
        scale = s2.amax(dim=-1, keepdim=True)[..., None] if S.shape[-1] else s2[..., None]
        delta = ctx.rel_delta * scale + ctx.abs_delta
        F = d / (d * d + delta * delta)  # = 1/d off the diagonal when well separated, 0 on it
        Sm = torch.diag_embed(S)
        inner = torch.zeros_like(U)
        if gU is not None:
            J = Ut @ gU
            inner = inner + (F * (J - J.transpose(-1, -2))) @ Sm
        if gVh is not None:
            gV = gVh.transpose(-1, -2)
            K = Vh @ gV
            inner = inner + Sm @ (F * (K - K.transpose(-1, -2)))
        if gS is not None:
            inner = inner + torch.diag_embed(gS)
        return U @ inner @ Vh, None, None


def safe_svd(A: Tensor, rel_delta: float = 1e-10, abs_delta: float = 1e-20) -> tuple[Tensor, Tensor, Tensor]:
    """``U, S, Vh = svd(A)`` for square ``A`` ``(..., n, n)`` with a gradient that is always finite.

    ``delta = rel_delta * max(s^2) + abs_delta`` sets where ``1/(s_j^2 - s_i^2)`` starts
    being damped. Only first-order gradients are supported.
    """
    if A.shape[-1] != A.shape[-2]:
        raise CanocapsInputError(f"safe_svd needs square matrices, got {tuple(A.shape)}")
    return _SafeSVD.apply(A, rel_delta, abs_delta)


def _check_inputs(src: Tensor, dst: Tensor, weights: Tensor | None) -> None:
    for name, x in (("src", src), ("dst", dst)):
        if not isinstance(x, Tensor):
            raise CanocapsInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[-1] != 3:
            raise CanocapsInputError(f"{name} must have shape (B, N, 3), got {tuple(x.shape)}")
    if src.shape != dst.shape:
        raise CanocapsInputError(f"src and dst shapes differ: {tuple(src.shape)} vs {tuple(dst.shape)}")
    if weights is not None:
        if not isinstance(weights, Tensor):
            raise CanocapsInputError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
        if tuple(weights.shape) != tuple(src.shape[:2]):
            raise CanocapsInputError(
                f"weights must have shape (B, N) = {tuple(src.shape[:2])}, got {tuple(weights.shape)}"
            )


def _normalized_weights(src: Tensor, weights: Tensor | None, eps: float) -> tuple[Tensor, Tensor]:
    """(w (B, N) summing to 1, degenerate (B,) bool: total weight <= eps -> uniform w)."""
    B, N = src.shape[:2]
    if weights is None:
        w = src.new_full((B, N), 1.0 / max(N, 1))
        return w, torch.zeros(B, dtype=torch.bool, device=src.device) | (N == 0)
    w = weights.to(src.dtype).clamp_min(0.0)
    total = w.sum(dim=1, keepdim=True)
    degenerate = total[:, 0] <= eps
    uniform = torch.full_like(w, 1.0 / max(N, 1))
    w = torch.where(degenerate[:, None], uniform, w / torch.where(degenerate[:, None], torch.ones_like(total), total))
    return w, degenerate


def weighted_procrustes(
    src: Tensor,
    dst: Tensor,
    weights: Tensor | None = None,
    eps: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """Rigid ``(R, t)`` minimising ``sum_n w_n |R src_n + t - dst_n|^2`` (weighted Kabsch).

    Args:
        src: ``(B, N, 3)`` source points.
        dst: ``(B, N, 3)`` target points (row ``n`` corresponds to ``src`` row ``n``).
        weights: ``(B, N)`` non-negative weights (negative values are clamped to 0);
            ``None`` = uniform. Only their ratios matter.
        eps: total weight at or below which a batch item is *degenerate*; it also sets
            the tie-breaking regulariser ``eps * (s + 1e-20) * I`` added to the
            cross-covariance, ``s`` being the mean weighted squared distance of the
            points to their centroids (so it is scale-free): it moves ``R`` by about
            ``eps`` radians on generic input (below float32 precision) and makes
            ``R = I`` when the covariance vanishes (e.g. all points repeated). ``eps=0``
            gives the exact, unregularised Kabsch solution.

    Returns:
        ``R`` ``(B, 3, 3)`` a proper rotation (``det = +1``, the reflection case is fixed
        by flipping the least singular direction) and ``t`` ``(B, 3)``, so that
        ``dst ~= src @ R.transpose(-1, -2) + t[:, None]``.

    Degenerate items (all weights zero) get ``R = I`` and ``t = mean(dst) - mean(src)``
    (unweighted centroids). One batched SVD, no loop over the batch; gradients are finite
    for every input (see :func:`safe_svd`). ``B = 0`` returns empty tensors.
    float32/float64 inputs are solved in their dtype; half/bfloat16 inputs (and calls
    under autocast) are solved and returned in float32.
    """
    _check_inputs(src, dst, weights)
    work = src.dtype if src.dtype in (torch.float32, torch.float64) else torch.float32
    with torch.autocast(device_type=src.device.type, enabled=False):
        return _procrustes(src.to(work), dst.to(work), None if weights is None else weights.to(work), eps)


def _procrustes(src: Tensor, dst: Tensor, weights: Tensor | None, eps: float) -> tuple[Tensor, Tensor]:
    B = src.shape[0]
    w, degenerate = _normalized_weights(src, weights, eps)
    mu_s = (w[..., None] * src).sum(dim=1)  # (B, 3)
    mu_d = (w[..., None] * dst).sum(dim=1)
    xs = src - mu_s[:, None]
    xd = dst - mu_d[:, None]
    H = (w[..., None] * xs).transpose(1, 2) @ xd  # (B, 3, 3) = sum_n w_n xs_n xd_n^T
    H = torch.where(degenerate[:, None, None], torch.zeros_like(H), H)
    # Tie-breaker eps * (mean spread + 1e-20) * I: relative to the data scale, so it biases
    # R by ~eps rad on generic input, and makes R = I when the covariance vanishes.
    spread = 0.5 * (w * (xs.pow(2).sum(-1) + xd.pow(2).sum(-1))).sum(dim=1)  # (B,)
    lam = eps * (spread + 1e-20)
    eye = torch.eye(3, dtype=src.dtype, device=src.device).expand(B, 3, 3)
    H = H + lam[:, None, None] * eye
    U, _, Vh = safe_svd(H)
    V = Vh.transpose(1, 2)
    # H = U S V^T and R = V D U^T with D = diag(1, 1, det(V U^T)).
    det = torch.linalg.det(V @ U.transpose(1, 2)).detach()
    ones = torch.ones(B, 1, dtype=src.dtype, device=src.device)
    D = torch.cat([ones, ones, torch.where(det[:, None] < 0, -ones, ones)], dim=1)  # (B, 3)
    R = (V * D[:, None, :]) @ U.transpose(1, 2)
    t = mu_d - (R @ mu_s[..., None])[..., 0]
    return R, t


def weighted_procrustes_reference(
    src: Tensor, dst: Tensor, weights: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Naive per-sample weighted Kabsch (Python loop, ``torch.linalg.svd``), for tests/benchmarks.

    Same contract as :func:`weighted_procrustes` for non-degenerate input (no
    regulariser, no safe gradient).
    """
    _check_inputs(src, dst, weights)
    Rs, ts = [], []
    for b in range(src.shape[0]):
        w = torch.ones(src.shape[1], dtype=src.dtype, device=src.device) if weights is None else weights[b].to(src.dtype)
        w = w / w.sum()
        ms = (w[:, None] * src[b]).sum(0)
        md = (w[:, None] * dst[b]).sum(0)
        H = (src[b] - ms).T @ (w[:, None] * (dst[b] - md))
        U, _, Vh = torch.linalg.svd(H)
        d = torch.sign(torch.linalg.det(Vh.T @ U.T))
        Dm = torch.diag(torch.stack([torch.ones_like(d), torch.ones_like(d), d]))
        R = Vh.T @ Dm @ U.T
        Rs.append(R)
        ts.append(md - R @ ms)
    if not Rs:
        return src.new_zeros(0, 3, 3), src.new_zeros(0, 3)
    return torch.stack(Rs), torch.stack(ts)
