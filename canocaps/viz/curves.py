"""Training curves from a run folder's ``metrics.csv`` (written by the shared trainer)."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Mapping

from canocaps._files import atomic_path, read_text
from canocaps.errors import CanocapsInputError

_NOT_CURVES = {"step", "epoch", "lr"}
# the six Canonical Capsules losses, as logged by canocaps.model.module
CAPSULE_LOSSES = ("reconstruction", "localization", "equilibrium", "equivariance", "invariance", "canonical")


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """Rows of ``run_dir/metrics.csv`` (or of the given ``.csv``) as dicts of floats (empty cells dropped)."""
    path = _metrics_csv(run_dir)
    if not path.is_file():
        raise CanocapsInputError(f"{path} not found (is {run_dir} a canocaps training run?)")
    text = read_text(path, "metrics file")
    try:
        records = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CanocapsInputError(f"{path}: not a CSV file ({exc})") from None
    rows = []
    for row in records:
        parsed = {}
        for k, v in row.items():
            if isinstance(k, str) and isinstance(v, str) and v:
                try:
                    parsed[k] = float(v)
                except ValueError:
                    continue
        rows.append(parsed)
    if not rows:
        raise CanocapsInputError(f"{path} has no rows yet")
    return rows


def _metrics_csv(run_dir_or_csv: str | Path) -> Path:
    p = Path(run_dir_or_csv)
    return p if p.suffix == ".csv" else p / "metrics.csv"


def plot_training_curves(run_dir: str | Path, png_path: str | Path, force: bool = False,
                         keys: list[str] | None = None, title: str | None = None,
                         marks: Mapping[int, str] | None = None) -> Path:
    """Training curves of a run folder (or its ``metrics.csv``) as a PNG; returns its path.

    A Canonical Capsules run (its log has the six capsule losses) gets a four-panel
    figure: total loss, the six losses, the validation frame error in degrees, and the
    other validation metrics. Any other run gets every training quantity (left) and
    validation metric (right) against the step. Positive quantities use a log scale.
    ``marks`` ``{step: label}`` draws a labelled vertical line on every panel (an lr
    drop, a change of data on resume).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    if keys is None and all(any(name in r for r in rows) for name in CAPSULE_LOSSES):
        return _plot_capsules_run(rows, png_path, force, title or Path(run_dir).resolve().name, marks or {})
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in _NOT_CURVES and k not in names)
    if keys:
        names = [n for n in names if n in keys]
    train = [n for n in names if not n.startswith("val/")]
    val = [n for n in names if n.startswith("val/")]
    groups = [(g, t) for g, t in ((train, "training"), (val, "validation")) if g]
    if not groups:
        raise CanocapsInputError(f"{run_dir}: metrics.csv has no curves to plot")
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4), dpi=100, squeeze=False)
    try:
        for ax, (group, title) in zip(axes[0], groups):
            for name in group:
                pts = [(r["step"], r[name]) for r in rows if name in r and "step" in r and math.isfinite(r[name])]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, label=name, linewidth=1.2)
            values = [r[n] for r in rows for n in group if n in r]
            if values and min(values) > 0:
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            _draw_marks(ax, marks or {})
            ax.legend(fontsize=7)
        fig.suptitle(title or str(Path(run_dir).resolve().name))
        fig.tight_layout()
        with atomic_path(png_path, force) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(png_path)


def _series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r and math.isfinite(r[key])]
    return (list(map(list, zip(*pts))) if pts else ([], []))  # type: ignore[return-value]


def _smooth(ys: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` logged rows."""
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= window:
            acc -= ys[i - window]
        out.append(acc / min(i + 1, window))
    return out


def _draw_marks(ax: Any, marks: Mapping[int, str]) -> None:
    for i, (step, label) in enumerate(sorted(marks.items())):
        ax.axvline(step, color="0.3", ls="--", lw=0.9)
        ax.annotate(label, (step, 1.0 - 0.07 * (i % 3)), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", fontsize=7, color="0.25", va="top")


def _plot_capsules_run(rows: list[dict[str, float]], png_path: str | Path, force: bool, title: str,
                       marks: Mapping[int, str]) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    try:
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
        for key in CAPSULE_LOSSES:
            xs, ys = _series(rows, key)
            if xs:
                ax.plot(xs, [max(y, 1e-12) for y in _smooth(ys, window)], label=key, lw=1)
        ax.set_yscale("log"); ax.set_title(f"training losses (unweighted, mean of {window} logs)")
        ax.set_xlabel("step"); ax.legend(fontsize=8)
        ax = axes[1, 0]
        xs, ys = _series(rows, "val/equivariance_deg")
        if xs:
            ax.plot(xs, ys, "o-", ms=3, label="val equivariance error (deg)")
        ax.set_title("canonical-frame consistency (val, degrees)"); ax.set_xlabel("step"); ax.legend()
        ax = axes[1, 1]
        for key in ("val/chamfer", "val/keypoint_error", "val/invariance_error", "val/canonical_agreement"):
            xs, ys = _series(rows, key)
            if xs:
                ax.plot(xs, ys, "o-", ms=3, label=key)
        ax.set_yscale("log"); ax.set_title("validation metrics"); ax.set_xlabel("step"); ax.legend(fontsize=8)
        for ax in axes.flat:
            _draw_marks(ax, marks)
        fig.suptitle(title)
        fig.tight_layout()
        with atomic_path(png_path, force) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return Path(png_path)
