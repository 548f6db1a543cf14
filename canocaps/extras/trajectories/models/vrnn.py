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
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from canocaps.extras.trajectories.models.base import TrajectoryModel, start_rollout
from canocaps.extras.trajectories.models.common import (
    GaussianHead,
    GroupGRUCell,
    gaussian_kl,
    gaussian_nll,
    sample_gaussian,
)


class VRNNCore(nn.Module):
    """``groups`` VRNNs stepped in parallel: tensors are ``(B, G, .)``; ``groups=1`` shares weights."""

    def __init__(self, groups: int, x_dim: int, cond_dim: int, z_dim: int, h_dim: int, rnn_dim: int,
                 min_std: float) -> None:
        super().__init__()
        self.rnn_dim = rnn_dim
        self.enc = GaussianHead(groups, x_dim + cond_dim + rnn_dim, h_dim, z_dim, min_std)
        self.prior = GaussianHead(groups, cond_dim + rnn_dim, h_dim, z_dim, min_std)
        self.dec = GaussianHead(groups, cond_dim + z_dim + rnn_dim, h_dim, x_dim, min_std)
        self.rnn = GroupGRUCell(groups, x_dim + z_dim, rnn_dim)

    def step(self, x: Tensor, cond: Tensor, h: Tensor, offset: Tensor | float = 0.0,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced step: x ``(B, G, x_dim)`` -> (nll ``(B,)``, kl ``(B,)``, new h).

        ``offset`` ``(B, G, x_dim)`` is added to the decoder mean (residual parameterisation)."""
        qm, qs = self.enc(torch.cat([x, cond, h], -1))
        pm, ps = self.prior(torch.cat([cond, h], -1))
        z = sample_gaussian(qm, qs, generator)
        dm, ds = self.dec(torch.cat([cond, z, h], -1))
        nll = gaussian_nll(x, dm + offset, ds).sum((1, 2))
        kl = gaussian_kl(qm, qs, pm, ps).sum((1, 2))
        return nll, kl, self.rnn(torch.cat([x, z], -1), h)

    def generate(self, cond: Tensor, h: Tensor, offset: Tensor | float = 0.0,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Sampling step: z from the prior, x from the decoder -> (x ``(B, G, x_dim)``, new h)."""
        pm, ps = self.prior(torch.cat([cond, h], -1))
        z = sample_gaussian(pm, ps, generator)
        dm, ds = self.dec(torch.cat([cond, z, h], -1))
        x = sample_gaussian(dm + offset, ds, generator)
        return x, self.rnn(torch.cat([x, z], -1), h)

    def observe(self, x: Tensor, cond: Tensor, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Burn-in step on a known frame: z from the posterior, returns the new h."""
        qm, qs = self.enc(torch.cat([x, cond, h], -1))
        z = sample_gaussian(qm, qs, generator)
        return self.rnn(torch.cat([x, z], -1), h)


class _VRNNBase(TrajectoryModel):
    """Loop shared by the VRNNs: subclasses define groups, how x splits and the conditioning."""

    groups: int

    def _targets(self, x_t: Tensor) -> Tensor:  # (B, D) -> (B, G, x)
        raise NotImplementedError

    def _cond(self, y: Tensor, macro_t: Tensor | None) -> Tensor:  # (B, D) -> (B, G, c)
        raise NotImplementedError

    def _offset(self, y: Tensor) -> Tensor | float:
        return self._targets(y) if self.residual else 0.0

    def _h0(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.groups, self.core.rnn_dim)

    def loss_terms(self, x: Tensor, macro: Tensor | None = None) -> dict[str, Tensor]:
        h = self._h0(x)
        nll = x.new_zeros(x.shape[0])
        kl = x.new_zeros(x.shape[0])
        for t in range(1, x.shape[1]):
            cond = self._cond(x[:, t - 1], None if macro is None else macro[:, t - 1])
            n, k, h = self.core.step(self._targets(x[:, t]), cond, h, self._offset(x[:, t - 1]))
            nll, kl = nll + n, kl + k
        return {"loss": nll + kl, "nll": nll, "kl": kl}

    @torch.no_grad()
    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        out = start_rollout(prefix, self.state_dim, seq_len)
        B, P, D = prefix.shape
        h = self._h0(prefix)
        for t in range(1, seq_len):
            cond = self._cond(out[:, t - 1], None)
            if t < P:
                h = self.core.observe(self._targets(out[:, t]), cond, h, generator)
            else:
                xt, h = self.core.generate(cond, h, self._offset(out[:, t - 1]), generator)
                out[:, t] = xt.reshape(B, D)
        return {"x": out}


class VRNNSingle(_VRNNBase):
    """One VRNN over the joint state ``(B, T, 2A)`` (latent ``z_dim`` for all agents together)."""

    name = "vrnn_single"
    groups = 1

    def __init__(self, n_agents: int, z_dim: int = 8, h_dim: int = 64, rnn_dim: int = 64,
                 min_std: float = 1e-3, residual: bool = True, x_dim: int = 2) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim, min_std=min_std,
                             residual=residual, x_dim=x_dim)
        self.residual = residual
        D = self.state_dim
        self.core = VRNNCore(1, D, D, z_dim, h_dim, rnn_dim, min_std)

    def _targets(self, x_t: Tensor) -> Tensor:
        return x_t[:, None]

    def _cond(self, y: Tensor, macro_t: Tensor | None) -> Tensor:
        return y[:, None]


class VRNNIndep(_VRNNBase):
    """One VRNN per agent, each conditioned on the joint previous state ``x_{t-1}``.

    ``share_weights=False`` (default, as the authors' ``VRNN_INDEP``): A separate weight
    sets. ``share_weights=True``: one set, and a one-hot agent id is appended to the
    conditioning so agents stay distinguishable.
    """

    name = "vrnn_indep"

    def __init__(self, n_agents: int, z_dim: int = 4, h_dim: int = 64, rnn_dim: int = 64,
                 share_weights: bool = False, min_std: float = 1e-3, residual: bool = True,
                 x_dim: int = 2) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, z_dim=z_dim, h_dim=h_dim, rnn_dim=rnn_dim,
                             share_weights=share_weights, min_std=min_std, residual=residual, x_dim=x_dim)
        self.residual = residual
        self.share_weights = share_weights
        self.groups = n_agents
        self.core = VRNNCore(1 if share_weights else n_agents, x_dim, self._cond_dim(), z_dim, h_dim, rnn_dim,
                             min_std)

    def _cond_dim(self) -> int:
        return self.state_dim + (self.n_agents if self.share_weights else 0)

    def _targets(self, x_t: Tensor) -> Tensor:
        return x_t.reshape(x_t.shape[0], self.n_agents, self.x_dim)

    def _joint(self, y: Tensor) -> Tensor:
        B, A = y.shape[0], self.n_agents
        c = y[:, None].expand(B, A, y.shape[-1])
        if self.share_weights:
            c = torch.cat([c, torch.eye(A, device=y.device, dtype=y.dtype).expand(B, A, A)], -1)
        return c

    def _cond(self, y: Tensor, macro_t: Tensor | None) -> Tensor:
        return self._joint(y)


def one_hot(index: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """``(...)`` int64 -> ``(..., num_classes)`` float one-hot."""
    return F.one_hot(index.long(), num_classes).to(dtype)
