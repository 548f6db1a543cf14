"""Running one training job on the shared trainer: recording, resuming, run folders.

Every experiment run goes through :class:`canocaps.train.Trainer`; this module only adds
a recording callback and the rules for a run folder ``run_dir``:

- ``run_dir/spec.json`` holds the run's settings; the folder follows the one run policy
  (:func:`canocaps.train.runs.prepare_run`, automatic resume): re-running with the same
  settings resumes from ``run_dir/last.pt`` (or just reloads the finished run's records);
  different settings raise :class:`CanocapsInputError` unless ``force`` (then the old
  run's files are removed and the run starts afresh).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from canocaps.train import Callback, TrainConfig, Trainer
from canocaps.train.runs import prepare_run

__all__ = ["Recorder", "fit_run"]

Probe = Callable[[nn.Module], dict[str, float]]


class Recorder(Callback):
    """Keeps training rows every ``every`` steps (and at step 1) with ``probe(module)`` values
    added, and every evaluation. Its state is saved in checkpoints, so resumed runs keep it."""

    def __init__(self, every: int = 10, probe: Probe | None = None, progress: bool = False,
                 total_steps: int | None = None, desc: str = ""):
        self.every, self.probe = max(1, int(every)), probe
        self.progress, self.total_steps, self.desc = progress, total_steps, desc
        self.rows: list[dict[str, float]] = []
        self.evals: list[dict[str, float]] = []
        self.bar = None

    def on_fit_start(self, trainer, module):
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total_steps, initial=trainer.global_step, desc=self.desc, file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def on_fit_end(self, trainer, module):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_step_end(self, trainer, module, outputs):
        if self.bar is not None:
            self.bar.update(1)
            if trainer.global_step % 20 == 0:
                self.bar.set_postfix({k: f"{outputs[k]:.3g}" for k in ("task_loss", "acc") if k in outputs},
                                     refresh=False)
        if trainer.global_step % self.every == 0 or trainer.global_step == 1:
            row = {k: float(v) for k, v in outputs.items()}
            if self.probe is not None:
                with torch.no_grad():
                    row.update(self.probe(module))
            self.rows.append(row)

    def on_eval_end(self, trainer, module, metrics):
        self.evals.append({"step": trainer.global_step, "epoch": trainer.epoch, **metrics})

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "evals": self.evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", []))
        self.evals = list(state.get("evals", []))


def fit_run(module: nn.Module, train_data, config: TrainConfig, val_data=None, run_dir: Path | None = None,
            spec: dict[str, Any] | None = None, force: bool = False, every: int = 10,
            probe: Probe | None = None, progress: bool = False, desc: str = "",
            callbacks: tuple[Callback, ...] = ()) -> Recorder:
    """Train ``module`` with the shared trainer; return the :class:`Recorder`.

    With ``run_dir`` the run checkpoints there and resumes when re-run with the same ``spec``.
    ``progress`` shows one tqdm bar (stderr) over the run's optimizer steps; the trainer's
    own per-epoch bar is switched off so that checkpointed callback states always line up.
    """
    config = config.replace(progress=False)
    try:
        per_epoch = len(train_data) if isinstance(train_data, DataLoader) else math.ceil(len(train_data) / config.batch_size)
        total = config.epochs * per_epoch if config.max_steps is None else min(config.max_steps, config.epochs * per_epoch)
    except TypeError:
        total = config.max_steps
    rec = Recorder(every, probe, progress=progress, total_steps=total, desc=desc)
    resume = False
    if run_dir is not None:
        resume = prepare_run(run_dir, {**(spec or {}), "train": config.to_dict()}, spec_name="spec.json",
                             resume=None, force=force)
    Trainer(config, callbacks=[rec, *callbacks], out_dir=run_dir).fit(module, train_data, val_data, resume=resume)
    return rec
