"""RNN-Gauss: a GRU over the joint state with a diagonal Gaussian output (no latent)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from canocaps.extras.trajectories.models.base import TrajectoryModel, start_rollout
from canocaps.extras.trajectories.models.common import GaussianHead, gaussian_nll, sample_gaussian


class RNNGauss(TrajectoryModel):
    """``p(x_t | x_<t) = N(mu(h_t), sigma(h_t))`` with ``h_t = GRU(x_{t-1}, h_{t-1})``.

    Exact log-likelihood (no ELBO). Joint state ``(B, T, 2A)``; ``rnn_dim`` GRU units
    (``n_layers`` layers), output MLP of width ``h_dim``. ``residual=True`` predicts the
    mean as ``x_{t-1} + mu(h_t)`` (a displacement); ``False`` is the authors' absolute mean.
    ``max_step`` bounds the displacement (``max_step * tanh``), ``velocity_scale`` > 0 feeds the
    GRU the scaled displacement beside the position (as the VRNNs, :mod:`.vrnn`).
    """

    name = "rnn_gauss"
    has_latent = False

    def __init__(self, n_agents: int, rnn_dim: int = 64, h_dim: int = 64, n_layers: int = 1,
                 min_std: float = 1e-3, residual: bool = True, x_dim: int = 2, max_step: float | None = None,
                 velocity_scale: float = 0.0) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, rnn_dim=rnn_dim, h_dim=h_dim, n_layers=n_layers,
                             min_std=min_std, residual=residual, x_dim=x_dim, max_step=max_step,
                             velocity_scale=velocity_scale)
        self._set_motion(residual, max_step, velocity_scale)
        in_dim = self.state_dim * (2 if self.velocity_scale else 1)
        self.rnn = nn.GRU(in_dim, rnn_dim, n_layers, batch_first=True)
        self.head = GaussianHead(1, rnn_dim, h_dim, self.state_dim, min_std)

    def _inputs(self, x: Tensor, before: Tensor) -> Tensor:
        """GRU inputs for frames ``x`` ``(B, L, D)`` whose previous frames are ``before`` ``(B, L, D)``."""
        return torch.cat([x, self.velocity_scale * (x - before)], -1) if self.velocity_scale else x

    def _mean(self, raw: Tensor, prev: Tensor) -> Tensor:
        if not self.residual:
            return raw
        return prev + (raw if self.max_step is None else self.max_step * torch.tanh(raw))

    def loss_terms(self, x: Tensor, macro: Tensor | None = None, sampled_kl: bool = False) -> dict[str, Tensor]:
        before = torch.cat([x[:, :1], x[:, :-2]], 1)  # x_{t-1} for t = 0..T-2 (x_0 for t = 0)
        h, _ = self.rnn(self._inputs(x[:, :-1], before))  # h[:, t] has read x_0..x_t and predicts x_{t+1}
        mean, std = self.head(h)
        nll = gaussian_nll(x[:, 1:], self._mean(mean, x[:, :-1]), std).sum((1, 2))
        return {"loss": nll, "nll": nll}

    @torch.no_grad()
    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        out = start_rollout(prefix, self.state_dim, seq_len)
        B, P, D = prefix.shape
        before = torch.cat([prefix[:, :1], prefix[:, :-1]], 1)
        h_seq, h = self.rnn(self._inputs(prefix, before))
        last = h_seq[:, -1:]
        for t in range(P, seq_len):
            mean, std = self.head(last)
            out[:, t] = sample_gaussian(self._mean(mean, out[:, t - 1:t]), self.temperature * std, generator)[:, 0]
            last, h = self.rnn(self._inputs(out[:, t:t + 1], out[:, t - 1:t]), h)
        return {"x": out}

