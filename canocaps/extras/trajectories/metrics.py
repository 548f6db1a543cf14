"""Evaluation: likelihood bounds on held-out data and statistics of generated rollouts.

Rollout statistics follow the authors' ``scripts/compute_bball_stats.py``, in raw units:

- ``avg_speed``: mean over sequences, frames and agents of the per-frame displacement
  ``|p_{t+1} - p_t|`` (units per frame: ft/frame for basketball);
- ``path_length``: per sequence the summed displacement averaged over agents, then
  averaged over sequences (units);
- ``oob_rate``: fraction of frames in which at least one agent lies outside the arena
  (boids: the square [-2.5, 2.5]^2; basketball: the authors' 0..94 x 0..50 ft court).

Boids friendliness: :class:`FriendlinessClassifier`, a logistic regression on
simulator-agnostic flock features (mean pairwise distance at the first / middle / last
frame and its slope over time, mean nearest-neighbour distance over the last 10 frames,
velocity alignment), fitted on the simulated training split.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from canocaps._files import atomic_write_text
from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories.labeling import as_agent_positions

ARENAS: dict[str, tuple[float, float, float, float]] = {  # xmin, xmax, ymin, ymax (raw units)
    "boids": (-2.5, 2.5, -2.5, 2.5),
    "basketball": (0.0, 94.0, 0.0, 50.0),
}


def rollout_stats(positions: np.ndarray, arena: str) -> dict[str, float]:
    """Statistics of trajectories ``(S, T, 2A)`` (or ``(S, T, A, 2)``) in raw units (see module doc)."""
    if arena not in ARENAS:
        raise CanocapsInputError(f"unknown arena {arena!r} (choose from {', '.join(ARENAS)})")
    p = as_agent_positions(positions)
    step = np.linalg.norm(np.diff(p, axis=1), axis=-1)  # (S, T-1, A)
    xmin, xmax, ymin, ymax = ARENAS[arena]
    out = (p[..., 0] < xmin) | (p[..., 0] > xmax) | (p[..., 1] < ymin) | (p[..., 1] > ymax)  # (S, T, A)
    return {
        "avg_speed": float(step.mean()),
        "path_length": float(step.sum(1).mean()),
        "oob_rate": float(out.any(-1).mean()),
        "n_sequences": int(p.shape[0]),
    }


def rollout_stats_reference(positions: np.ndarray, arena: str) -> dict[str, float]:
    """Per-sequence loop as in the authors' script (reference for tests)."""
    p = as_agent_positions(positions)
    xmin, xmax, ymin, ymax = ARENAS[arena]
    speeds, dists, oobs = [], [], []
    for traj in p:
        sp = np.linalg.norm(traj[1:] - traj[:-1], axis=-1)
        speeds.append(sp.mean())
        dists.append(sp.sum() / traj.shape[1])
        bad = (traj[..., 0] < xmin) | (traj[..., 0] > xmax) | (traj[..., 1] < ymin) | (traj[..., 1] > ymax)
        oobs.append(np.sum(bad.sum(1) > 0) / traj.shape[0])
    return {"avg_speed": float(np.mean(speeds)), "path_length": float(np.mean(dists)),
            "oob_rate": float(np.mean(oobs)), "n_sequences": len(p)}


# --- boids friendliness -------------------------------------------------------------------------

FEATURES = ("pd_first", "pd_mid", "pd_last", "pd_slope", "nn_last10", "alignment")


def flock_features(positions: np.ndarray) -> np.ndarray:
    """Features ``(S, 6)`` (names in :data:`FEATURES`) of flocks ``(S, T, 2A)``, T >= 3, A >= 2."""
    p = as_agent_positions(positions)
    S, T, A, _ = p.shape
    if T < 3 or A < 2:
        raise CanocapsInputError(f"flock features need T >= 3 frames and A >= 2 agents, got T={T}, A={A}")
    d = np.linalg.norm(p[:, :, :, None] - p[:, :, None, :], axis=-1)  # (S, T, A, A)
    iu = np.triu_indices(A, 1)
    pd = d[:, :, iu[0], iu[1]].mean(-1)  # (S, T)
    t = np.arange(T) - (T - 1) / 2
    slope = (pd * t).sum(1) / (t ** 2).sum()
    d_nn = d + np.eye(A) * 1e9
    nn = d_nn.min(-1)[:, -10:].mean((1, 2))
    v = np.diff(p, axis=1)
    vn = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    align = np.linalg.norm(vn.mean(2), axis=-1).mean(1)  # 1 = all agents move the same way
    return np.stack([pd[:, 0], pd[:, T // 2], pd[:, -1], slope, nn, align], 1)


@dataclass
class FriendlinessClassifier:
    """Logistic regression on standardised :func:`flock_features`; predicts 1 = friendly."""

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, positions: np.ndarray, labels: np.ndarray, C: float = 1.0) -> "FriendlinessClassifier":
        from sklearn.linear_model import LogisticRegression

        f = flock_features(positions)
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise CanocapsInputError("the friendliness classifier needs both friendly and unfriendly flocks")
        mean, std = f.mean(0), f.std(0) + 1e-9
        lr = LogisticRegression(C=C, max_iter=1000).fit((f - mean) / std, labels)
        return cls(mean, std, lr.coef_[0].copy(), float(lr.intercept_[0]))

    def prob_friendly(self, positions: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        z = ((flock_features(positions) - self.mean) / self.std) @ self.coef + self.intercept
        return expit(z)  # overflow-free logistic (generated flocks can be far off the data)

    def predict(self, positions: np.ndarray) -> np.ndarray:
        return (self.prob_friendly(positions) > 0.5).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FriendlinessClassifier":
        return cls(np.array(d["mean"]), np.array(d["std"]), np.array(d["coef"]), float(d["intercept"]))

    def save(self, path: str | Path, force: bool = False) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n", force)


# --- likelihood ----------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_bound(model: torch.nn.Module, data: Dataset, batch_size: int = 256, seed: int = 0,
                   progress: bool = False, iw_samples: int = 0) -> dict[str, float]:
    """Mean (and standard error) over the sequences of ``data`` of every per-sequence term
    of ``model.loss_terms`` (nats per sequence; ``loss`` = negative ELBO / NLL), with one
    latent sample per sequence drawn under ``torch.manual_seed(seed)``. ``iw_samples`` = k > 0
    adds ``iw_loss``: the k-sample importance-weighted bound (``model.iw_bound``)."""
    from tqdm import tqdm

    model.eval()
    device = next(model.parameters()).device
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        sums: dict[str, list[np.ndarray]] = {}
        loader = DataLoader(data, batch_size=batch_size, shuffle=False)
        for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
            x = batch["x"].to(device)
            macro = batch.get("macro")
            macro = None if macro is None else macro.to(device)
            terms = model.loss_terms(x, macro)
            if iw_samples > 0:
                terms["iw_loss"] = model.iw_bound(x, macro, iw_samples)
            for k, v in terms.items():
                sums.setdefault(k, []).append(v.double().cpu().numpy())
    out: dict[str, float] = {}
    for k, parts in sums.items():
        v = np.concatenate(parts)
        out[k] = float(v.mean())
        out[f"{k}_sem"] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    out["n_sequences"] = len(data)
    if iw_samples > 0:
        out["iw_samples"] = iw_samples
    return out
