"""Trainer callback that measures every symmetry quantity and its predictions, step by step.

Hooks used (see :class:`canocaps.train.Callback`): ``on_before_optimizer_step`` reads
``theta_k``, the loss gradient ``g_k = p.grad`` and the hyper-parameters of this step
(learning rate read from the optimizer's param group *now*, so schedules are followed);
``on_step_end`` reads ``theta_{k+1}`` and compares it with

- ``sgd_step``: the exact one-step SGD recursion seeded with the measured ``Q_k``
  (plain SGD only);
- ``discrete``: the same recursions iterated from ``Q_0`` (plain SGD: with the measured
  ``G_k`` for scale / rescale; momentum: the exact translation recursion, nothing else);
- ``gradient_flow``: ``Q_0 exp(-p lam t)``;
- ``modified``: the momentum modified equation (damped oscillator), integrated in closed
  form step by step from ``Q_0`` (scale / rescale forced by the measured ``K_k``);
- ``paper``: Kunin et al.'s closed form as written (plain SGD): translation
  ``Q_0 e^{-lam t}``; scale / rescale ``e^{-2 lam t} Q_0 + eta int e^{-2 lam (t - tau)} G dtau``
  with the measured ``G_k = ||g_A||^2`` (:func:`.dynamics.paper_scale_step`).

Errors are relative to the slot's magnitude (``sum |theta|`` for translation, ``sum theta^2``
without signs otherwise; see :func:`.quantities.magnitude`), its largest value so far, so
that a rescale difference or a translation sum near zero does not blow up the ratio.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from canocaps.extras.mechanics import dynamics as dyn
from canocaps.extras.mechanics import quantities as qty
from canocaps.extras.mechanics.symmetry import SymmetryGroup, SymmetryReport
from canocaps.train import Callback

__all__ = ["MechanicsCallback", "GroupTrace"]

SERIES = ("measured", "sgd_step", "discrete", "gradient_flow", "modified", "paper")


class GroupTrace:
    """Per-step record of one symmetry group: each series is a list of ``(S,)`` float64 tensors.

    ``measured[k]`` is ``Q`` after ``k`` optimizer steps (``measured[0]`` = initial value);
    predictions are aligned with it (``sgd_step[0]`` = ``measured[0]``).
    """

    def __init__(self, group: SymmetryGroup):
        self.group = group
        self.series: dict[str, list[Tensor]] = {s: [] for s in SERIES}
        self.magnitude: list[Tensor] = []
        self.violation: list[float] = []
        self.lr: list[float] = []
        self.time: list[float] = [0.0]
        self.state: dict[str, Any] = {}

    def stacked(self, name: str) -> Tensor:
        """``(K + 1, S)`` series (NaN where the prediction does not apply)."""
        return torch.stack(self.series[name]) if self.series[name] else torch.empty(0, self.group.slots)

    def rel_errors(self, name: str) -> Tensor:
        """``(K + 1,)`` max over slots of ``|measured - name| / M`` with ``M`` the largest
        magnitude the slot has had up to that step (a quantity and all its terms can pass
        through zero together, e.g. under-damped momentum; the running max keeps the ratio
        meaningful there)."""
        m, p = self.stacked("measured"), self.stacked(name)
        mag = torch.cummax(torch.stack(self.magnitude), dim=0).values.clamp_min(1e-300)
        return ((m - p).abs() / mag).amax(dim=1)

    def state_dict(self) -> dict[str, Any]:
        return {"series": {k: [t.clone() for t in v] for k, v in self.series.items()},
                "magnitude": list(self.magnitude), "violation": list(self.violation), "lr": list(self.lr),
                "time": list(self.time), "state": dict(self.state)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.series = {k: list(d["series"].get(k, [])) for k in SERIES}
        self.magnitude, self.violation = list(d["magnitude"]), list(d["violation"])
        self.lr, self.time, self.state = list(d["lr"]), list(d["time"]), dict(d["state"])


def _nan(s: int) -> Tensor:
    return torch.full((s,), math.nan, dtype=torch.float64)


class MechanicsCallback(Callback):
    """Measure the quantities of ``report``'s groups on ``module`` during ``Trainer.fit``.

    ``prefix``: where the analysed network sits in the trainer module (``"net."`` when the
    report was made on ``module.net``). Works with any optimizer; predictions need
    ``torch.optim.SGD`` (others record measurements only).
    """

    def __init__(self, report: SymmetryReport, prefix: str = "") -> None:
        self.report = report
        self.prefix = prefix
        self.traces = [GroupTrace(g) for g in report.groups]
        self._before: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ helpers
    def _tensors(self, module: nn.Module, grads: bool = False) -> dict[str, Tensor]:
        out = {}
        for name, p in module.named_parameters():
            if name.startswith(self.prefix):
                key = name[len(self.prefix):]
                out[key] = (p.grad if p.grad is not None else torch.zeros_like(p)) if grads else p.detach()
        return out

    @staticmethod
    def _hyper(optimizer: torch.optim.Optimizer, module: nn.Module, prefix: str,
               group: SymmetryGroup) -> dict[str, Any] | None:
        """The SGD hyper-parameters of the param group holding ``group``'s parameters (None if
        not SGD, or the members sit in param groups with different settings)."""
        if not isinstance(optimizer, torch.optim.SGD):
            return None
        named = dict(module.named_parameters())
        ids = {id(named[prefix + p]) for p in group.params}
        found = []
        for pg in optimizer.param_groups:
            if ids & {id(p) for p in pg["params"]}:
                found.append({k: pg[k] for k in ("lr", "weight_decay", "momentum", "dampening", "nesterov")})
        if not found or any(f != found[0] for f in found):
            return None
        h = found[0]
        return {k: (float(v) if k != "nesterov" else bool(v)) for k, v in h.items()}

    # ------------------------------------------------------------------ hooks
    def on_before_optimizer_step(self, trainer: Any, module: nn.Module) -> None:
        theta, grads = self._tensors(module), self._tensors(module, grads=True)
        for i, tr in enumerate(self.traces):
            g = tr.group
            q = qty.quantity(g, theta).cpu()
            if not tr.series["measured"]:  # first step seen: seed every trajectory
                tr.series["measured"].append(q)
                for s in SERIES[1:]:
                    tr.series[s].append(q.clone())
                tr.magnitude.append(qty.magnitude(g, theta))
                tr.state = {"discrete": q.clone(), "buf": None, "x": q.clone(), "v": None, "q0": q.clone(),
                            "paper": q.clone()}
            hyper = self._hyper(trainer.optimizer, module, self.prefix, g)
            if g.kind == "translation":
                viol = qty.linear_form(g, grads).cpu()
                gterm = None
            else:
                viol = 2.0 * qty.bilinear_form(g, grads, theta).cpu()
                gterm = qty.quadratic_form(g, grads).cpu()
            self._before[i] = {"q": q, "gterm": gterm, "viol": viol, "hyper": hyper,
                               "theta": {p: theta[p].clone() for p in g.params}}

    def on_step_end(self, trainer: Any, module: nn.Module, outputs: dict[str, float]) -> None:
        theta = self._tensors(module)
        for i, tr in enumerate(self.traces):
            before = self._before.pop(i, None)
            if before is None:
                continue
            g, hyper, s = tr.group, before["hyper"], tr.group.slots
            q_new = qty.quantity(g, theta).cpu()
            tr.series["measured"].append(q_new)
            tr.magnitude.append(qty.magnitude(g, theta))
            if hyper is None:
                for name in SERIES[1:]:
                    tr.series[name].append(_nan(s))
                tr.lr.append(math.nan)
                tr.time.append(math.nan)
                tr.violation.append(math.nan)
                continue
            lr, wd, beta = hyper["lr"], hyper["weight_decay"], hyper["momentum"]
            tau, nesterov = hyper["dampening"], hyper["nesterov"]
            tr.lr.append(lr)
            t = tr.time[-1] + lr
            tr.time.append(t)
            mag = tr.magnitude[-2].clamp_min(1e-300)
            tr.violation.append(float((lr * before["viol"].abs() / mag).max()))
            st = tr.state
            # exact one-step and iterated discrete recursions
            if beta == 0.0:
                tr.series["sgd_step"].append(dyn.sgd_step(g.kind, before["q"], before["gterm"], lr, wd))
                st["discrete"] = dyn.sgd_step(g.kind, st["discrete"], before["gterm"], lr, wd)
                tr.series["discrete"].append(st["discrete"].clone())
            else:
                tr.series["sgd_step"].append(_nan(s))
                if g.kind == "translation":
                    st["discrete"], st["buf"] = dyn.momentum_translation_step(
                        st["discrete"], st["buf"], lr, wd, beta, tau, nesterov)
                    tr.series["discrete"].append(st["discrete"].clone())
                else:
                    tr.series["discrete"].append(_nan(s))
            tr.series["gradient_flow"].append(dyn.gradient_flow(g.kind, st["q0"], t, wd))
            if beta != 0.0:
                tr.series["paper"].append(_nan(s))
            elif g.kind == "translation":
                tr.series["paper"].append(tr.series["gradient_flow"][-1].clone())
            else:
                st["paper"] = dyn.paper_scale_step(st.setdefault("paper", st["q0"].clone()), before["gterm"], lr, wd)
                tr.series["paper"].append(st["paper"].clone())
            # modified equation (damped oscillator), one closed-form step of length lr
            if nesterov:
                tr.series["modified"].append(_nan(s))
                continue
            a, b, k = dyn.momentum_coefficients(g.kind, lr, beta, tau, wd)
            st.setdefault("regime", dyn.damping_regime(a, b, k))
            if st["v"] is None:
                st["v"] = -dyn.decay_power(g.kind) * wd * st["x"]
            if g.kind == "translation":
                force = torch.zeros(s, dtype=torch.float64)
            else:
                delta = {p: theta[p] - before["theta"][p] for p in g.params}
                force = 2.0 * a * qty.quadratic_form(g, delta).cpu() / (lr * lr)
            st["x"], st["v"] = dyn.forced_oscillator_step(st["x"], st["v"], a, b, k, force, lr)
            tr.series["modified"].append(st["x"].clone())

    # ------------------------------------------------------------------ results
    def summary(self) -> dict[str, Any]:
        """Per group: max relative errors of each prediction and the symmetry violation."""
        out: dict[str, Any] = {}
        for tr in self.traces:
            if len(tr.series["measured"]) < 2:
                continue
            errs = {}
            for name in SERIES[1:]:
                e = tr.rel_errors(name)[1:]
                e = e[~torch.isnan(e)]
                errs[name] = {"max": float(e.max()), "final": float(e[-1])} if e.numel() else None
            viol = [v for v in tr.violation if not math.isnan(v)]
            h = [x for x in tr.lr if not math.isnan(x)]
            out[f"{tr.group.kind}:{tr.group.name}"] = {
                "kind": tr.group.kind, "slots": tr.group.slots, "steps": len(tr.series["measured"]) - 1,
                "rel_error": errs, "symmetry_violation_max": max(viol) if viol else None,
                "lr_first": h[0] if h else None, "lr_last": h[-1] if h else None,
                "regime": tr.state.get("regime")}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"traces": [tr.state_dict() for tr in self.traces]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for tr, d in zip(self.traces, state.get("traces", [])):
            tr.load_state_dict(d)
