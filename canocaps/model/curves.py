"""Training curves of a Canonical Capsules run (``metrics.csv`` -> PNG, matplotlib Agg)."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from canocaps._files import atomic_path
from canocaps.errors import CanocapsInputError
from canocaps.model.losses import LOSS_NAMES

__all__ = ["read_metrics", "plot_training_curves"]


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a trainer ``metrics.csv`` as dicts of floats (empty cells dropped)."""
    p = Path(path)
    if not p.is_file():
        raise CanocapsInputError(f"{p}: metrics file not found")
    rows = []
    with p.open(newline="") as f:
        for row in csv.DictReader(f):
            out = {}
            for k, v in row.items():
                try:
                    if v not in (None, ""):
                        out[k] = float(v)
                except ValueError:
                    pass
            rows.append(out)
    return rows


def _series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        if key in r and "step" in r and math.isfinite(r[key]):
            xs.append(r["step"])
            ys.append(r[key])
    return xs, ys


def _smooth(ys: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` logged rows."""
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= window:
            acc -= ys[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_training_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike, force: bool = False,
                         title: str | None = None) -> Path:
    """Four panels: total loss (train/val), the six training losses (weighted, log),
    validation equivariance error (degrees) and validation Chamfer / keypoint error.
    Written atomically; no overwrite without ``force``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0, 0]
    xs, ys = _series(rows, "loss")
    window = max(1, len(ys) // 12)
    if xs:
        ax.plot(xs, ys, "-", color="tab:blue", alpha=0.3, lw=0.8, label="loss (train)")
        ax.plot(xs, _smooth(ys, window), "-", color="tab:blue", lw=1.5, label=f"loss (train, mean of {window} logs)")
    xs, ys = _series(rows, "val/loss")
    if xs:
        ax.plot(xs, ys, "o-", color="tab:orange", ms=3, lw=1, label="val/loss")
    ax.set_yscale("log"); ax.set_title("total loss"); ax.set_xlabel("step"); ax.legend()
    ax = axes[0, 1]
    for key in LOSS_NAMES:
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, [max(y, 1e-12) for y in _smooth(ys, window)], label=key, lw=1)
    ax.set_yscale("log"); ax.set_title(f"training losses (unweighted, mean of {window} logs)"); ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    xs, ys = _series(rows, "val/equivariance_deg")
    if xs:
        ax.plot(xs, ys, "o-", ms=3, label="val equivariance error (deg)")
    ax.set_title("canonical-frame consistency (val, degrees)"); ax.set_xlabel("step"); ax.legend()
    ax = axes[1, 1]
    for key in ("val/chamfer", "val/keypoint_error", "val/invariance_error"):
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, "o-", ms=3, label=key)
    ax.set_yscale("log"); ax.set_title("validation metrics"); ax.set_xlabel("step"); ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out_png, force) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(out_png)
