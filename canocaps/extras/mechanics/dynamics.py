"""Closed-form dynamics of the symmetry quantities (Kunin et al. 2020, Secs. 4-5).

Notation: ``Q`` a group's quantity ``(S,)`` (see :mod:`.quantities`), ``p = 1`` for
translation and ``p = 2`` for scale / rescale, learning rate ``eta``, weight decay
``lam``, momentum ``beta``, dampening ``tau``, step ``k``, time ``t = sum_{i<k} eta_i``
(``= eta k`` for a constant learning rate).

**Gradient flow** (``eta -> 0``): ``Q(t) = Q(0) exp(-p lam t)``; conserved for ``lam = 0``.

**Discrete SGD, exact per step.** torch's SGD (momentum 0) does
``theta_{k+1} = theta_k - eta (g_k + lam theta_k)`` where ``g_k`` is the *loss* gradient
(``p.grad``; the decay term is added inside ``optimizer.step``). Since the symmetry gives
``<g_k, 1>_A = 0`` (translation) and ``<g_k, theta_k>_A = 0`` (scale; the signed sum for
rescale), expanding the update gives, with no approximation:

- translation: ``Q_{k+1} = (1 - eta lam) Q_k``
- scale / rescale: ``Q_{k+1} = (1 - eta lam)^2 Q_k + eta^2 G_k``, ``G_k = quadratic_form(g_k)``
  (``||g_A||^2``; for rescale ``||g_out[:, i]||^2 - ||g_in[i]||^2 - g_b[i]^2``).

**Discrete SGD with momentum, translation, exact.** torch: ``d_k = g_k + lam theta_k``;
``buf_1 = d_0``, ``buf_{k+1} = beta buf_k + (1 - tau) d_k``; update ``u_k = buf_{k+1}``
(Nesterov: ``u_k = d_k + beta buf_{k+1}``); ``theta_{k+1} = theta_k - eta_k u_k``. Projected
on ``1_A`` (``<g, 1> = 0``) this is a closed 2-D linear recursion for ``(Q, <buf, 1>)``.

**Modified equation with momentum** (Taylor-expanding the heavy-ball update with
``t = eta k``): ``a theta'' + b theta' = -c (g + lam theta)`` with ``a = eta (1 + beta) / 2``,
``b = 1 - beta``, ``c = 1 - tau`` (``c = 1`` without momentum). Then

- translation: ``a Q'' + b Q' + c lam Q = 0``;
- scale / rescale (dot with theta, ``<g, theta> = 0``): ``a Q'' + b Q' + 2 c lam Q = 2 a K(t)``,
  ``K = quadratic_form(theta')`` estimated per step as ``quadratic_form(theta_{k+1} - theta_k) / eta_k^2``.

Both are damped harmonic oscillators ``a x'' + b x' + k x = f``: over-damped for
``b^2 > 4 a k``, critically damped for ``b^2 = 4 a k``, under-damped (oscillating) for
``b^2 < 4 a k``. :func:`damped_oscillator` gives the closed form in each regime; a learning
rate schedule is handled by propagating ``(x, x')`` across each step with that step's
``eta`` (``x'`` is continuous: it is the momentum buffer). Initial velocity: torch's first
buffer is ``d_0``, so ``Q'(0) = -p lam Q(0)``.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from canocaps.errors import CanocapsInputError

__all__ = ["decay_power", "gradient_flow", "sgd_step", "momentum_translation_step", "momentum_coefficients",
           "damping_regime", "damped_oscillator", "damped_oscillator_reference", "forced_oscillator_step"]

Regime = Literal["over", "critical", "under"]


def decay_power(kind: str) -> int:
    """``p``: 1 for translation (linear quantity), 2 for scale / rescale (quadratic)."""
    if kind == "translation":
        return 1
    if kind in ("scale", "rescale"):
        return 2
    raise CanocapsInputError(f"unknown symmetry kind {kind!r}")


def gradient_flow(kind: str, q0: Tensor, t: Tensor | float, weight_decay: float) -> Tensor:
    """Gradient-flow prediction ``Q0 exp(-p lam t)``: q0 ``(S,)``, t scalar or ``(K,)`` -> ``(S,)`` / ``(K, S)``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    decay = torch.exp(-decay_power(kind) * weight_decay * t)
    return decay[..., None] * q0 if decay.ndim else decay * q0


