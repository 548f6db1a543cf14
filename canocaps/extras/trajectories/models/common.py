"""Gaussian helpers and agent-grouped layers shared by the trajectory models.

Conventions: diagonal Gaussians parameterised by ``(mean, std)`` with ``std > 0``;
the helpers return *elementwise* values (nats) so callers choose what to sum.
"Grouped" layers hold ``G`` independent weight sets and map ``(B, G, in) -> (B, G, out)``;
``G = 1`` shares one weight set across whatever group axis the input has
(:class:`canocaps.nn.GroupedLinear`, weight ``(G, out, in)``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from canocaps.nn import GroupedLinear

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise negative log density of ``x`` under N(mean, std^2), in nats."""
    return 0.5 * (((x - mean) / std) ** 2 + LOG_2PI) + torch.log(std)


def faithful_gaussian_nll(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """:func:`gaussian_nll` in value, with the gradient of *faithful* heteroscedastic regression
    (Stirn et al., AISTATS 2023): the mean is fitted by least squares,
    ``0.5 |x - mean|^2 / v`` with ``v`` the batch mean of ``std^2`` (a constant: every point weighs
    the same, at the NLL's overall scale), and the std by the NLL at the detached mean.

    Why: under the plain Gaussian NLL the mean's gradient is ``(mean - x) / std^2``, so points
    the model already predicts well (small std) dominate and a rule that holds on few points can
    be left to a larger std instead of being learned (the boids' unfriendly repulsion, see
    docs/extras_trajectories.md). The value is unchanged, so losses and bounds stay the ELBO's.
    Pair it with :class:`GaussianHead` ``(separate_std=True)`` so the std does not shape the
    features the mean is computed from. Elementwise, nats."""
    surrogate = 0.5 * (x - mean) ** 2 / (std.detach() ** 2).mean() + gaussian_nll(x, mean.detach(), std)
    return gaussian_nll(x, mean, std).detach() + surrogate - surrogate.detach()


def gaussian_nll_reference(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """The same through ``torch.distributions`` (reference for tests)."""
    return -torch.distributions.Normal(mean, std).log_prob(x)


def gaussian_kl(mean_q: Tensor, std_q: Tensor, mean_p: Tensor, std_p: Tensor) -> Tensor:
    """Elementwise KL( N(mean_q, std_q^2) || N(mean_p, std_p^2) ), in nats."""
    var_ratio = (std_q / std_p) ** 2
    return 0.5 * (var_ratio + ((mean_q - mean_p) / std_p) ** 2 - 1.0 - torch.log(var_ratio))


def sample_gaussian(mean: Tensor, std: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Reparameterised sample ``mean + std * eps``; ``generator`` makes it reproducible."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * eps


def positive_std(raw: Tensor, min_std: float) -> Tensor:
    """Softplus standard deviation with a floor (keeps NLLs finite on near-deterministic data)."""
    return F.softplus(raw) + min_std


def GroupLinear(groups: int, in_features: int, out_features: int) -> GroupedLinear:
    """``G`` independent affine maps ``(B, G', in) -> (B, G', out)`` (``G' = G``, or ``G = 1`` shared).

    The package's one grouped linear layer (:class:`canocaps.nn.GroupedLinear`), channels last.
    """
    return GroupedLinear(groups, in_features, out_features, channels_first=False)


class GroupMLP(nn.Module):
    """Two grouped ReLU layers (the VRNN feature extractors of the paper's code)."""

    def __init__(self, groups: int, in_features: int, hidden: int) -> None:
        super().__init__()
        self.l1 = GroupLinear(groups, in_features, hidden)
        self.l2 = GroupLinear(groups, hidden, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.l2(F.relu(self.l1(x))))


class GaussianHead(nn.Module):
    """Grouped MLP -> (mean, std) of a diagonal Gaussian.

    ``separate_std=True``: the std comes from its own MLP, which reads the input *detached*:
    the std's gradient then shapes neither the mean's features nor whatever computed the
    input (see :func:`faithful_gaussian_nll`). (Its own MLP rather than a linear layer on the
    mean's detached features: with that, the std of the boids models shrank far too slowly;
    docs/extras_trajectories.md.)"""

    def __init__(self, groups: int, in_features: int, hidden: int, out_features: int, min_std: float,
                 separate_std: bool = False) -> None:
        super().__init__()
        self.body = GroupMLP(groups, in_features, hidden)
        self.mean = GroupLinear(groups, hidden, out_features)
        self.std_body = GroupMLP(groups, in_features, hidden) if separate_std else None
        self.std = GroupLinear(groups, hidden, out_features)
        self.min_std = min_std

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        hs = h if self.std_body is None else self.std_body(x.detach())
        return self.mean(h), positive_std(self.std(hs), self.min_std)

    def mean_only(self, x: Tensor) -> Tensor:
        """The mean of :meth:`forward` alone (what a deterministic unroll needs)."""
        return self.mean(self.body(x))


class GroupGRUCell(nn.Module):
    """A GRU cell with ``G`` independent weight sets: x ``(B, G', in)``, h ``(B, G', hidden)``.

    Same equations as :class:`torch.nn.GRUCell` (r, z, n gates; ``h' = (1 - z) n + z h``).
    """

    def __init__(self, groups: int, in_features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = GroupLinear(groups, in_features, 3 * hidden)
        self.hh = GroupLinear(groups, hidden, 3 * hidden)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        gi, gh = self.ih(x), self.hh(h)
        ir, iz, inn = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        return (1.0 - z) * n + z * h


class GridEncoding(nn.Module):
    """Absolute position -> ``k x k`` Gaussian bumps on a grid over the arena: ``(..., 2)`` -> ``(..., k*k)``.

    Centres ``c_ab`` at ``k`` evenly spaced values along each axis of ``arena = (xmin, xmax,
    ymin, ymax)`` (model units, edges included), width ``sigma`` = half the spacing per axis;
    feature ``ab = exp(-|((p - c_ab) / sigma)|^2 / 2)`` (index ``a * k + b``, a along x).
    A position-dependent force (the boids' pull back to the origin beyond a radius, walls of
    a court) is then nearly *linear* in the features, so a per-agent network learns it from
    the few frames that reach the border instead of carving it out of raw coordinates.
    """

    def __init__(self, k: int, arena: tuple[float, float, float, float] | list[float]) -> None:
        super().__init__()
        if k < 2 or len(arena) != 4 or not (arena[1] > arena[0] and arena[3] > arena[2]):
            raise ValueError(f"GridEncoding needs k >= 2 and arena (xmin, xmax, ymin, ymax), got {k}, {arena!r}")
        self.k = k
        gx = torch.linspace(float(arena[0]), float(arena[1]), k)
        gy = torch.linspace(float(arena[2]), float(arena[3]), k)
        centres = torch.stack(torch.meshgrid(gx, gy, indexing="ij"), -1).reshape(k * k, 2)
        sigma = torch.tensor([(gx[1] - gx[0]) / 2, (gy[1] - gy[0]) / 2])
        self.register_buffer("centres", centres, persistent=False)
        self.register_buffer("sigma", sigma, persistent=False)

    @property
    def out_features(self) -> int:
        return self.k * self.k

    def forward(self, p: Tensor) -> Tensor:
        d = (p[..., None, :] - self.centres.to(p.dtype)) / self.sigma.to(p.dtype)  # (..., k*k, 2)
        return torch.exp(-0.5 * (d ** 2).sum(-1))
