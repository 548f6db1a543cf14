"""Training configuration shared by every model trained with :class:`canocaps.train.Trainer`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from canocaps._files import read_text
from canocaps._yaml import load_yaml_mapping
from canocaps.errors import CanocapsInputError

OPTIMIZERS = ("adam", "adamw", "sgd")


_NUMBER_TYPES = ("int", "float", "int | None", "float | None")  # field annotations (strings: postponed)


@dataclass
class TrainConfig:
    """Everything the trainer needs to know; model and data settings live elsewhere.

    Learning-rate milestones are in epochs (the paper: 450 epochs, x0.1 at 200 and 400).
    ``max_steps`` (optimizer steps) stops earlier when set. ``ckpt_every_steps = 0``
    checkpoints only at epoch ends. ``monitor`` names a logged metric (``"val/loss"``)
    that decides ``best.pt``; ``None`` keeps only ``last.pt``.
    """

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None
    amp: bool = False
    device: str = "auto"
    seed: int = 0
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = False
    log_every: int = 10
    eval_every_epochs: int = 1
    ckpt_every_steps: int = 0
    monitor: str | None = "val/loss"
    monitor_mode: str = "min"
    progress: bool = True
    tensorboard: bool = False
    max_nonfinite_steps: int = 10

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # YAML gives lists
        self.lr_milestones = [int(m) for m in self.lr_milestones]
        self.validate()

    def validate(self) -> None:
        """Raise :class:`CanocapsInputError` (one line) on an inconsistent setting."""
        def bad(msg: str) -> None:
            raise CanocapsInputError(f"train config: {msg}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in _NUMBER_TYPES and value is not None \
                    and (isinstance(value, bool) or not isinstance(value, (int, float))):
                bad(f"{f.name} must be a number, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.epochs < 1:
            bad(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            bad(f"max_steps must be >= 1 or null, got {self.max_steps}")
        if self.batch_size < 1:
            bad(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            bad(f"lr must be > 0, got {self.lr}")
        if self.monitor_mode not in ("min", "max"):
            bad(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            bad(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.log_every < 1 or self.eval_every_epochs < 1 or self.ckpt_every_steps < 0:
            bad("log_every and eval_every_epochs must be >= 1, ckpt_every_steps >= 0")

    # -- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "TrainConfig":
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CanocapsInputError(f"train config: unknown key(s) {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> "TrainConfig":
        """Read a YAML file (or YAML text). A top-level ``train:`` section is used if present."""
        text = read_text(path_or_text, "config file") if _looks_like_path(path_or_text) else str(path_or_text)
        return cls.from_dict(load_yaml_mapping(text, "train config", section="train"))


def _looks_like_path(value: str | Path) -> bool:
    if isinstance(value, Path):
        return True
    return "\n" not in value and value.endswith((".yaml", ".yml"))
