"""Attentive Context Normalisation (ACN, from ACNe, Sun et al. CVPR 2020).

For features f (B, N, C) and G attention branches:

    a_ng      = softmax_g( W_a f_n + b_a )                    (B, N, G)
    m_g       = sum_n a_ng f_n / sum_n a_ng                   (B, G, C)
    s_g       = sqrt( sum_n a_ng (f_n - m_g)^2 / sum_n a_ng + eps^2 )
    ACN(f)_n  = sum_g a_ng (f_n - m_g) / s_g                  (B, N, C)

The fast path expands the sum so that no (B, N, G, C) tensor is built:
``ACN(f) = f * (a @ (1/s)) - a @ (m/s)``. :func:`acn_reference` is the literal formula.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["acn", "acn_reference", "AttentiveContextNorm"]


def _stats(f: Tensor, att: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    mass = att.sum(dim=1).clamp_min(1e-6).unsqueeze(-1)  # (B, G, 1)
    at = att.transpose(1, 2)  # (B, G, N)
    mean = at @ f / mass  # (B, G, C)
    sq = at @ (f * f) / mass
    var = (sq - mean * mean).clamp_min(0.0)
    std = torch.sqrt(var + eps * eps)
    return mean, std


def acn(f: Tensor, att: Tensor, eps: float = 1e-3) -> Tensor:
    """Attentive context normalisation of ``f`` (B, N, C) with attention ``att`` (B, N, G).

    ``att`` rows should sum to one over G (softmax). Returns (B, N, C).
    """
    mean, std = _stats(f, att, eps)
    inv = 1.0 / std
    return f * (att @ inv) - att @ (mean * inv)


def acn_reference(f: Tensor, att: Tensor, eps: float = 1e-3) -> Tensor:
    """Naive loop over branches; same maths as :func:`acn` (for tests)."""
    out = torch.zeros_like(f)
    for g in range(att.shape[-1]):
        a = att[..., g:g + 1]  # (B, N, 1)
        mass = a.sum(dim=1, keepdim=True).clamp_min(1e-6)
        m = (a * f).sum(dim=1, keepdim=True) / mass
        v = (a * (f - m) ** 2).sum(dim=1, keepdim=True) / mass
        out = out + a * (f - m) / torch.sqrt(v + eps * eps)
    return out


class AttentiveContextNorm(nn.Module):
    """ACN layer with its own attention map (linear C -> G, softmax over G).

    ``forward(f (B, N, C)) -> (B, N, C)``.
    """

    def __init__(self, channels: int, groups: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.attention = nn.Linear(channels, groups)
        self.groups = groups
        self.eps = eps

    def forward(self, f: Tensor) -> Tensor:
        att = torch.softmax(self.attention(f), dim=-1)
        return acn(f, att, self.eps)
