"""The one trainer shared by every canocaps model (the extras included).

Models plug in through a written protocol (:mod:`canocaps.train.protocol`:
``training_step`` / optional ``validation_step``, ``configure_optimizers``,
``transfer_batch``); behaviour is added through :class:`Callback` objects. See
``docs/CONTRIBUTING.md`` for the contract.
"""
from canocaps.train.callbacks import Callback, CSVLogger, ProgressBar, TensorBoardLogger
from canocaps.train.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, seed_everything
from canocaps.train.config import TrainConfig
from canocaps.train.protocol import ConfiguresOptimizers, TrainerState, TrainModule, TransfersBatch, ValidationStep
from canocaps.train.trainer import EpochSampler, FitResult, Trainer, TrainingDivergedError

__all__ = [
    "Callback", "CSVLogger", "ProgressBar", "TensorBoardLogger",
    "TrainConfig", "Trainer", "FitResult", "EpochSampler", "TrainingDivergedError",
    "TrainModule", "ValidationStep", "ConfiguresOptimizers", "TransfersBatch", "TrainerState",
    "load_checkpoint", "read_checkpoint", "save_checkpoint", "seed_everything",
]
