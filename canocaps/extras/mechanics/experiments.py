"""One experiment: detect a model's symmetries, train it with the shared Trainer and the
:class:`~canocaps.extras.mechanics.callbacks.MechanicsCallback`, write JSON and plots.

Outputs in ``out_dir``: ``mechanics.json`` (config, symmetry report, per-group error
summary, per-step series for the first few slots of each group), ``mechanics.png``
(measured vs predicted, one panel per symmetry kind), and the trainer's own files under
``out_dir/train`` (``last.pt`` for ``resume``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from canocaps._files import atomic_write_text
from canocaps._files import check_outputs as _check_outputs
from canocaps.train.runs import prepare_run
from canocaps.errors import CanocapsInputError
from canocaps.extras.mechanics.callbacks import SERIES, MechanicsCallback
from canocaps.extras.digits import load_digits
from canocaps.extras.mechanics.models import IMAGE_SIZE, MODEL_KINDS, Classifier, build_model, example_input
from canocaps.extras.mechanics.symmetry import SymmetryReport, detect_symmetries
from canocaps.train import Trainer, TrainConfig

__all__ = ["ExperimentConfig", "run_experiment", "run_with_model", "series_payload", "check_outputs"]

JSON_NAME, PLOT_NAME = "mechanics.json", "mechanics.png"


@dataclass
class ExperimentConfig:
    """Hyper-parameters of one run (``lr_milestones`` in epochs, as in :class:`TrainConfig`)."""

    model: str = "mlp"
    steps: int = 200
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    hidden: int | None = None
    bn_eps: float = 1e-5
    dtype: str = "float64"
    seed: int = 0
    slots_saved: int = 4

    def validate(self) -> None:
        if self.model not in MODEL_KINDS:
            raise CanocapsInputError(f"unknown model {self.model!r} (choose from {', '.join(MODEL_KINDS)})")
        if self.steps < 1:
            raise CanocapsInputError(f"steps must be >= 1, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise CanocapsInputError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise CanocapsInputError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.dampening <= 1:
            raise CanocapsInputError(f"dampening must be in [0, 1], got {self.dampening}")
        if self.weight_decay < 0:
            raise CanocapsInputError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.dtype not in ("float64", "float32"):
            raise CanocapsInputError(f"dtype must be float64 or float32, got {self.dtype!r}")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise CanocapsInputError("nesterov needs momentum > 0 and dampening 0 (torch SGD rule)")

    def train_config(self, progress: bool, dataset_size: int) -> TrainConfig:
        per_epoch = max(1, math.ceil(dataset_size / self.batch_size))
        return TrainConfig(optimizer="sgd", lr=self.lr, momentum=self.momentum, dampening=self.dampening,
                           nesterov=self.nesterov, weight_decay=self.weight_decay,
                           lr_milestones=list(self.lr_milestones), lr_gamma=self.lr_gamma,
                           batch_size=self.batch_size, max_steps=self.steps,
                           epochs=math.ceil(self.steps / per_epoch), seed=self.seed,
                           device="cpu", monitor=None, progress=progress, log_every=10,
                           ckpt_every_steps=max(1, min(self.steps, 100)), eval_every_epochs=10 ** 6)


def series_payload(cb: MechanicsCallback, slots: int = 4) -> list[dict[str, Any]]:
    """Per group: steps, lr, time and the first ``slots`` slots of every series (JSON-ready)."""
    out = []
    for tr in cb.traces:
        n = min(slots, tr.group.slots)
        item: dict[str, Any] = {"kind": tr.group.kind, "name": tr.group.name, "slots_shown": n,
                                "lr": tr.lr, "time": tr.time}
        for s in SERIES:
            st = tr.stacked(s)
            item[s] = [[None if math.isnan(v) else v for v in row[:n].tolist()] for row in st]
        for s in SERIES[1:]:
            e = tr.rel_errors(s).tolist() if tr.series["measured"] else []
            item[f"rel_error_{s}"] = [None if math.isnan(v) else v for v in e]
        out.append(item)
    return out


def check_outputs(out_dir: str | Path, force: bool) -> None:
    """Raise :class:`~canocaps.errors.OutputExistsError` early if a run's outputs exist (not ``force``)."""
    _check_outputs(force, Path(out_dir) / JSON_NAME, Path(out_dir) / PLOT_NAME)


def run_with_model(net: nn.Module, train_data: Any, example_inputs: Any, out_dir: str | Path | None,
                   train_config: TrainConfig, *, module: nn.Module | None = None, prefix: str = "net.",
                   output_softmax: bool = False, force: bool = False, resume: bool = False,
                   extra: dict[str, Any] | None = None, title: str | None = None,
                   report: SymmetryReport | None = None) -> dict[str, Any]:
    """Detect ``net``'s symmetries (or take ``report``, with names relative to ``net``) and train
    ``module`` (default ``Classifier(net)``) with the mechanics callback; ``net`` must be
    ``module``'s sub-module at ``prefix``.

    Writes ``mechanics.json`` / ``mechanics.png`` in ``out_dir`` (None: nothing written)
    and returns the JSON payload.
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and not resume:
        check_outputs(out, force)
    if report is None:
        report = detect_symmetries(net, example_inputs, output_softmax=output_softmax)
    if not report.groups:
        raise CanocapsInputError(f"no symmetry found in {type(net).__name__}; nothing to measure")
    module = module if module is not None else Classifier(net)
    named = dict(module.named_parameters())
    missing = [p for g in report.groups for p in g.params if prefix + p not in named]
    if missing:
        raise CanocapsInputError(f"parameter {prefix + missing[0]} not found in the trainer module (check prefix)")
    cb = MechanicsCallback(report, prefix=prefix)
    trainer = Trainer(train_config, callbacks=[cb], out_dir=(out / "train") if out is not None else None)
    if out is not None:  # the one run-folder policy (no spec: the outputs above are checked)
        resume = prepare_run(out / "train", None, resume=resume, force=force)
    fit = trainer.fit(module, train_data, resume=resume)
    payload = {"title": title or type(net).__name__, "train_config": train_config.to_dict(),
               **(extra or {}), "symmetries": report.to_dict(), "steps": fit.global_step,
               "summary": cb.summary(), "series": series_payload(cb)}
    if out is not None:
        from canocaps.extras.mechanics.plots import plot_experiment

        atomic_write_text(out / JSON_NAME, json.dumps(payload, indent=1), force=force or resume)
        plot_experiment(payload, out / PLOT_NAME, force=force or resume)
    return payload


def run_experiment(config: ExperimentConfig, out_dir: str | Path | None, *, force: bool = False,
                   resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train one of the digits models (:data:`MODEL_KINDS`) and measure its conserved quantities."""
    config.validate()
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    torch.manual_seed(config.seed)
    net = build_model(config.model, config.hidden, config.bn_eps).to(dtype)
    # the first 80 % of a fixed permutation: the split docs/extras_mechanics.md was measured with
    side = IMAGE_SIZE.get(config.model)
    data = load_digits("train", flatten=side is None, dtype=dtype, method="rng_permutation",
                       upsample=(side or 8) // 8)
    return run_with_model(net, data, example_input(config.model, dtype=dtype), out_dir,
                          config.train_config(progress, len(data)), output_softmax=True, force=force, resume=resume,
                          extra={"experiment": asdict(config)}, title=f"{config.model} on digits")
