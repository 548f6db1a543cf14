"""Variational RNNs (Chung et al. 2015): VRNN-single over the joint state, VRNN-indep per agent.

One VRNN step (the authors' layout): with ``y = x_{t-1}`` the joint previous state,
``c`` a conditioning vector built from y (and, for the macro-intent model, the intent),
and ``h`` the recurrent state,

- posterior  ``q(z_t | x_t, c, h)``, prior ``p(z_t | c, h)`` (diagonal Gaussians),
- decoder    ``p(x_t | c, z_t, h)`` (diagonal Gaussian),
- recurrence ``h <- GRU([x_t, z_t], h)``.

Per step the negative ELBO is ``NLL(x_t) + KL(q || p)`` with one reparameterised z sample.

``residual=True`` (our default) adds the agent's previous position to the decoder mean,
so the network predicts a displacement; the density is still on positions, so bounds stay
comparable. ``residual=False`` is the authors' absolute parameterisation.
``max_step`` (residual only) bounds the predicted displacement per coordinate:
``mean = x_{t-1} + max_step * tanh(raw)``. ``velocity_scale`` > 0 appends the joint previous
displacement ``velocity_scale * (x_{t-1} - x_{t-2})`` (zero at t = 1) to the conditioning,
so the step is second order (the boids move with momentum).

``faithful=True`` trains the decoder mean by least squares and its std by the NLL at the
detached mean (:func:`~.common.faithful_gaussian_nll`, Stirn et al. 2023): the loss *value*
(the bound) is unchanged, only the gradient differs. Under the plain NLL the per-agent
models did not learn the boids' unfriendly repulsion (docs/extras_trajectories.md).

``rollout_steps`` = H > 0 adds a multi-step term to the *training* objective (not to the
bound, which ``loss_terms``, ``validation_step``'s ``"loss"`` and ``eval`` report unchanged):
from the teacher-forced recurrent state at one random frame per sequence the model is unrolled
H frames on its own *means* (z at the prior's mean, x at the decoder's mean, its predictions fed
back, intents as given), and the squared position error of the unrolled frames against the data
is added, gradients through the unroll (:meth:`_VRNNBase.rollout_error`). It is scaled like
the faithful least-squares term: ``rollout_weight * 0.5 * sum |x_hat - x|^2 / v``, ``v`` the
batch mean of the teacher-forced decoder variance (detached), so with weight 1 an unrolled
point weighs what one teacher-forced point weighs under least squares. Why: a rule that acts
weakly per step and matters accumulated over many (the boids' unfriendly repulsion) is nearly
invisible to one-step teacher forcing (docs/extras_trajectories.md). ``rollout_step_weight``
= s > 0 adds ``s * sum (|x_hat_t - x_hat_{t-1}| - |x_t - x_{t-1}|)^2`` per agent to that sum:
the error of each unrolled step's *length*, against the shorter steps with which a
least-squares unroll hedges an uncertain heading (the rollouts otherwise slow down).

``sampled_kl=True`` replaces the analytic KL by its one-sample estimate
``log q(z) - log p(z)`` at the sampled z: then ``nll + kl`` is ``-log w`` of one importance
sample, which :meth:`~.base.TrajectoryModel.iw_bound` averages in log space (IWAE).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from canocaps.extras.trajectories.models.base import TrajectoryModel, start_rollout
from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories.models.common import (
    GaussianHead,
    GridEncoding,
    GroupGRUCell,
    GroupMLP,
    faithful_gaussian_nll,
    gaussian_kl,
    gaussian_nll,
    sample_gaussian,
)


class VRNNCore(nn.Module):
    """``groups`` VRNNs stepped in parallel: tensors are ``(B, G, .)``; ``groups=1`` shares weights."""

    def __init__(self, groups: int, x_dim: int, cond_dim: int, z_dim: int, h_dim: int, rnn_dim: int,
                 min_std: float, max_step: float | None = None, faithful: bool = False) -> None:
        super().__init__()
        self.rnn_dim = rnn_dim
        self.max_step = max_step
        self.faithful = faithful
        self.enc = GaussianHead(groups, x_dim + cond_dim + rnn_dim, h_dim, z_dim, min_std)
        self.prior = GaussianHead(groups, cond_dim + rnn_dim, h_dim, z_dim, min_std)
        self.dec = GaussianHead(groups, cond_dim + z_dim + rnn_dim, h_dim, x_dim, min_std, separate_std=faithful)
        self.rnn = GroupGRUCell(groups, x_dim + z_dim, rnn_dim)
        self.trace: list[Tensor] | None = None  # diagnostics: when a list, step() appends its prediction
        self.keep: list[tuple[Tensor, Tensor]] | None = None  # rollout loss: step() appends (input h, decoder var)
        self.trace_latent = "prior"  # ... the decoder mean at the prior's ("prior") or posterior's mean z

    def mean(self, raw: Tensor, offset: Tensor | float) -> Tensor:
        """Decoder mean from the network output: ``offset + raw`` or ``offset + max_step * tanh(raw)``."""
        return offset + (raw if self.max_step is None else self.max_step * torch.tanh(raw))

    def step(self, x: Tensor, cond: Tensor, h: Tensor, offset: Tensor | float = 0.0,
             generator: torch.Generator | None = None, sampled_kl: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced step: x ``(B, G, x_dim)`` -> (nll ``(B,)``, kl ``(B,)``, new h).

        ``offset`` ``(B, G, x_dim)`` is added to the decoder mean (residual parameterisation).
        ``sampled_kl``: ``log q(z|.) - log p(z|.)`` at the sample instead of the analytic KL."""
        qm, qs = self.enc(torch.cat([x, cond, h], -1))
        pm, ps = self.prior(torch.cat([cond, h], -1))
        z = sample_gaussian(qm, qs, generator)
        dm, ds = self.dec(torch.cat([cond, z, h], -1))
        nll = (faithful_gaussian_nll if self.faithful else gaussian_nll)(x, self.mean(dm, offset), ds).sum((1, 2))
        if self.keep is not None:  # the state this step started from, for unrolls (rollout_error)
            self.keep.append((h, ds.detach() ** 2))
        if self.trace is not None:  # the decoder mean at the prior's mean z: the model's one-step prediction
            zt = qm if self.trace_latent == "posterior" else pm  # (posterior: what z carries of the next frame)
            self.trace.append(self.mean(self.dec(torch.cat([cond, zt, h], -1))[0], offset).detach())
        if sampled_kl:
            kl = (gaussian_nll(z, pm, ps) - gaussian_nll(z, qm, qs)).sum((1, 2))
        else:
            kl = gaussian_kl(qm, qs, pm, ps).sum((1, 2))
        return nll, kl, self.rnn(torch.cat([x, z], -1), h)

    def generate(self, cond: Tensor, h: Tensor, offset: Tensor | float = 0.0,
                 generator: torch.Generator | None = None, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
        """Sampling step: z from the prior, x from the decoder -> (x ``(B, G, x_dim)``, new h).
        ``temperature`` scales both standard deviations (1 = the model's distribution)."""
        pm, ps = self.prior(torch.cat([cond, h], -1))
        z = sample_gaussian(pm, temperature * ps, generator)
        dm, ds = self.dec(torch.cat([cond, z, h], -1))
        x = sample_gaussian(self.mean(dm, offset), temperature * ds, generator)
        return x, self.rnn(torch.cat([x, z], -1), h)

    def predict(self, cond: Tensor, h: Tensor, offset: Tensor | float = 0.0) -> tuple[Tensor, Tensor]:
        """Deterministic step with gradients: z at the prior's mean, x at the decoder's mean ->
        (x ``(B, G, x_dim)``, new h). ``generate`` at temperature 0 gives the same x."""
        z = self.prior.mean_only(torch.cat([cond, h], -1))
        x = self.mean(self.dec.mean_only(torch.cat([cond, z, h], -1)), offset)
        return x, self.rnn(torch.cat([x, z], -1), h)

    def observe(self, x: Tensor, cond: Tensor, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Burn-in step on a known frame: z from the posterior, returns the new h."""
        qm, qs = self.enc(torch.cat([x, cond, h], -1))
        z = sample_gaussian(qm, qs, generator)
        return self.rnn(torch.cat([x, z], -1), h)


class _VRNNBase(TrajectoryModel):
    """Loop shared by the VRNNs: subclasses define groups, how x splits and the conditioning."""

    groups: int
    rollout_steps: int = 0
    rollout_weight: float = 1.0
    rollout_step_weight: float = 0.0

    def _set_rollout(self, steps: int, weight: float, step_weight: float = 0.0) -> None:
        """Store and check the multi-step training term's options (module doc)."""
        if int(steps) != steps or steps < 0 or not weight >= 0 or not step_weight >= 0:
            raise CanocapsInputError(f"rollout_steps must be an integer >= 0 and rollout_weight, "
                                     f"rollout_step_weight >= 0, got {steps!r}, {weight!r}, {step_weight!r}")
        self.rollout_steps, self.rollout_weight, self.rollout_step_weight = int(steps), float(weight), float(step_weight)

    def _step_cond(self, y: Tensor, y_prev: Tensor, m: Tensor | None) -> Tensor:
        """The conditioning of the step from ``y = x_{t-1}`` (``m``: intents ``(B, A)``, macro model only)."""
        return self._cond(y, y_prev)

    def rollout_error(self, x: Tensor, macro: Tensor | None, states: list[Tensor], steps: int,
                      starts: Tensor | None = None) -> Tensor:
        """Squared position error ``(B,)`` of an unroll on the model's means (module doc), plus
        ``rollout_step_weight`` times the squared error of each agent's step lengths.

        ``states[t - 1]`` ``(B, G, r)`` is the teacher-forced recurrent state before frame t is
        predicted (what ``VRNNCore.keep`` collects); ``starts`` ``(B,)`` the first predicted frame
        of each sequence, in ``[1, T - steps]`` (default: uniform at random). Frames
        ``start .. start + steps - 1`` are predicted from the model's own previous predictions and
        compared with ``x``, summed over frames, agents and coordinates; differentiable."""
        B, T, D = x.shape
        steps = min(int(steps), T - 1)
        if starts is None:
            starts = torch.randint(1, T - steps + 1, (B,), device=x.device)
        rows = torch.arange(B, device=x.device)
        h = torch.stack(states, 1)[rows, starts - 1]
        y, y_prev = x[rows, starts - 1], x[rows, (starts - 2).clamp(min=0)]
        err = x.new_zeros(B)
        for k in range(steps):
            t = starts + k
            cond = self._step_cond(y, y_prev, None if macro is None else macro[rows, t - 1])
            x_hat, h = self.core.predict(cond, h, self._offset(y))
            err = err + ((x_hat - self._targets(x[rows, t])) ** 2).sum((1, 2))
            if self.rollout_step_weight:
                step_hat = self._step_lengths(x_hat.reshape(B, D), y)
                err = err + self.rollout_step_weight * ((step_hat - self._step_lengths(x[rows, t], x[rows, t - 1])) ** 2).sum(1)
            y_prev, y = y, x_hat.reshape(B, D)
        return err

    def _step_lengths(self, y: Tensor, y_prev: Tensor) -> Tensor:
        """Length ``(B, A)`` of each agent's step from joint state ``y_prev`` to ``y`` (``(B, D)`` each)."""
        step = (y - y_prev).reshape(y.shape[0], -1, self.x_dim)
        return (step ** 2).sum(-1).clamp_min(1e-12).sqrt()

    def training_terms(self, x: Tensor, macro: Tensor | None = None) -> dict[str, Tensor]:
        """:meth:`loss_terms` plus, with ``rollout_steps`` > 0, ``"bound"`` (the unchanged
        negative ELBO), ``"rollout_mse"`` (mean squared error per unrolled coordinate, model
        units) and ``"rollout"`` (the term added: ``"loss" = "bound" + "rollout"``); ``(B,)``."""
        if not self.rollout_steps:
            return self.loss_terms(x, macro)
        self.core.keep = []
        try:
            terms = self.loss_terms(x, macro)
            kept = self.core.keep
        finally:
            self.core.keep = None
        var = torch.stack([v.mean() for _, v in kept]).mean()
        err = self.rollout_error(x, macro, [h for h, _ in kept], self.rollout_steps)
        steps = min(self.rollout_steps, x.shape[1] - 1)
        extra = self.rollout_weight * 0.5 * err / var
        return {**terms, "bound": terms["loss"], "loss": terms["loss"] + extra, "rollout": extra,
                "rollout_mse": err / (steps * x.shape[-1])}


    def _targets(self, x_t: Tensor) -> Tensor:  # (B, D) -> (B, G, x)
        raise NotImplementedError

    def _cond(self, y: Tensor, y_prev: Tensor) -> Tensor:  # (B, D), (B, D) -> (B, G, c)
        raise NotImplementedError

    def _motion(self, y: Tensor, y_prev: Tensor) -> Tensor:
        """The joint conditioning ``(B, D)`` or ``(B, 2D)``: ``x_{t-1}`` [+ scaled displacement]."""
        if not self.velocity_scale:
            return y
        return torch.cat([y, self.velocity_scale * (y - y_prev)], -1)

    def _motion_dim(self) -> int:
        return self.state_dim * (2 if self.velocity_scale else 1)

    def _offset(self, y: Tensor) -> Tensor | float:
        return self._targets(y) if self.residual else 0.0

    def _h0(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.groups, self.core.rnn_dim)

    def loss_terms(self, x: Tensor, macro: Tensor | None = None, sampled_kl: bool = False) -> dict[str, Tensor]:
        h = self._h0(x)
        nll = x.new_zeros(x.shape[0])
        kl = x.new_zeros(x.shape[0])
        for t in range(1, x.shape[1]):
            cond = self._cond(x[:, t - 1], x[:, max(t - 2, 0)])
            n, k, h = self.core.step(self._targets(x[:, t]), cond, h, self._offset(x[:, t - 1]),
                                     sampled_kl=sampled_kl)
            nll, kl = nll + n, kl + k
        return {"loss": nll + kl, "nll": nll, "kl": kl}

    @torch.no_grad()
    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        out = start_rollout(prefix, self.state_dim, seq_len)
        B, P, D = prefix.shape
        h = self._h0(prefix)
        for t in range(1, seq_len):
            cond = self._cond(out[:, t - 1], out[:, max(t - 2, 0)])
            if t < P:
                h = self.core.observe(self._targets(out[:, t]), cond, h, generator)
            else:
                xt, h = self.core.generate(cond, h, self._offset(out[:, t - 1]), generator, self.temperature)
                out[:, t] = xt.reshape(B, D)
        return {"x": out}


class VRNNSingle(_VRNNBase):
    """One VRNN over the joint state ``(B, T, 2A)`` (latent ``z_dim`` for all agents together)."""

    name = "vrnn_single"
    groups = 1

    def __init__(self, n_agents: int, z_dim: int = 8, h_dim: int = 64, rnn_dim: int = 64,
                 min_std: float = 1e-3, residual: bool = True, x_dim: int = 2, max_step: float | None = None,
                 velocity_scale: float = 0.0, faithful: bool = False, rollout_steps: int = 0,
                 rollout_weight: float = 1.0, rollout_step_weight: float = 0.0) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim, min_std=min_std,
                             residual=residual, x_dim=x_dim, max_step=max_step, velocity_scale=velocity_scale,
                             faithful=bool(faithful), rollout_steps=rollout_steps, rollout_weight=rollout_weight,
                             rollout_step_weight=rollout_step_weight)
        self._set_motion(residual, max_step, velocity_scale)
        self._set_rollout(rollout_steps, rollout_weight, rollout_step_weight)
        D = self.state_dim
        self.core = VRNNCore(1, D, self._motion_dim(), z_dim, h_dim, rnn_dim, min_std, max_step, faithful)

    def _targets(self, x_t: Tensor) -> Tensor:
        return x_t[:, None]

    def _cond(self, y: Tensor, y_prev: Tensor) -> Tensor:
        return self._motion(y, y_prev)[:, None]


class VRNNIndep(_VRNNBase):
    """One VRNN per agent, each conditioned on the joint previous state ``x_{t-1}``.

    ``share_weights=False`` (default, as the authors' ``VRNN_INDEP``): A separate weight
    sets. ``share_weights=True``: one set, and a one-hot agent id is appended to the
    conditioning so agents stay distinguishable. ``relative=True`` gives agent i its own
    position and the joint state *relative to it* (``x_{t-1} - x_{t-1}^i`` for every agent, plus
    the displacements when ``velocity_scale`` > 0) instead of the same absolute joint state
    for every agent: interactions (cohesion, separation) are then functions of the inputs
    rather than of their differences. ``interaction`` = w > 0 (needs ``relative``) adds a
    permutation-invariant neighbour summary, ``sum_{j != i} phi(x^j - x^i, v^j - v^i)`` with
    ``phi`` a shared two-layer ReLU MLP of width w (the boids rules are sums of this form).
    ``position_grid`` = k > 0 (needs ``arena``, ``(xmin, xmax, ymin, ymax)`` in model units)
    appends a ``k x k`` Gaussian-bump encoding of the agent's own absolute position
    (:class:`~.common.GridEncoding`): what the arena's walls and its pull back to the centre
    depend on, in a form the per-agent networks learn from the few frames near the border.
    ``faithful`` (see the module doc) fits the decoder mean by least squares; ``rollout_steps`` /
    ``rollout_weight`` / ``rollout_step_weight`` add the multi-step training term (module doc).
    """

    name = "vrnn_indep"

    def __init__(self, n_agents: int, z_dim: int = 4, h_dim: int = 64, rnn_dim: int = 64,
                 share_weights: bool = False, min_std: float = 1e-3, residual: bool = True,
                 x_dim: int = 2, max_step: float | None = None, velocity_scale: float = 0.0,
                 relative: bool = False, interaction: int = 0, position_grid: int = 0,
                 arena: tuple[float, float, float, float] | list[float] | None = None,
                 faithful: bool = False, rollout_steps: int = 0, rollout_weight: float = 1.0,
                 rollout_step_weight: float = 0.0) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim,
                             share_weights=share_weights, min_std=min_std, residual=residual, x_dim=x_dim,
                             max_step=max_step, velocity_scale=velocity_scale, relative=relative,
                             interaction=interaction, position_grid=position_grid,
                             arena=None if arena is None else [float(a) for a in arena], faithful=bool(faithful),
                             rollout_steps=rollout_steps, rollout_weight=rollout_weight,
                             rollout_step_weight=rollout_step_weight)
        self._set_rollout(rollout_steps, rollout_weight, rollout_step_weight)
        if interaction < 0 or (interaction and not relative):
            raise CanocapsInputError(f"interaction must be >= 0 and needs relative=true, got {interaction!r}")
        if position_grid and (position_grid < 2 or x_dim != 2 or arena is None or len(arena) != 4
                              or not (arena[1] > arena[0] and arena[3] > arena[2])):
            raise CanocapsInputError("position_grid must be 0 or >= 2 and needs 2-D positions and "
                                     f"arena=(xmin, xmax, ymin, ymax), got {position_grid!r}, {arena!r}")
        self.grid = GridEncoding(position_grid, arena) if position_grid else None
        self.interaction = interaction
        self.pair = GroupMLP(1, 2 * x_dim, interaction) if interaction else None
        self._set_motion(residual, max_step, velocity_scale)
        self.share_weights = share_weights
        self.relative = relative
        self.groups = n_agents
        self.faithful = bool(faithful)
        self.core = VRNNCore(1 if share_weights else n_agents, x_dim, self._cond_dim(), z_dim, h_dim, rnn_dim,
                             min_std, max_step, self.faithful)

    def _cond_dim(self) -> int:
        return (self._motion_dim() + (self.n_agents if self.share_weights else 0) + (self.x_dim if self.relative else 0)
                + self.interaction + (self.grid.out_features if self.grid is not None else 0))

    def _targets(self, x_t: Tensor) -> Tensor:
        return x_t.reshape(x_t.shape[0], self.n_agents, self.x_dim)

    def _joint(self, y: Tensor, y_prev: Tensor) -> Tensor:
        """Per-agent conditioning ``(B, A, c)`` from the joint frames ``y = x_{t-1}``, ``y_prev = x_{t-2}`` ``(B, D)``."""
        B, A, D = y.shape[0], self.n_agents, y.shape[-1]
        motion = self._motion(y, y_prev)
        c = motion[:, None].expand(B, A, motion.shape[-1])
        if self.relative:  # [own position, every agent's position minus own, displacements]
            own = self._targets(y)  # (B, A, x)
            rel = y[:, None] - own.repeat(1, 1, A)  # (B, A, D)
            c = torch.cat([own, rel, c[..., D:]], -1)
            if self.pair is not None:
                c = torch.cat([c, self._pairs(rel, y - y_prev)], -1)
        if self.grid is not None:  # [..., encoding of the agent's own absolute position]
            c = torch.cat([c, self.grid(self._targets(y))], -1)
        if self.share_weights:
            c = torch.cat([c, torch.eye(A, device=y.device, dtype=y.dtype).expand(B, A, A)], -1)
        return c

    def _pairs(self, rel: Tensor, vel: Tensor) -> Tensor:
        """Neighbour summary ``(B, A, w)`` from relative positions ``rel`` ``(B, A, D)`` and joint
        displacements ``vel`` ``(B, D)``: ``sum_{j != i} phi(rel_ij, scaled (v_j - v_i))``."""
        B, A = rel.shape[0], self.n_agents
        v = self._targets(vel) * (self.velocity_scale or 1.0)  # (B, A, x)
        rel_v = v[:, None] - v[:, :, None]  # (B, i, j, x)
        feats = torch.cat([rel.view(B, A, A, self.x_dim), rel_v], -1).view(B, A * A, 2 * self.x_dim)
        phi = self.pair(feats).view(B, A, A, -1)
        mask = 1.0 - torch.eye(A, device=rel.device, dtype=rel.dtype)[None, :, :, None]
        return (phi * mask).sum(2)

    def _cond(self, y: Tensor, y_prev: Tensor) -> Tensor:
        return self._joint(y, y_prev)


def one_hot(index: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """``(...)`` int64 -> ``(..., num_classes)`` float one-hot."""
    return F.one_hot(index.long(), num_classes).to(dtype)
