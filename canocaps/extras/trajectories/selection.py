"""Model selection on free-running rollouts (a :class:`canocaps.train.Callback`).

The teacher-forced bound (``val/loss``) does not control sampling: a model can improve its
bound while its rollouts drift out of the arena. :class:`RolloutSelection` rolls the model
out from the first frame of validation sequences at every validation and keeps the
checkpoint with the best :func:`rollout_score` as ``best_rollout.pt`` (beside the trainer's
``best.pt``, which stays selected on ``val/loss``).

Score (lower is better, 0 = matches the real validation data)::

    |speed / real speed - 1| + OOB rate + intent term

with the intent term ``mean_i (1 - fraction of intent-i rollouts classified as i)`` when
intents are fixed (macro model, boids ``flock`` LF: one rollout set per intent) and
``|generated friendly fraction - real friendly fraction|`` otherwise (every boids model is
scored on how it reproduces the two behaviours). Path length is 49 x speed here, so it is
not counted twice.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps._files import atomic_write_text
from canocaps.extras.trajectories.metrics import FriendlinessClassifier, rollout_stats
from canocaps.train import Callback


def rollout_score(generated: dict[str, float], real: dict[str, float], intent_accuracy: list[float] | None = None,
                  friendly_gap: float | None = None) -> float:
    """The selection score (module doc) from :func:`rollout_stats` dictionaries (raw units)."""
    score = abs(generated["avg_speed"] / max(real["avg_speed"], 1e-12) - 1.0) + generated["oob_rate"]
    if intent_accuracy:
        score += float(np.mean([1.0 - a for a in intent_accuracy]))
    elif friendly_gap is not None:
        score += abs(friendly_gap)
    return float(score)


@torch.no_grad()
def rollout_report(net: torch.nn.Module, prefix: torch.Tensor, seq_len: int, arena: str,
                   real: np.ndarray, unnormalize: Any, classifier: FriendlinessClassifier | None = None,
                   real_labels: np.ndarray | None = None, fix_intents: list[int] | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """Roll ``net`` out from ``prefix`` ``(n, P, 2A)`` (model units) to ``seq_len`` frames and
    compare with the real sequences ``real`` ``(n, T, 2A)`` (raw units).

    With ``fix_intents`` (macro model) one rollout set per intent, the statistics pooled
    over the sets. ``unnormalize`` maps model units to raw units. Returns the generated
    and real :func:`rollout_stats`, the friendliness numbers when a classifier is given,
    and ``"score"`` (:func:`rollout_score`)."""
    was_training = net.training
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    sets = [None] if not fix_intents else list(fix_intents)
    xs = [unnormalize(net.sample(prefix, seq_len, fix_macro=m, generator=gen)["x"].cpu().numpy()) for m in sets]
    net.train(was_training)
    real_stats = rollout_stats(real, arena)
    out: dict[str, Any] = {"generated": rollout_stats(np.concatenate(xs), arena), "real": real_stats}
    acc, gap = None, None
    if classifier is not None:
        if fix_intents:
            acc = [float((classifier.predict(x) == m).mean()) for x, m in zip(xs, sets)]
            out["classified_as_intended"] = dict(zip((str(m) for m in sets), acc))
        else:
            frac = float(classifier.predict(xs[0]).mean())
            ref = float(np.mean(real_labels)) if real_labels is not None else float(classifier.predict(real).mean())
            gap = frac - ref
            out["generated_friendly_fraction"], out["real_friendly_fraction"] = frac, ref
    out["score"] = rollout_score(out["generated"], real_stats, acc, gap)
    return out


class RolloutSelection(Callback):
    """At every validation, score rollouts (:func:`rollout_report`) and save the best model
    to ``path`` (``best_rollout.pt``). Adds ``val/rollout_score``, ``val/rollout_speed``,
    ``val/rollout_oob`` (and intent accuracies) to the trainer's history and rewrites
    ``rollout_selection.json`` beside ``path`` (every check, the best step). The best score
    and the rows are part of the callback state, so ``--resume`` continues the selection."""

    def __init__(self, path: str | Path, prefix: torch.Tensor, seq_len: int, arena: str, real: np.ndarray,
                 unnormalize: Any, classifier: FriendlinessClassifier | None = None,
                 real_labels: np.ndarray | None = None, fix_intents: list[int] | None = None, seed: int = 0) -> None:
        self.path = Path(path)
        self.kw = dict(prefix=prefix, seq_len=seq_len, arena=arena, real=real, unnormalize=unnormalize,
                       classifier=classifier, real_labels=real_labels, fix_intents=fix_intents, seed=seed)
        self.best: float | None = None
        self.best_step: int | None = None
        self.last: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []

    def on_eval_end(self, trainer: Any, module: torch.nn.Module, metrics: dict[str, float]) -> None:
        kw = dict(self.kw)
        kw["prefix"] = kw["prefix"].to(next(module.parameters()).device)
        rep = rollout_report(module, **kw)
        self.last = rep
        row: dict[str, Any] = {"step": trainer.global_step, "epoch": trainer.epoch,
                               "val/rollout_score": rep["score"], "val/rollout_speed": rep["generated"]["avg_speed"],
                               "val/rollout_oob": rep["generated"]["oob_rate"]}
        for m, a in rep.get("classified_as_intended", {}).items():
            row[f"val/rollout_intent{m}_acc"] = a
        trainer.history.append(row)
        self.rows.append(row)
        if math.isfinite(rep["score"]) and (self.best is None or rep["score"] < self.best):
            self.best, self.best_step = rep["score"], trainer.global_step
            trainer.save(module, self.path)
        if trainer.is_main_process:
            atomic_write_text(self.path.with_name("rollout_selection.json"), json.dumps(
                {"best_score": self.best, "best_step": self.best_step, "checks": self.rows}, indent=1) + "\n", True)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "rows": list(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.rows = list(state.get("rows", []))
