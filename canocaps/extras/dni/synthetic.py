"""Synthetic-gradient (SG) modules: predict dL/dh from the activation h (and a context).

An SG module maps an activation ``h`` of one interface to an estimate of the gradient
of the loss with respect to ``h``; its output has exactly the shape of ``h``:

- dense activations ``(B, D)``: ``SG(h, c) = h A + c B + C`` (:class:`LinearSG`) or an MLP;
- conv activations ``(B, C, H, W)``: a conv layer (1x1 or 3x3, "same" padding) or a
  stack of them; the context is tiled over the image and appended as channels.

The optional context ``c`` ``(B, Dc)`` is what conditions the SG (cDNI, Jaderberg et al.
2016): the one-hot label for classification, the regression target for regression.
As in Jaderberg et al. the *output layer is zero-initialised*, so a fresh SG predicts
zero gradient and a freshly decoupled network does not move until its SGs learn.

Convention (see :mod:`canocaps.extras.dni.decoupled`): SGs predict the *per-sample*
gradient, i.e. the gradient of the batch **sum** of the per-sample losses, so they do
not depend on the batch size.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from canocaps.errors import CanocapsInputError

__all__ = ["SyntheticGradient", "LinearSG", "MLPSG", "make_sg", "feature_shape"]


def feature_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Validate an activation shape without the batch dimension: ``(D,)`` or ``(C, H, W)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (1, 3) or any(s < 1 for s in shape):
        raise CanocapsInputError(f"SG activation shape must be (D,) or (C, H, W) with positive sizes, got {shape}")
    return shape


class SyntheticGradient(nn.Module):
    """Base class: ``forward(h, context=None) -> g`` with ``g.shape == h.shape``.

    Args:
        shape: activation shape without the batch dimension, ``(D,)`` or ``(C, H, W)``.
        context_dim: size of the conditioning vector (0 = unconditioned DNI).
    """

    def __init__(self, shape: Sequence[int], context_dim: int = 0):
        super().__init__()
        self.shape = feature_shape(shape)
        if context_dim < 0:
            raise CanocapsInputError(f"SG context_dim must be >= 0, got {context_dim}")
        self.context_dim = int(context_dim)

    @property
    def is_conv(self) -> bool:
        return len(self.shape) == 3

    def _input(self, h: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """Check shapes and append the context (as features, or as tiled channels)."""
        if tuple(h.shape[1:]) != self.shape:
            raise CanocapsInputError(f"SG expects activations of shape (B, {', '.join(map(str, self.shape))}), "
                                     f"got {tuple(h.shape)}")
        if self.context_dim == 0:
            return h
        if context is None:
            raise CanocapsInputError("this SG is conditioned (cDNI): pass the context (B, context_dim)")
        if context.shape != (h.shape[0], self.context_dim):
            raise CanocapsInputError(f"SG context must have shape ({h.shape[0]}, {self.context_dim}), "
                                     f"got {tuple(context.shape)}")
        context = context.to(h.dtype)
        if self.is_conv:
            context = context[:, :, None, None].expand(-1, -1, *self.shape[1:])
        return torch.cat([h, context], dim=1)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def _zero_(layer: nn.Module) -> None:
    nn.init.zeros_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


class LinearSG(SyntheticGradient):
    """``SG(h, c) = h A + c B + C`` (dense), or one conv ``k x k`` layer on ``[h, c]`` (conv).

    Every parameter starts at zero. ``kernel_size`` (odd) only matters for conv activations;
    1 gives a per-pixel linear map, 3 mixes neighbouring pixels.
    """

    def __init__(self, shape: Sequence[int], context_dim: int = 0, kernel_size: int = 1):
        super().__init__(shape, context_dim)
        n_in = self.shape[0] + self.context_dim
        if self.is_conv:
            if kernel_size < 1 or kernel_size % 2 == 0:
                raise CanocapsInputError(f"SG kernel_size must be odd and >= 1, got {kernel_size}")
            self.layer: nn.Module = nn.Conv2d(n_in, self.shape[0], kernel_size, padding=kernel_size // 2)
        else:
            self.layer = nn.Linear(n_in, self.shape[0])
        _zero_(self.layer)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """h ``(B, D)`` or ``(B, C, H, W)``, context ``(B, Dc)`` -> gradient estimate, same shape as h."""
        return self.layer(self._input(h, context))

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense case: ``(A (D, D), B (Dc, D), C (D,))`` with ``SG(h, c) = h A + c B + C``."""
        if self.is_conv:
            raise CanocapsInputError("matrices() is defined for dense SGs only")
        w = self.layer.weight.T  # (D + Dc, D)
        d = self.shape[0]
        return w[:d], w[d:], self.layer.bias


class MLPSG(SyntheticGradient):
    """MLP SG: ``hidden_layers`` layers of width ``hidden`` with ReLU, then a zero-initialised output.

    Dense activations use Linear layers; conv activations use ``kernel_size`` conv layers
    ("same" padding, so the spatial size is kept). ``hidden_layers = 0`` is a :class:`LinearSG`.
    """

    def __init__(self, shape: Sequence[int], context_dim: int = 0, hidden: int = 256,
                 hidden_layers: int = 2, kernel_size: int = 3):
        super().__init__(shape, context_dim)
        if hidden < 1 or hidden_layers < 0:
            raise CanocapsInputError(f"MLP SG needs hidden >= 1 and hidden_layers >= 0, got {hidden}, {hidden_layers}")
        if self.is_conv and (kernel_size < 1 or kernel_size % 2 == 0):
            raise CanocapsInputError(f"SG kernel_size must be odd and >= 1, got {kernel_size}")
        n_in = self.shape[0] + self.context_dim
        widths = [n_in] + [hidden] * hidden_layers + [self.shape[0]]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            if self.is_conv:
                layers.append(nn.Conv2d(a, b, kernel_size, padding=kernel_size // 2))
            else:
                layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        _zero_(layers[-1])
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """h ``(B, D)`` or ``(B, C, H, W)``, context ``(B, Dc)`` -> gradient estimate, same shape as h."""
        return self.net(self._input(h, context))


def make_sg(kind: str, shape: Sequence[int], context_dim: int = 0, hidden: int = 256,
            hidden_layers: int = 2, kernel_size: int | None = None) -> SyntheticGradient:
    """Build an SG by name: ``"linear"`` or ``"mlp"``.

    ``kernel_size`` defaults to 1 for linear conv SGs and 3 for MLP conv SGs.
    """
    if kind == "linear":
        return LinearSG(shape, context_dim, kernel_size=1 if kernel_size is None else kernel_size)
    if kind == "mlp":
        return MLPSG(shape, context_dim, hidden=hidden, hidden_layers=hidden_layers,
                     kernel_size=3 if kernel_size is None else kernel_size)
    raise CanocapsInputError(f"unknown SG kind {kind!r} (expected 'linear' or 'mlp')")
