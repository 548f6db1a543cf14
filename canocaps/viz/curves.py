"""Training curves from a run folder's ``metrics.csv`` (written by the shared trainer)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from canocaps._files import atomic_path
from canocaps.errors import CanocapsInputError

_NOT_CURVES = {"step", "epoch", "lr"}


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """Rows of ``run_dir/metrics.csv`` as dicts of floats (empty cells dropped)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise CanocapsInputError(f"{path} not found (is {run_dir} a canocaps training run?)")
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for k, v in row.items():
                if v not in ("", None):
                    try:
                        parsed[k] = float(v)
                    except ValueError:
                        continue
            rows.append(parsed)
    if not rows:
        raise CanocapsInputError(f"{path} has no rows yet")
    return rows


def plot_training_curves(run_dir: str | Path, png_path: str | Path, force: bool = False,
                         keys: list[str] | None = None) -> Path:
    """Plot every training quantity (left) and validation metric (right) against the step.

    Positive quantities use a log scale. Returns the PNG path.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
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
            ax.legend(fontsize=7)
        fig.suptitle(str(Path(run_dir).name))
        fig.tight_layout()
        with atomic_path(png_path, force) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(png_path)
