"""Optimizers and learning-rate schedules built from a :class:`TrainConfig`."""
from __future__ import annotations

from typing import Iterable

import torch

from canocaps.train.config import TrainConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """torch's own Adam / AdamW / SGD with the config's hyper-parameters (no custom update rules)."""
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
