"""Callbacks: how behaviour is added to the one training loop.

Subclass :class:`Callback` and override the hooks you need. Hooks run on every rank
under ``torchrun``; use ``trainer.is_main_process`` to write files only once.

Order of hooks in one optimizer step::

    on_step_start(trainer, module, batch)
    # forward, backward (gradients now in p.grad; unscaled under AMP; clipped if configured)
    on_before_optimizer_step(trainer, module)
    # optimizer.step(); trainer.global_step += 1
    on_step_end(trainer, module, outputs)     # outputs: dict of floats, parameters updated
"""
from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Any, Iterable

import torch

from canocaps._files import atomic_write_text
from canocaps.train.protocol import TrainerState as Trainer  # what a callback may read of the trainer


class Callback:
    """Base class: every hook is a no-op. ``state_dict`` is stored in checkpoints."""

    def on_fit_start(self, trainer: "Trainer", module: torch.nn.Module) -> None: ...
    def on_step_start(self, trainer: "Trainer", module: torch.nn.Module, batch: Any) -> None: ...
    def on_before_optimizer_step(self, trainer: "Trainer", module: torch.nn.Module) -> None: ...
    def on_step_end(self, trainer: "Trainer", module: torch.nn.Module, outputs: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", module: torch.nn.Module) -> None: ...
    def on_eval_end(self, trainer: "Trainer", module: torch.nn.Module, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, trainer: "Trainer", path: Path) -> None: ...
    def on_fit_end(self, trainer: "Trainer", module: torch.nn.Module) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class CallbackList:
    """Calls one hook on every callback, in order."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any, **kwargs: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)

        return call

    def state_dicts(self) -> list[dict[str, Any]]:
        """Each callback's state, tagged with its class name (and occurrence)."""
        return [{"name": name, "state": cb.state_dict()} for name, cb in self._named()]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Give each saved state back to the callback of the same class (and occurrence),
        so adding or removing a callback (e.g. the progress bar) between runs is safe."""
        by_name = {s["name"]: s["state"] for s in states if isinstance(s, dict) and "name" in s}
        for name, cb in self._named():
            if name in by_name:
                cb.load_state_dict(by_name[name])

    def _named(self) -> list[tuple[str, Callback]]:
        seen: dict[str, int] = {}
        out = []
        for cb in self.callbacks:
            base = type(cb).__qualname__
            seen[base] = seen.get(base, 0) + 1
            out.append((f"{base}#{seen[base]}", cb))
        return out


class CSVLogger(Callback):
    """Writes every logged row (training rows every ``log_every`` steps, validation rows)
    to ``out_dir/metrics.csv``. Columns are the union of all keys seen; the file is
    rewritten atomically at epoch ends, evaluations and checkpoints, so a crash never
    leaves a torn file. On resume, rows after the checkpoint's step are dropped.
    """

    filename = "metrics.csv"

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_step_end(self, trainer, module, outputs):
        if trainer.global_step % trainer.config.log_every == 0:
            self.rows.append(dict(outputs))

    def on_eval_end(self, trainer, module, metrics):
        self.rows.append({"step": trainer.global_step, "epoch": trainer.epoch, **metrics})
        self._flush(trainer)

    def on_epoch_end(self, trainer, module):
        self._flush(trainer)

    def on_checkpoint(self, trainer, path):
        self._flush(trainer)

    def on_fit_end(self, trainer, module):
        self._flush(trainer)

    def _flush(self, trainer: "Trainer") -> None:
        if trainer.out_dir is None or not trainer.is_main_process or not self.rows:
            return
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(trainer.out_dir / self.filename, buf.getvalue(), force=True)

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = list(state.get("rows", []))


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr with the latest losses."""

    def __init__(self, keys: int = 4) -> None:
        self.keys = keys
        self.bar = None

    def _new_bar(self, trainer: "Trainer") -> None:
        from tqdm.auto import tqdm

        total, epochs = self.extent(trainer)
        desc = f"epoch {trainer.epoch + 1}/{epochs}"
        if trainer.config.max_steps is not None:
            desc += f" (ends at step {trainer.config.max_steps})"
        self.bar = tqdm(total=total, initial=min(trainer.batch_in_epoch, total or 0), file=sys.stderr,
                        desc=desc, leave=False, dynamic_ncols=True, disable=not trainer.is_main_process)

    @staticmethod
    def extent(trainer: "Trainer") -> tuple[int | None, int]:
        """(steps this epoch's bar counts to, the last epoch) -- ``max_steps`` may end both early."""
        total, epochs = trainer.steps_per_epoch, int(trainer.config.epochs)
        max_steps = trainer.config.max_steps
        if max_steps is None:
            return total, epochs
        left = max(int(max_steps) - int(trainer.global_step), 0)  # optimiser steps still to run
        if not total:
            return trainer.batch_in_epoch + left, epochs
        end = trainer.batch_in_epoch + left  # counted from this epoch's start
        return min(total, end), min(epochs, trainer.epoch + max(1, -(-end // total)))

    def on_fit_start(self, trainer, module):
        self._new_bar(trainer)

    def on_step_end(self, trainer, module, outputs):
        if self.bar is None:
            self._new_bar(trainer)
        self.bar.update(1)
        shown = {k: v for k, v in outputs.items() if k not in ("step", "epoch", "lr")}
        shown = dict(list(shown.items())[: self.keys])
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)

    def on_epoch_end(self, trainer, module):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_eval_end(self, trainer, module, metrics):
        if trainer.is_main_process:
            text = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            print(f"[epoch {trainer.epoch + 1}] {text}", file=sys.stderr)

    def on_fit_end(self, trainer, module):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TensorBoardLogger(Callback):
    """Scalars to ``out_dir/tb`` (needs the ``tensorboard`` package)."""

    def __init__(self) -> None:
        self.writer = None

    def on_fit_start(self, trainer, module):
        if trainer.out_dir is None or not trainer.is_main_process:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(trainer.out_dir / "tb"))

    def _write(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def on_step_end(self, trainer, module, outputs):
        if trainer.global_step % trainer.config.log_every == 0:
            self._write(trainer.global_step, outputs)

    def on_eval_end(self, trainer, module, metrics):
        self._write(trainer.global_step, metrics)

    def on_fit_end(self, trainer, module):
        if self.writer is not None:
            self.writer.close()
