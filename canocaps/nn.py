"""Layers shared by the model and the extras (foundation: imports torch and nothing of the package).

:class:`GroupedLinear` is the one grouped linear layer: ``G`` independent affine maps run as
one batched matmul. The capsule decoder (one MLP per capsule, channels first) and the
trajectory models (one weight set per agent, channels last) both use it.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["GroupedLinear"]


class GroupedLinear(nn.Module):
    """``G`` independent affine maps ``y_g = W_g x_g + b_g``.

    Parameters (THE layout; :class:`torch.nn.Linear` per group, vectors as columns):
    ``weight`` ``(G, out, in)``, ``bias`` ``(G, out, 1)``, initialised uniform in
    ``+-1/sqrt(in)`` (weight first, then bias, values drawn in memory order).

    * ``channels_first=True``: ``x (B, G, in, P) -> (B, G, out, P)`` (P points per group),
      ``matmul(weight, x) + bias``;
    * ``channels_first=False``: ``x (B, G', in) -> (B, G', out)`` with ``G' = G``, or
      ``G = 1`` sharing one map over every leading axis (``x (..., in)``):
      ``x @ weight^T + bias`` per group, one ``baddbmm``.

    Memory follows the product: channels-last layers store ``weight`` transposed in memory
    (a ``(G, in, out)`` buffer seen as ``(G, out, in)``), so ``weight^T`` is a plain
    row-major operand. The two modes give the same numbers as the two layers they replace
    bit for bit (the decoder's ``(K, out, in)`` one and the trajectory models' ``(G, in, out)``
    one, initial values included), so trained weights and documented runs reproduce.
    State dicts of the older channels-last layout (``weight (G, in, out)``, ``bias (G, out)``;
    recognised by the 2-D bias) are converted when loaded. :meth:`forward_reference` is
    the per-group loop.
    """

    def __init__(self, groups: int, in_features: int, out_features: int, bias: bool = True,
                 channels_first: bool = True) -> None:
        super().__init__()
        self.groups, self.in_features, self.out_features = groups, in_features, out_features
        self.channels_first = channels_first
        bound = 1.0 / math.sqrt(in_features)
        if channels_first:
            w = torch.empty(groups, out_features, in_features).uniform_(-bound, bound)
        else:
            w = torch.empty(groups, in_features, out_features).uniform_(-bound, bound).transpose(1, 2)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.empty(groups, out_features, 1).uniform_(-bound, bound)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_first:
            y = torch.matmul(self.weight, x)
            return y + self.bias if self.bias is not None else y
        wt = self.weight.transpose(1, 2)  # (G, in, out)
        if self.groups == 1:  # shared: one plain matmul over every leading axis
            y = x @ wt[0]
            return y + self.bias[0, :, 0] if self.bias is not None else y
        if self.bias is None:
            return torch.bmm(x.transpose(0, 1), wt).transpose(0, 1)
        # (B, G, in) -> (G, B, in) @ (G, in, out): one bmm with G batches
        return torch.baddbmm(self.bias.transpose(1, 2), x.transpose(0, 1), wt).transpose(0, 1)

    def forward_reference(self, x: Tensor) -> Tensor:
        """Per-group loop with ``torch.nn.functional.linear`` (reference for tests)."""
        axis = 1 if self.channels_first or self.groups > 1 else None
        if axis is None:
            b = None if self.bias is None else self.bias[0, :, 0]
            return nn.functional.linear(x, self.weight[0], b)
        outs = []
        for g in range(x.shape[1]):
            b = None if self.bias is None else self.bias[g, :, 0]
            xg = x[:, g].transpose(-1, -2) if self.channels_first else x[:, g]
            yg = nn.functional.linear(xg, self.weight[g], b)
            outs.append(yg.transpose(-1, -2) if self.channels_first else yg)
        return torch.stack(outs, 1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        w, b = state_dict.get(prefix + "weight"), state_dict.get(prefix + "bias")
        if isinstance(b, Tensor) and b.ndim == 2 and isinstance(w, Tensor) and w.ndim == 3:  # old (G, in, out)
            state_dict[prefix + "weight"] = w.transpose(1, 2)
            state_dict[prefix + "bias"] = b.unsqueeze(-1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"groups={self.groups}, in={self.in_features}, out={self.out_features}, "
                f"bias={self.bias is not None}, channels_first={self.channels_first}")
