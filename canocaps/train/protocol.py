"""The trainer's written protocol: what a model must (and may) provide, what callbacks see.

Like Lightning's ``LightningModule`` hooks, but structural: a module is any
``torch.nn.Module`` with the methods below; nothing needs to be subclassed. The
trainer checks them with ``isinstance`` against these ``runtime_checkable`` protocols
(so the optional hooks are found the same way everywhere, and type checkers see the
signatures).

Required
--------
``training_step(batch, step) -> dict[str, Tensor]`` (:class:`TrainModule`)
    One optimisation step's forward pass. ``batch`` is what the loader yields, already
    moved to the trainer's device; ``step`` is ``trainer.global_step`` before the update.
    The dict must hold ``"loss"``, a scalar the trainer back-propagates (it may be a
    surrogate whose gradient is the wanted update); every other entry is logged
    (detached, batch-mean).

Optional
--------
``validation_step(batch) -> dict[str, Tensor | float]`` (:class:`ValidationStep`)
    Metrics of one validation batch, averaged over the loader (weighted by batch size)
    and logged as ``"val/<name>"``. Without it the trainer reports ``training_step``'s
    outputs computed in eval mode under ``torch.no_grad``.
``configure_optimizers(config) -> Optimizer`` (:class:`ConfiguresOptimizers`)
    Without it: :func:`canocaps.train.optim.build_optimizer` from ``config.optimizer``,
    ``lr``, ``momentum``, ``weight_decay`` ...
``transfer_batch(batch, device) -> batch`` (:class:`TransfersBatch`)
    Without it: every tensor in nested dicts / lists / tuples is moved to ``device``.

Callbacks receive the trainer as a :class:`TrainerState` (what they may read).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import torch

__all__ = ["TrainModule", "ValidationStep", "ConfiguresOptimizers", "TransfersBatch", "TrainerState"]


@runtime_checkable
class TrainModule(Protocol):
    """A module the trainer can train: it has ``training_step`` (see module doc)."""

    def training_step(self, batch: Any, step: int) -> Mapping[str, torch.Tensor]:
        """Forward pass of one batch; returns a dict holding the scalar ``"loss"``."""
        ...


@runtime_checkable
class ValidationStep(Protocol):
    """Optional hook: metrics of one validation batch."""

    def validation_step(self, batch: Any) -> Mapping[str, torch.Tensor | float]:
        """Metrics of one validation batch (averaged by the trainer, logged as ``val/<name>``)."""
        ...


@runtime_checkable
class ConfiguresOptimizers(Protocol):
    """Optional hook: the module builds its own optimizer."""

    def configure_optimizers(self, config: Any) -> torch.optim.Optimizer:
        """The optimizer for this module, given the run's :class:`~canocaps.train.TrainConfig`."""
        ...


@runtime_checkable
class TransfersBatch(Protocol):
    """Optional hook: the module moves its batches to the device itself."""

    def transfer_batch(self, batch: Any, device: torch.device) -> Any:
        """``batch`` on ``device``."""
        ...


class TrainerState(Protocol):
    """What callbacks may read from the trainer (:class:`canocaps.train.Trainer` has all of it)."""

    config: Any
    out_dir: Path | None
    device: torch.device
    global_step: int
    epoch: int
    batch_in_epoch: int
    steps_per_epoch: int | None
    best_score: float | None
    history: list[dict[str, float]]
    optimizer: torch.optim.Optimizer | None
    scheduler: Any

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (and when not distributed): the process that writes files."""
        ...
