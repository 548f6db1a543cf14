"""Hessian constraints implied by each symmetry (Kunin et al. 2020, Sec. 3), checked with
Hessian-vector products.

Differentiating the gradient identities of a symmetry once more gives constraints on the
Hessian ``H`` of the loss at *any* parameter value (``g`` = the gradient, ``D_s`` the
group's signed indicator of slot ``s``: +1 on its entries, -1 on the ``W_l`` side of a
rescale group, 0 elsewhere):

- translation, ``<g, 1_A> = 0``:            ``H 1_A = 0``;
- scale, ``<g, theta_A> = 0``:             ``H theta_A = -g_A``;
- rescale, ``<g, D theta> = 0``:           ``H D theta = -D g`` (the paired form:
  ``H (theta_{A1} - theta_{A2}) = -(g_{A1} - g_{A2})``).

:func:`check_hessian_constraints` forms, per group, the direction ``v`` (``1_A`` or ``D theta``)
and the target (``0`` or ``-D g``) over the *whole* parameter vector, computes ``H v`` by
double backward (one HVP), and reports ``|H v - target| / scale``. ``slots="all"``
checks a random combination ``sum_s c_s v_s`` of every slot at once (linear in the
constraints, so any violated slot shows up), an int ``k`` checks the first ``k`` slots one by
one. ``scale`` is ``|H u|`` for a random direction ``u`` of the same norm as ``v`` (what ``H v``
would be without the symmetry), so the ratio is ~1e-16 in float64 when a constraint holds and
~1 when it does not. Batch norm in training mode breaks scale only by ``O(eps / var)``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from canocaps.errors import CanocapsInputError
from canocaps.extras.mechanics.symmetry import SymmetryGroup, SymmetryReport

__all__ = ["group_direction", "hvp", "check_hessian_constraints"]


def _slot_index(member, p: Tensor) -> Tensor:
    """``(slots, entries)`` flat indices into ``p`` of each slot of ``member``."""
    return member.view(torch.arange(p.numel(), device=p.device).reshape(p.shape))


def group_direction(group: SymmetryGroup, params: Mapping[str, Tensor], grads: Mapping[str, Tensor],
                    coeffs: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Direction ``v = sum_s c_s v_s`` and target ``sum_s c_s t_s`` (module doc), as
    ``{param: tensor like the parameter}`` (only the group's parameters); ``coeffs`` ``(S,)``."""
    v = {n: torch.zeros_like(params[n]) for n in group.params}
    t = {n: torch.zeros_like(params[n]) for n in group.params}
    for m in group.members:
        p, g = params[m.param].detach(), grads[m.param].detach()
        idx = _slot_index(m, p)  # (slots_m, entries)
        c = coeffs[m.offset:m.offset + idx.shape[0]].to(p.dtype)[:, None] * m.sign
        flat_v, flat_t = v[m.param].view(-1), t[m.param].view(-1)
        if group.kind == "translation":
            flat_v.index_add_(0, idx.flatten(), c.expand_as(idx).flatten().to(p.dtype))
        else:
            flat_v.index_add_(0, idx.flatten(), (c * p.reshape(-1)[idx]).flatten())
            flat_t.index_add_(0, idx.flatten(), (-c * g.reshape(-1)[idx]).flatten())
    return v, t


def hvp(loss_fn: Callable[[], Tensor], params: Mapping[str, nn.Parameter],
        vectors: list[Mapping[str, Tensor]]) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
    """Gradient and Hessian-vector products of ``loss_fn()`` by double backward.

    ``vectors``: directions ``{name: tensor}`` (missing names = 0). Returns the gradient and
    one ``{name: H v}`` per direction, over every parameter in ``params``."""
    names = list(params)
    plist = [params[n] for n in names]
    loss = loss_fn()
    grads = torch.autograd.grad(loss, plist, create_graph=True, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p, requires_grad=True) for g, p in zip(grads, plist)]
    dot_terms = [(g, n) for g, n in zip(grads, names) if g.requires_grad]
    out = []
    for vec in vectors:
        dot = sum((g * vec[n]).sum() for g, n in dot_terms if n in vec)
        hv = torch.autograd.grad(dot, plist, retain_graph=True, allow_unused=True)
        out.append({n: (h.detach() if h is not None else torch.zeros_like(p)) for n, h, p in zip(names, hv, plist)})
    return {n: g.detach() for n, g in zip(names, grads)}, out


def _norm(d: Mapping[str, Tensor]) -> float:
    return float(torch.sqrt(sum((x.double() ** 2).sum() for x in d.values())))


def check_hessian_constraints(report: SymmetryReport, model: nn.Module, loss_fn: Callable[[], Tensor],
                              prefix: str = "", slots: str | int = "all", seed: int = 0) -> dict[str, Any]:
    """Check every group's Hessian constraint on ``model`` at its current parameters.

    ``loss_fn()`` recomputes the loss from ``model`` (e.g. on a fixed batch); ``prefix`` is
    where the analysed network sits in ``model`` (as :class:`~.callbacks.MechanicsCallback`).
    Buffers (batch-norm running statistics) are restored afterwards. Returns
    ``{"groups": {kind:name: {"kind", "slots_checked", "residual", "scale", "rel_error"}},
    "max_rel_error": float}`` (``rel_error`` = max over the checked directions).
    """
    if not (slots == "all" or (isinstance(slots, int) and slots >= 1)):
        raise CanocapsInputError(f"slots must be 'all' or a positive int, got {slots!r}")
    named = {n[len(prefix):]: p for n, p in model.named_parameters() if n.startswith(prefix)}
    missing = sorted({m.param for g in report.groups for m in g.members} - set(named))
    if missing:
        raise CanocapsInputError(f"parameters {', '.join(missing)} of the report are not in the model "
                                 f"(prefix {prefix!r})")
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
    gen = torch.Generator().manual_seed(seed)
    try:
        grads, _ = hvp(loss_fn, named, [])
        plan: list[tuple[SymmetryGroup, Tensor]] = []
        for g in report.groups:
            if slots == "all":
                plan.append((g, torch.randn(g.slots, generator=gen, dtype=torch.float64)))
            else:
                for s in range(min(slots, g.slots)):
                    plan.append((g, torch.nn.functional.one_hot(torch.tensor(s), g.slots).double()))
        dirs, targets, randoms = [], [], []
        for g, c in plan:
            v, t = group_direction(g, named, grads, c)
            u = {n: torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x) for n, x in v.items()}
            scale = _norm(v) / max(_norm(u), 1e-300)
            randoms.append({n: x * scale for n, x in u.items()})
            dirs.append(v)
            targets.append(t)
        _, hv = hvp(loss_fn, named, dirs + randoms)
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
    out: dict[str, Any] = {}
    for i, (g, _) in enumerate(plan):
        hvi, hu = hv[i], hv[len(plan) + i]
        res = _norm({n: hvi[n] - targets[i].get(n, torch.zeros_like(hvi[n])) for n in hvi})
        scale = _norm(hu)
        key = f"{g.kind}:{g.name}"
        rec = out.setdefault(key, {"kind": g.kind, "slots_checked": 0, "residual": 0.0, "scale": 0.0,
                                   "rel_error": 0.0})
        rec["slots_checked"] += g.slots if slots == "all" else 1
        rec["residual"] = max(rec["residual"], res)
        rec["scale"] = max(rec["scale"], scale)
        rec["rel_error"] = max(rec["rel_error"], res / max(scale, 1e-300))
    return {"groups": out, "max_rel_error": max((r["rel_error"] for r in out.values()), default=0.0)}
