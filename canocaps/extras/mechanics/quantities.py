"""The conserved quantities of each symmetry group, evaluated on any set of tensors.

For a :class:`~canocaps.extras.mechanics.symmetry.SymmetryGroup` with ``S`` slots:

- translation: ``Q_s = <theta_A, 1>`` (sum of the slot's entries), linear in theta;
- scale: ``Q_s = ||theta_A||^2``;
- rescale: ``Q_s = ||W_out[:, s]||^2 - ||W_in[s]||^2 - b_in[s]^2`` (signed sum of squares).

The same forms applied to a gradient or an update give the terms of the per-step
recursions (``quadratic(g)`` is ``||g||^2`` for scale and the signed sum for rescale).
All functions take ``tensors``: a mapping from parameter name to tensor (parameters,
their ``.grad``, a difference of two parameter snapshots ...) and return ``(S,)``
float64 tensors.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from canocaps.extras.mechanics.symmetry import SymmetryGroup

__all__ = ["linear_form", "quadratic_form", "bilinear_form", "magnitude", "quantity", "quantity_reference",
           "gradient_term", "param_tensors", "grad_tensors"]


def _fold(group: SymmetryGroup, per_member) -> Tensor:
    out: Tensor | None = None
    for m in group.members:
        v = per_member(m)
        if out is None:
            out = torch.zeros(group.slots, dtype=torch.float64, device=v.device)
        out[m.offset:m.offset + v.shape[0]] += m.sign * v.to(torch.float64)
    assert out is not None
    return out


def linear_form(group: SymmetryGroup, tensors: Mapping[str, Tensor]) -> Tensor:
    """``(S,)``: signed sum of each slot's entries (``<x_A, 1>``)."""
    return _fold(group, lambda m: m.view(tensors[m.param].detach()).sum(1))


def quadratic_form(group: SymmetryGroup, tensors: Mapping[str, Tensor]) -> Tensor:
    """``(S,)``: signed sum of each slot's squared entries (``||x_A||^2`` with the group's signs)."""
    return _fold(group, lambda m: m.view(tensors[m.param].detach()).pow(2).sum(1))


def bilinear_form(group: SymmetryGroup, x: Mapping[str, Tensor], y: Mapping[str, Tensor]) -> Tensor:
    """``(S,)``: signed ``<x_A, y_A>`` per slot (zero for ``x = grad``, ``y = theta`` under a
    scale/rescale symmetry)."""
    return _fold(group, lambda m: (m.view(x[m.param].detach()) * m.view(y[m.param].detach())).sum(1))


def magnitude(group: SymmetryGroup, tensors: Mapping[str, Tensor]) -> Tensor:
    """``(S,)`` scale of a slot's terms, used to normalise errors: ``sum |x|`` (translation) or
    ``sum x^2`` without signs (scale, rescale)."""
    power = 1 if group.kind == "translation" else 2
    out = torch.zeros(group.slots, dtype=torch.float64)
    for m in group.members:
        v = m.view(tensors[m.param].detach()).abs().pow(power).sum(1).to(torch.float64).cpu()
        out[m.offset:m.offset + v.shape[0]] += v
    return out


def quantity(group: SymmetryGroup, tensors: Mapping[str, Tensor]) -> Tensor:
    """The group's conserved quantity ``(S,)`` (linear form for translation, quadratic otherwise)."""
    return linear_form(group, tensors) if group.kind == "translation" else quadratic_form(group, tensors)


def gradient_term(group: SymmetryGroup, grads: Mapping[str, Tensor]) -> Tensor:
    """``(S,)`` the gradient's contribution to the discrete recursion: ``<g, 1>`` (translation,
    zero under the symmetry) or ``quadratic_form(g)`` (scale / rescale)."""
    return quantity(group, grads)


def quantity_reference(group: SymmetryGroup, tensors: Mapping[str, Tensor]) -> Tensor:
    """Naive loops over slots and entries (for tests), same result as :func:`quantity`."""
    out = [0.0] * group.slots
    for m in group.members:
        p = tensors[m.param].detach().to(torch.float64).cpu()
        if m.layout == "all":
            rows = [p.flatten()]
        elif m.layout == "columns":
            flat = p.reshape(p.shape[0], -1)
            rows = [flat[:, j] for j in range(flat.shape[1])]
        elif m.layout == "rows":
            rows = [p[s * m.block:(s + 1) * m.block].flatten() for s in range(p.shape[0] // m.block)]
        else:  # cols
            rows = [p[:, s * m.block:(s + 1) * m.block].flatten() for s in range(p.shape[1] // m.block)]
        for s, r in enumerate(rows):
            val = sum(float(v) for v in r) if group.kind == "translation" else sum(float(v) ** 2 for v in r)
            out[m.offset + s] += m.sign * val
    return torch.tensor(out, dtype=torch.float64)


def param_tensors(model: nn.Module) -> dict[str, Tensor]:
    """``{name: parameter}`` of ``model`` (no copy)."""
    return dict(model.named_parameters())


def grad_tensors(model: nn.Module) -> dict[str, Tensor]:
    """``{name: p.grad}`` (zeros where a parameter has no gradient)."""
    return {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}
