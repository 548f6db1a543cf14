"""The macro-intent model of Zhan et al. (ICLR 2019).

- **Macro-intent policy.** A GRU over the concatenated one-hot intents of all agents
  (``A * M`` inputs, ``macro_rnn_dim`` units) carries the coordination; per agent a head
  ``p(m_t^i | x_t, h^macro)`` (two layers, ``h_dim``; separate weights per agent as in the
  authors' code) predicts agent i's intent among ``M`` classes.
- **Agent VRNNs.** One VRNN per agent (as :class:`~.vrnn.VRNNIndep`) whose prior,
  posterior and decoder are also conditioned on the agent's one-hot intent.

Training uses teacher forcing: the labelled intents (from a labeling function) drive both
the policy GRU and the VRNNs. The loss (nats per sequence) is the **sum**
``CE(policy) + NLL + KL``: policy and VRNNs are trained jointly in one Trainer run, and
since the intents are a deterministic function of the trajectory,
``p(x_{1:} | x_0) >= p(x_{1:}, m(x) | x_0)``: the loss is an upper bound on
``-log p(x_{1:} | x_0)``, comparable with the other models. ``"neg_elbo_given_macro"``
(NLL + KL) is the bound of ``-log p(x | m)`` alone. The authors' script only trains the
policy when ``--pretrain_time`` is set, and it defaults to 0: the published
``MACRO_VRNN`` samples intents from an untrained policy unless the user knew the flag.

Generation: intents are sampled from the policy at every frame (or taken from ``macro``
/ ``fix_macro`` when given), then each agent's VRNN samples its next position.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories.models.base import start_rollout
from canocaps.extras.trajectories.models.common import GroupLinear, GroupMLP
from canocaps.extras.trajectories.models.vrnn import VRNNCore, VRNNIndep, one_hot


class MacroVRNN(VRNNIndep):
    """Macro-intent policy + per-agent intent-conditioned VRNNs; macro ``(B, T, A)`` int64 in ``[0, M)``."""

    name = "macro_vrnn"
    uses_macro = True

    def __init__(self, n_agents: int, n_macro: int, z_dim: int = 4, h_dim: int = 64, rnn_dim: int = 64,
                 macro_rnn_dim: int = 64, share_weights: bool = False, min_std: float = 1e-3,
                 residual: bool = True, x_dim: int = 2, max_step: float | None = None,
                 velocity_scale: float = 0.0, relative: bool = False, interaction: int = 0,
                 position_grid: int = 0, arena: tuple[float, float, float, float] | list[float] | None = None,
                 faithful: bool = False, rollout_steps: int = 0, rollout_weight: float = 1.0,
                 rollout_step_weight: float = 0.0) -> None:
        if n_macro < 1:
            raise CanocapsInputError(f"n_macro must be >= 1, got {n_macro}")
        self.n_macro = n_macro
        super().__init__(n_agents, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim, share_weights=share_weights,
                         min_std=min_std, residual=residual, x_dim=x_dim, max_step=max_step,
                         velocity_scale=velocity_scale, relative=relative, interaction=interaction,
                         position_grid=position_grid, arena=arena, faithful=faithful,
                         rollout_steps=rollout_steps, rollout_weight=rollout_weight,
                         rollout_step_weight=rollout_step_weight)
        self._hparams = dict(n_agents=n_agents, n_macro=n_macro, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim,
                             macro_rnn_dim=macro_rnn_dim, share_weights=share_weights, min_std=min_std,
                             residual=residual, x_dim=x_dim, max_step=max_step, velocity_scale=velocity_scale,
                             relative=relative, interaction=interaction, position_grid=position_grid,
                             arena=None if arena is None else [float(a) for a in arena], faithful=bool(faithful),
                             rollout_steps=rollout_steps, rollout_weight=rollout_weight,
                             rollout_step_weight=rollout_step_weight)
        G = 1 if share_weights else n_agents
        self.core = VRNNCore(G, x_dim, self._cond_dim() + n_macro, z_dim, h_dim, rnn_dim, min_std, max_step,
                             self.faithful)
        self.policy_rnn = nn.GRUCell(n_agents * n_macro, macro_rnn_dim)
        self.policy_body = GroupMLP(G, self._cond_dim() + macro_rnn_dim, h_dim)
        self.policy_out = GroupLinear(G, h_dim, n_macro)
        self.macro_rnn_dim = macro_rnn_dim

    def policy_logits(self, y: Tensor, y_prev: Tensor, h_macro: Tensor) -> Tensor:
        """Intent logits ``(B, A, M)`` from the joint state y ``(B, 2A)`` (and the frame before,
        ``y_prev``, used when ``velocity_scale`` > 0) and the policy state ``(B, R)``."""
        B, A = y.shape[0], self.n_agents
        inp = torch.cat([self._joint(y, y_prev), h_macro[:, None].expand(B, A, h_macro.shape[-1])], -1)
        return self.policy_out(self.policy_body(inp))

    def _intent_cond(self, y: Tensor, y_prev: Tensor, m: Tensor) -> Tensor:
        """Each agent's conditioning ``(B, A, c + M)``: joint motion and its one-hot intent ``m`` ``(B, A)``."""
        return torch.cat([self._joint(y, y_prev), one_hot(m, self.n_macro, y.dtype)], -1)

    def _step_cond(self, y: Tensor, y_prev: Tensor, m: Tensor | None) -> Tensor:
        return self._intent_cond(y, y_prev, m)

    def _advance_policy(self, m: Tensor, h_macro: Tensor) -> Tensor:
        return self.policy_rnn(one_hot(m, self.n_macro, h_macro.dtype).flatten(1), h_macro)

    def check_input(self, x: Tensor, macro: Tensor | None = None) -> None:
        super().check_input(x, macro)
        if macro is not None and macro.numel() and (int(macro.min()) < 0 or int(macro.max()) >= self.n_macro):
            raise CanocapsInputError(f"macro-intents must lie in [0, {self.n_macro}), got "
                                     f"[{int(macro.min())}, {int(macro.max())}]")

    def loss_terms(self, x: Tensor, macro: Tensor | None = None, sampled_kl: bool = False) -> dict[str, Tensor]:
        if macro is None:
            raise CanocapsInputError("macro_vrnn needs macro-intents")
        B = x.shape[0]
        h = self._h0(x)
        hm = x.new_zeros(B, self.macro_rnn_dim)
        nll, kl, ce = x.new_zeros(B), x.new_zeros(B), x.new_zeros(B)
        for t in range(1, x.shape[1]):
            y, yp, m = x[:, t - 1], x[:, max(t - 2, 0)], macro[:, t - 1]
            logits = self.policy_logits(y, yp, hm)
            ce = ce + F.cross_entropy(logits.reshape(-1, self.n_macro), m.reshape(-1).long(),
                                      reduction="none").view(B, -1).sum(1)
            hm = self._advance_policy(m, hm)
            n, k, h = self.core.step(self._targets(x[:, t]), self._intent_cond(y, yp, m), h, self._offset(y),
                                     sampled_kl=sampled_kl)
            nll, kl = nll + n, kl + k
        return {"loss": nll + kl + ce, "nll": nll, "kl": kl, "ce": ce, "neg_elbo_given_macro": nll + kl}

    @torch.no_grad()
    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Roll out; intents for frame t-1 come from ``macro[:, t-1]`` while available (teacher
        forcing), else from ``fix_macro`` (``(B, A)``, ``(A,)`` or a scalar) if given, else
        are sampled from the policy. Returns ``x (B, T, 2A)`` and ``macro (B, T, A)``."""
        out = start_rollout(prefix, self.state_dim, seq_len)
        B, P, D = prefix.shape
        A = self.n_agents
        fixed = None
        if fix_macro is not None:
            fixed = torch.as_tensor(fix_macro, device=prefix.device).long().expand(B, A)
            if int(fixed.min()) < 0 or int(fixed.max()) >= self.n_macro:
                raise CanocapsInputError(f"fix_macro must lie in [0, {self.n_macro})")
        known = 0 if macro is None else macro.shape[1]
        intents = torch.zeros(B, seq_len, A, dtype=torch.long, device=prefix.device)
        h = self._h0(prefix)
        hm = prefix.new_zeros(B, self.macro_rnn_dim)
        for t in range(1, seq_len):
            y, yp = out[:, t - 1], out[:, max(t - 2, 0)]
            if t - 1 < known:
                m = macro[:, t - 1].long()
            elif fixed is not None:
                m = fixed
            else:
                probs = torch.softmax(self.policy_logits(y, yp, hm), -1)
                m = torch.multinomial(probs.reshape(-1, self.n_macro), 1, generator=generator).view(B, A)
            intents[:, t - 1] = m
            hm = self._advance_policy(m, hm)
            cond = self._intent_cond(y, yp, m)
            if t < P:
                h = self.core.observe(self._targets(out[:, t]), cond, h, generator)
            else:
                xt, h = self.core.generate(cond, h, self._offset(y), generator, self.temperature)
                out[:, t] = xt.reshape(B, D)
        intents[:, -1] = intents[:, -2] if seq_len > 1 else intents[:, -1]
        return {"x": out, "macro": intents}
