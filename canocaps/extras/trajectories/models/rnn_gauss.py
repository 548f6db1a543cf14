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
    """

    name = "rnn_gauss"

    def __init__(self, n_agents: int, rnn_dim: int = 64, h_dim: int = 64, n_layers: int = 1,
                 min_std: float = 1e-3, residual: bool = True, x_dim: int = 2) -> None:
        super().__init__(n_agents, x_dim)
        self._hparams = dict(n_agents=n_agents, rnn_dim=rnn_dim, h_dim=h_dim, n_layers=n_layers,
                             min_std=min_std, residual=residual, x_dim=x_dim)
        self.residual = residual
        self.rnn = nn.GRU(self.state_dim, rnn_dim, n_layers, batch_first=True)
        self.head = GaussianHead(1, rnn_dim, h_dim, self.state_dim, min_std)

    def loss_terms(self, x: Tensor, macro: Tensor | None = None) -> dict[str, Tensor]:
        h, _ = self.rnn(x[:, :-1])  # h[:, t] has read x_0..x_t and predicts x_{t+1}
        mean, std = self.head(h)
        if self.residual:
            mean = mean + x[:, :-1]
        nll = gaussian_nll(x[:, 1:], mean, std).sum((1, 2))
        return {"loss": nll, "nll": nll}

    @torch.no_grad()
    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        out = start_rollout(prefix, self.state_dim, seq_len)
        B, P, D = prefix.shape
        h_seq, h = self.rnn(prefix)
        last = h_seq[:, -1:]
        for t in range(P, seq_len):
            mean, std = self.head(last)
            if self.residual:
                mean = mean + out[:, t - 1:t]
            out[:, t] = sample_gaussian(mean, std, generator)[:, 0]
            last, h = self.rnn(out[:, t:t + 1], h)
        return {"x": out}

