"""Exact resume: a run interrupted anywhere (inside a step, at an epoch boundary, during
validation; by Ctrl-C or SIGTERM) and resumed ends with the same weights, best.pt and
metrics.csv, bit for bit, as the run that was never interrupted.

The model, the data set and the validation step all draw from torch's, numpy's and
Python's global generators, so a resumed run that skipped, repeated or re-drew anything
would differ.
"""
from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from canocaps.train import Callback, Trainer, TrainConfig, seed_everything

STEPS_PER_EPOCH, EPOCHS = 5, 3


class NoisyData(Dataset):
    """Items get fresh noise from the global torch generator when fetched."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 3.0])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.05 * torch.randn(3), self.y[i]


class Noisy(torch.nn.Module):
    """Dropout, numpy and python noise in training; torch noise in validation."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 8)
        self.out = torch.nn.Linear(8, 1)
        self.drop = torch.nn.Dropout(0.2)
        self.signal_at_val_call: int | None = None
        self.val_calls = 0

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.hidden(x)))).squeeze(-1)

    def training_step(self, batch, step):
        x, y = batch
        x = x + 0.01 * float(np.random.randn()) + 0.01 * random.gauss(0.0, 1.0)
        err = self(x) - y
        return {"loss": (err ** 2).mean(), "mae": err.abs().mean()}

    def validation_step(self, batch):
        self.val_calls += 1
        if self.val_calls == self.signal_at_val_call:
            os.kill(os.getpid(), signal.SIGTERM)
        x, y = batch
        err = self(x + 0.05 * torch.randn_like(x)) - y
        return {"loss": (err ** 2).mean()}


def config(**kw) -> TrainConfig:
    base = dict(epochs=EPOCHS, batch_size=8, lr=0.03, log_every=1, progress=False, monitor="val/loss",
                lr_milestones=[2], lr_gamma=0.5, seed=7)
    return TrainConfig(**{**base, **kw})


TRAIN, VAL = NoisyData(8 * STEPS_PER_EPOCH, 0), NoisyData(16, 1)


def run(out, callbacks=(), resume=False, signal_at_val_call=None) -> Noisy:
    seed_everything(3)  # before the model is built: same initial weights in every fresh run
    module = Noisy()
    module.signal_at_val_call = signal_at_val_call
    Trainer(config(), callbacks=callbacks, out_dir=out).fit(module, TRAIN, VAL, resume=resume)
    return module


def params_of(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    module = run(out)
    return out, params_of(module)


class StopAt(Callback):
    """At ``hook`` of step ``step`` (global_step when the hook runs): raise KeyboardInterrupt,
    or send this process SIGTERM once or twice."""

    def __init__(self, hook: str, step: int, how: str = "raise"):
        self.hook, self.step, self.how = hook, step, how

    def _maybe(self, trainer, hook):
        if hook != self.hook or trainer.global_step != self.step:
            return
        if self.how == "raise":
            raise KeyboardInterrupt
        for _ in range({"sigterm": 1, "sigterm2": 2}[self.how]):
            os.kill(os.getpid(), signal.SIGTERM)

    def on_step_start(self, trainer, module, batch):
        self._maybe(trainer, "step_start")

    def on_before_optimizer_step(self, trainer, module):
        self._maybe(trainer, "before_opt")

    def on_step_end(self, trainer, module, outputs):
        self._maybe(trainer, "step_end")

    def on_eval_end(self, trainer, module, metrics):
        self._maybe(trainer, "eval_end")

    def on_epoch_end(self, trainer, module):
        self._maybe(trainer, "epoch_end")


# (hook, global_step when it fires, how) -> (saved global_step, batch_in_epoch, pending)
CASES = {
    "mid-epoch, before the step": (("step_start", 7, "raise"), (7, 2, None)),
    "mid-epoch, after backward": (("before_opt", 7, "raise"), (7, 2, None)),
    "mid-epoch, after the update": (("step_end", 7, "raise"), (7, 2, None)),
    "SIGTERM mid-step finishes the step": (("before_opt", 7, "sigterm"), (8, 3, None)),
    "second SIGTERM stops at once": (("before_opt", 7, "sigterm2"), (7, 2, None)),
    "last step of an epoch": (("step_end", 10, "raise"), (10, 5, None)),
    "epoch boundary, after validation": (("eval_end", 10, "raise"), (10, 0, "epoch_end")),
    "epoch boundary, on_epoch_end": (("epoch_end", 5, "raise"), (5, 0, "epoch_end")),
    "SIGTERM at on_epoch_end": (("epoch_end", 5, "sigterm"), (5, 0, None)),
}


def check_same_as_reference(out, module, reference):
    ref_out, ref_params = reference
    assert torch.equal(params_of(module), ref_params)
    assert (out / "metrics.csv").read_text() == (ref_out / "metrics.csv").read_text()
    best, ref_best = (torch.load(d / "best.pt", weights_only=True) for d in (out, ref_out))
    assert best["trainer"] == ref_best["trainer"]
    for k, v in ref_best["module"].items():
        assert torch.equal(best["module"][k], v), k


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted(case, reference, tmp_path):
    (hook, step, how), (saved_step, saved_batch, pending) = CASES[case]
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, callbacks=[StopAt(hook, step, how)])
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    t = state["trainer"]
    assert (t["global_step"], t["batch_in_epoch"], t["pending"]) == (saved_step, saved_batch, pending)
    resumed = run(tmp_path, resume=True)
    check_same_as_reference(tmp_path, resumed, reference)


def test_sigterm_during_validation_then_resume(reference, tmp_path):
    with pytest.raises(KeyboardInterrupt):  # at epoch 2's validation, first batch (two per pass)
        run(tmp_path, signal_at_val_call=3)
    t = torch.load(tmp_path / "last.pt", weights_only=True)["trainer"]
    assert (t["global_step"], t["epoch"], t["pending"]) == (10, 2, "epoch_end")
    resumed = run(tmp_path, resume=True)
    check_same_as_reference(tmp_path, resumed, reference)


def test_interrupted_twice_then_resumed(reference, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, callbacks=[StopAt("before_opt", 3)])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, callbacks=[StopAt("eval_end", 10)], resume=True)
    resumed = run(tmp_path, resume=True)
    check_same_as_reference(tmp_path, resumed, reference)


def test_resume_from_best_pt_reproduces_the_rest(reference, tmp_path):
    """best.pt is a full checkpoint too: resuming from it replays the run from there."""
    import shutil

    _, ref_params = reference
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, callbacks=[StopAt("step_end", 12)])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["trainer"]["global_step"] == 10
    shutil.copy(tmp_path / "best.pt", tmp_path / "last.pt")
    resumed = run(tmp_path, resume=True)
    assert torch.equal(params_of(resumed), ref_params)