def sgd_step(kind: str, q: Tensor, grad_term: Tensor | None, lr: float, weight_decay: float) -> Tensor:
    """One exact step of plain SGD (see module docstring): ``(S,) -> (S,)``.

    ``grad_term``: ``quadratic_form(g_k)`` for scale / rescale (ignored for translation).
    """
    shrink = 1.0 - lr * weight_decay
    if decay_power(kind) == 1:
        return shrink * q
    if grad_term is None:
        raise CanocapsInputError(f"{kind} step needs the gradient term quadratic_form(g)")
    return shrink * shrink * q + lr * lr * grad_term


def paper_scale_step(q: Tensor, grad_term: Tensor, lr: float, weight_decay: float) -> Tensor:
    """One step of Kunin et al.'s closed form for scale / rescale with weight decay, as written
    (modified gradient flow): ``Q(t) = e^{-2 lam t} Q(0) + eta int_0^t e^{-2 lam (t - tau)} G(tau) dtau``
    with ``G = quadratic_form(g)``, evaluated with ``G`` constant (the measured ``G_k``) over
    the step ``[t_k, t_k + eta_k]``: ``Q <- e^{-2 lam eta} Q + eta G (1 - e^{-2 lam eta}) / (2 lam)``
    (``eta^2 G`` when ``lam = 0``). It differs from the exact recursion :func:`sgd_step` by
    ``e^{-2 lam eta}`` vs ``(1 - lam eta)^2`` per step, i.e. ``O((lam eta)^2)``."""
    x = 2.0 * weight_decay * lr
    decay = math.exp(-x)
    integral = lr * lr if x == 0.0 else lr * (-math.expm1(-x)) / (2.0 * weight_decay)
    return decay * q + integral * grad_term


def momentum_translation_step(q: Tensor, buf: Tensor | None, lr: float, weight_decay: float, momentum: float,
                              dampening: float = 0.0, nesterov: bool = False) -> tuple[Tensor, Tensor]:
    """Exact step of ``(<theta, 1>, <buf, 1>)`` under torch's SGD with momentum, translation groups.

    ``buf=None`` on the first step (torch initialises the buffer to ``d_0``). Returns
    ``(Q_{k+1}, <buf_{k+1}, 1>)``, both ``(S,)``.
    """
    d = weight_decay * q  # <g + lam theta, 1> with <g, 1> = 0
    new_buf = d.clone() if buf is None else momentum * buf + (1.0 - dampening) * d
    update = d + momentum * new_buf if nesterov else new_buf
    return q - lr * update, new_buf


def momentum_coefficients(kind: str, lr: float, momentum: float, dampening: float,
                          weight_decay: float) -> tuple[float, float, float]:
    """``(a, b, k)`` of ``a x'' + b x' + k x = f`` for the group's quantity (module docstring)."""
    c = (1.0 - dampening) if momentum > 0 else 1.0
    return lr * (1.0 + momentum) / 2.0, 1.0 - momentum, decay_power(kind) * c * weight_decay


def damping_regime(a: float, b: float, k: float, rtol: float = 1e-9) -> Regime:
    """Which closed form applies to ``a x'' + b x' + k x = 0`` (critical within ``rtol``)."""
    disc = b * b - 4.0 * a * k
    if abs(disc) <= rtol * b * b:
        return "critical"
    return "over" if disc > 0 else "under"


