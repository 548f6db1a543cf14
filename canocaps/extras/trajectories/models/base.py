"""What every trajectory model shares: the trainer protocol and the sampling signature.

Batches (see :mod:`canocaps.extras.trajectories.datasets`) are dicts with
``"x"`` ``(B, T, 2A)`` float positions (normalised units), optionally ``"macro"``
``(B, T, A)`` int64 macro-intents and ``"label"`` ``(B,)``.

**What the loss is.** Every model scores the same quantity, the sequence given its
first frame: ``-log p(x_1..x_{T-1} | x_0)`` (an upper bound, i.e. the negative ELBO,
for the latent-variable models), summed over frames, agents and coordinates, averaged
over the sequences of the batch: nats *per sequence*. ``training_step`` returns it
as ``"loss"``; ``validation_step`` returns the same ``"loss"`` and ``"elbo" = -loss``,
so the trainer's ``monitor="val/loss"`` selects the best model on the validation split.
(The authors' RNN-Gauss also scores x_0 and the VRNNs do not; conditioning everybody
on x_0 keeps the numbers comparable. The boids start layout is fixed, so scoring x_0
would only reward a collapsing variance.)
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from canocaps.errors import CanocapsInputError


class TrajectoryModel(nn.Module):
    """Base class: subclasses implement :meth:`loss_terms` and :meth:`sample`."""

    name: str = "base"
    uses_macro: bool = False
    has_latent: bool = True  # False: loss_terms is the exact negative log-likelihood
    temperature: float = 1.0  # sampling: every Gaussian std is multiplied by it (1 = the model itself)

    def set_temperature(self, temperature: float) -> "TrajectoryModel":
        """Scale the standard deviations used by :meth:`sample` (not the likelihood); 0 = means."""
        if not temperature >= 0:
            raise CanocapsInputError(f"the sampling temperature must be >= 0, got {temperature!r}")
        self.temperature = float(temperature)
        return self

    def __init__(self, n_agents: int, x_dim: int = 2) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.x_dim = x_dim

    @property
    def state_dim(self) -> int:
        return self.n_agents * self.x_dim

    def _set_motion(self, residual: bool, max_step: float | None, velocity_scale: float) -> None:
        """Store and check the step parameterisation shared by all models (see :mod:`.vrnn`)."""
        if max_step is not None and (not residual or not max_step > 0):
            raise CanocapsInputError(f"max_step must be > 0 and needs residual=true, got {max_step!r}")
        if not velocity_scale >= 0:
            raise CanocapsInputError(f"velocity_scale must be >= 0, got {velocity_scale!r}")
        self.residual, self.max_step, self.velocity_scale = residual, max_step, float(velocity_scale)

    # --- to implement ------------------------------------------------------------------
    def loss_terms(self, x: Tensor, macro: Tensor | None = None, sampled_kl: bool = False) -> dict[str, Tensor]:
        """Per-sequence terms, each ``(B,)`` in nats; must contain ``"loss"``.

        ``sampled_kl=True`` (latent models): ``"loss"`` is ``-log w`` of one importance
        sample (the KL replaced by ``log q(z) - log p(z)`` at the sampled z)."""
        raise NotImplementedError

    def iw_bound(self, x: Tensor, macro: Tensor | None = None, k: int = 1) -> Tensor:
        """Importance-weighted bound (Burda et al. 2016) on ``-log p(x_1.. | x_0)``, ``(B,)`` nats:
        ``-log (1/k) sum_i w_i`` with ``k`` posterior samples per sequence. ``k = 1`` is an unbiased
        estimate of the ELBO; the bound tightens (decreases in expectation) as ``k`` grows.
        Models without latents return their exact negative log-likelihood."""
        if k < 1:
            raise CanocapsInputError(f"the number of importance samples must be >= 1, got {k}")
        if not self.has_latent:
            return self.loss_terms(x, macro)["loss"]
        B = x.shape[0]
        xs = x.repeat(k, *([1] * (x.ndim - 1)))
        ms = None if macro is None else macro.repeat(k, *([1] * (macro.ndim - 1)))
        neg_logw = self.loss_terms(xs, ms, sampled_kl=True)["loss"].view(k, B)
        return -(torch.logsumexp(-neg_logw.double(), 0) - math.log(k)).to(x.dtype)

    def sample(self, prefix: Tensor, seq_len: int, macro: Tensor | None = None,
               fix_macro: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Roll out ``seq_len`` frames given the first ``prefix.shape[1]`` (>= 1) true frames.

        Returns ``{"x": (B, seq_len, 2A)}`` (the prefix copied in), plus ``"macro"``
        ``(B, seq_len, A)`` for models with macro-intents.
        """
        raise NotImplementedError

    # --- trainer protocol ----------------------------------------------------------------
    def _unpack(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        if isinstance(batch, dict):
            x, macro = batch["x"], batch.get("macro")
        else:
            x, macro = batch, None
        self.check_input(x, macro)
        return x, macro

    def check_input(self, x: Tensor, macro: Tensor | None = None) -> None:
        if x.ndim != 3 or x.shape[-1] != self.state_dim or x.shape[1] < 2:
            raise CanocapsInputError(f"trajectories must be (B, T>=2, {self.state_dim}), got {tuple(x.shape)}")
        if self.uses_macro:
            if macro is None:
                raise CanocapsInputError(f"{self.name} needs macro-intents (run the 'label' step)")
            if macro.shape != (*x.shape[:2], self.n_agents):
                raise CanocapsInputError(f"macro-intents must be {(*x.shape[:2], self.n_agents)}, got {tuple(macro.shape)}")

    def _reduce(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.mean() for k, v in terms.items()}

    def training_terms(self, x: Tensor, macro: Tensor | None = None) -> dict[str, Tensor]:
        """What training minimises: :meth:`loss_terms`, unless a model adds terms beside the
        bound (then the unchanged bound is under ``"bound"``)."""
        return self.loss_terms(x, macro)

    def training_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        x, macro = self._unpack(batch)
        return self._reduce(self.training_terms(x, macro))

    def validation_step(self, batch: Any) -> dict[str, Tensor]:
        """The bound as ``"loss"`` (what selects ``best.pt``); any training-only terms beside it."""
        x, macro = self._unpack(batch)
        with torch.no_grad():
            out = self._reduce(self.training_terms(x, macro))
        if "bound" in out:
            out["loss"] = out.pop("bound")
        out["elbo"] = -out["loss"]
        return out

    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (saved beside checkpoints to rebuild the model)."""
        return dict(self._hparams)


def start_rollout(prefix: Tensor, state_dim: int, seq_len: int) -> Tensor:
    """Validate ``prefix`` ``(B, P, state_dim)`` and return the rollout buffer ``(B, seq_len,
    state_dim)`` with the prefix copied into its first ``P`` frames (the rest zeros)."""
    check_prefix(prefix, state_dim, seq_len)
    out = prefix.new_zeros(prefix.shape[0], seq_len, prefix.shape[2])
    out[:, :prefix.shape[1]] = prefix
    return out


def check_prefix(prefix: Tensor, state_dim: int, seq_len: int) -> None:
    """Raise :class:`CanocapsInputError` unless ``prefix`` is ``(B, P, state_dim)`` with ``1 <= P <= seq_len``."""
    if prefix.ndim != 3 or prefix.shape[-1] != state_dim or prefix.shape[1] < 1:
        raise CanocapsInputError(f"prefix must be (B, P>=1, {state_dim}), got {tuple(prefix.shape)}")
    if seq_len < prefix.shape[1]:
        raise CanocapsInputError(f"seq_len ({seq_len}) is shorter than the prefix ({prefix.shape[1]} frames)")
