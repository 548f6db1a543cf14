"""Optimizers and learning-rate schedules built from a :class:`TrainConfig`."""
from __future__ import annotations

from typing import Any, Iterable

import torch

from canocaps.train.config import TrainConfig


def build_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
                    config: TrainConfig) -> torch.optim.Optimizer:
    """torch's own Adam / AdamW / SGD with the config's hyper-parameters (no custom update rules).

    ``params``: parameters, or torch-style parameter groups (dicts with ``"params"`` and
    per-group options such as ``"lr"``). Parameters that do not require gradients are dropped.
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
        params = [g for g in params if g["params"]]
    else:
        params = [p for p in params if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, dampening=config.dampening,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """``MultiStepLR`` over epochs when ``lr_milestones`` is set, else ``None``."""
    if not config.lr_milestones:
        return None
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.lr_milestones, gamma=config.lr_gamma)