def damped_oscillator(x0: Tensor, v0: Tensor, a: float, b: float, k: float, t: float,
                      regime: Regime | None = None) -> tuple[Tensor, Tensor]:
    """Closed-form solution of ``a x'' + b x' + k x = 0`` at time ``t`` from ``x(0) = x0, x'(0) = v0``.

    ``x0``, ``v0``: ``(S,)`` float64; ``a > 0``, ``b >= 0``, ``k >= 0`` scalars. Returns
    ``(x(t), x'(t))``. Regimes (``Delta = b^2 - 4 a k``): over-damped (two real roots),
    critically damped (double root ``-b / 2a``), under-damped (``exp(-gamma t)`` times
    a rotation with ``omega = sqrt(-Delta) / 2a``).
    """
    if a <= 0:
        raise CanocapsInputError(f"oscillator mass a must be > 0, got {a}")
    regime = regime or damping_regime(a, b, k)
    disc = b * b - 4.0 * a * k
    if regime == "over":
        s = math.sqrt(max(disc, 0.0))
        r2 = (-b - s) / (2.0 * a)
        r1 = k / (a * r2) if r2 != 0 else (-b + s) / (2.0 * a)  # Vieta: stable when 4ak << b^2
        c1 = (v0 - r2 * x0) / (r1 - r2)
        c2 = x0 - c1
        e1, e2 = math.exp(r1 * t), math.exp(r2 * t)
        return c1 * e1 + c2 * e2, r1 * c1 * e1 + r2 * c2 * e2
    if regime == "critical":
        r = -b / (2.0 * a)
        e = math.exp(r * t)
        slope = v0 - r * x0
        x = (x0 + slope * t) * e
        return x, slope * e + r * x
    gamma = b / (2.0 * a)
    omega = math.sqrt(max(-disc, 0.0)) / (2.0 * a)
    e, cs, sn = math.exp(-gamma * t), math.cos(omega * t), math.sin(omega * t)
    bcoef = (v0 + gamma * x0) / omega
    return e * (x0 * cs + bcoef * sn), e * (v0 * cs - (omega * x0 + gamma * bcoef) * sn)


def damped_oscillator_reference(x0: Tensor, v0: Tensor, a: float, b: float, k: float, t: float,
                                f: Tensor | float = 0.0) -> tuple[Tensor, Tensor]:
    """Reference for :func:`forced_oscillator_step`: the matrix exponential of the first-order
    system ``d/dt (x, v, 1) = [[0, 1, 0], [-k/a, -b/a, f/a], [0, 0, 0]] (x, v, 1)``."""
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    v0 = torch.as_tensor(v0, dtype=torch.float64)
    f = torch.as_tensor(f, dtype=torch.float64).expand_as(x0)
    out_x, out_v = torch.empty_like(x0), torch.empty_like(x0)
    for i in range(x0.numel()):
        m = torch.tensor([[0.0, 1.0, 0.0], [-k / a, -b / a, float(f.flatten()[i]) / a], [0.0, 0.0, 0.0]],
                         dtype=torch.float64)
        y = torch.linalg.matrix_exp(m * t) @ torch.tensor([float(x0.flatten()[i]), float(v0.flatten()[i]), 1.0],
                                                          dtype=torch.float64)
        out_x.view(-1)[i], out_v.view(-1)[i] = y[0], y[1]
    return out_x, out_v


def forced_oscillator_step(x0: Tensor, v0: Tensor, a: float, b: float, k: float, f: Tensor | float,
                           h: float) -> tuple[Tensor, Tensor]:
    """Solution of ``a x'' + b x' + k x = f`` (``f`` constant over the step) after time ``h``.

    ``k > 0``: shift to the equilibrium ``f / k`` and use :func:`damped_oscillator`.
    ``k = 0``: the particular solution ``(f / b) t`` plus the homogeneous one.
    """
    f = torch.as_tensor(f, dtype=torch.float64)
    if k > 0:
        xe = f / k
        x, v = damped_oscillator(x0 - xe, v0, a, b, k, h)
        return x + xe, v
    if b <= 0:
        raise CanocapsInputError("momentum must be < 1 (no damping otherwise)")
    drift = f / b
    x, v = damped_oscillator(x0, v0 - drift, a, b, 0.0, h)
    return x + drift * h, v + drift
