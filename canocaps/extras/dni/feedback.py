"""Feedback alignment (FA) and direct feedback alignment (DFA): SGs with fixed random weights.

Czarnecki et al. (2017, Sec. 5) put both in the synthetic-gradient family: the gradient
estimate for an activation ``h_i`` is a *fixed random linear function* of an error signal,
and only the forward weights learn.

- **DFA** (Nøkland 2016): ``SG_i(h_i) = e B_i`` where ``e = dL/d(output)`` is the output
  error ``(B, n_out)`` and ``B_i`` a fixed ``(n_out, prod(shape))`` matrix
  (:class:`DirectFeedbackSG`).
- **FA** (Lillicrap et al. 2016): the error is passed down layer by layer, but through
  a fixed random matrix ``B_l`` in place of ``W_l^T``. That is an SG whose input is the
  next layer's error; we realise it as layers whose *backward* uses the fixed feedback
  (:class:`FALinear`, :class:`FAConv2d`, :func:`to_feedback_alignment`), so an FA network
  is trained by plain backprop through them.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.extras.dni.synthetic import feature_shape

__all__ = ["DirectFeedbackSG", "FALinear", "FAConv2d", "to_feedback_alignment"]


class DirectFeedbackSG(nn.Module):
    """DFA: ``g = e B`` reshaped to the activation shape; ``B`` is a fixed buffer.

    Args:
        error_dim: size of the output error ``e`` ``(B, error_dim)``.
        shape: activation shape without batch, ``(D,)`` or ``(C, H, W)``.
        generator: for a reproducible ``B`` (entries ``N(0, 1 / error_dim)``).
    """

    def __init__(self, error_dim: int, shape: Sequence[int], generator: torch.Generator | None = None):
        super().__init__()
        if error_dim < 1:
            raise CanocapsInputError(f"DFA error_dim must be >= 1, got {error_dim}")
        self.shape = feature_shape(shape)
        size = math.prod(self.shape)
        self.register_buffer("feedback", torch.randn(error_dim, size, generator=generator) / math.sqrt(error_dim))

    def forward(self, error: torch.Tensor) -> torch.Tensor:
        """error ``(B, error_dim)`` -> gradient estimate ``(B, *shape)``."""
        if error.dim() != 2 or error.shape[1] != self.feedback.shape[0]:
            raise CanocapsInputError(f"DFA expects an error of shape (B, {self.feedback.shape[0]}), "
                                     f"got {tuple(error.shape)}")
        return (error.to(self.feedback.dtype) @ self.feedback).reshape(error.shape[0], *self.shape)


class _FALinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, feedback = ctx.saved_tensors
        grad_x = grad @ feedback  # feedback (out, in) stands in for the weight
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_w = g2.T @ x.reshape(-1, x.shape[-1])
        grad_b = g2.sum(0) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class _FAConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback, stride, padding, dilation, groups):
        ctx.save_for_backward(x, feedback)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None
        ctx.weight_shape = weight.shape
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, feedback = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        grad_x = torch.nn.grad.conv2d_input(x.shape, feedback, grad, stride, padding, dilation, groups)
        grad_w = torch.nn.grad.conv2d_weight(x, ctx.weight_shape, grad, stride, padding, dilation, groups)
        grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None, None, None, None


class FALinear(nn.Linear):
    """``nn.Linear`` whose backward sends the error down through a fixed random matrix.

    Forward is exactly ``x W^T + b``; the weight and bias gradients are the true ones;
    the input gradient is ``grad @ feedback`` instead of ``grad @ W``. ``feedback`` has
    the weight's shape ``(out, in)`` and the weight's (Kaiming-uniform) initial distribution.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        fb = torch.empty_like(self.weight)
        nn.init.kaiming_uniform_(fb, a=math.sqrt(5))
        self.register_buffer("feedback", fb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FALinearFn.apply(x, self.weight, self.bias, self.feedback)


class FAConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding mode only) whose input gradient uses a fixed random kernel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise CanocapsInputError("FAConv2d supports numeric zero padding only")
        fb = torch.empty_like(self.weight)
        nn.init.kaiming_uniform_(fb, a=math.sqrt(5))
        self.register_buffer("feedback", fb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FAConv2dFn.apply(x, self.weight, self.bias, self.feedback, self.stride, self.padding,
                                 self.dilation, self.groups)


def to_feedback_alignment(module: nn.Module) -> nn.Module:
    """Replace (in place) every ``nn.Linear`` / ``nn.Conv2d`` by its FA twin, keeping the weights.

    The feedback matrices are drawn from torch's global RNG. Returns ``module``.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and not isinstance(child, FALinear):
            new: nn.Module = FALinear(child.in_features, child.out_features, child.bias is not None,
                                      device=child.weight.device, dtype=child.weight.dtype)
        elif isinstance(child, nn.Conv2d) and not isinstance(child, FAConv2d):
            new = FAConv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                           child.dilation, child.groups, child.bias is not None, child.padding_mode,
                           device=child.weight.device, dtype=child.weight.dtype)
        else:
            to_feedback_alignment(child)
            continue
        new.load_state_dict(child.state_dict(), strict=False)
        setattr(module, name, new)
    return module
