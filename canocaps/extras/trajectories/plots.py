"""Pictures of trajectories (matplotlib, Agg backend; PNG written atomically)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from canocaps._files import atomic_path
from canocaps.extras.trajectories.labeling import as_agent_positions
from canocaps.extras.trajectories.metrics import ARENAS


def plot_trajectories(path: str | Path, positions: np.ndarray, titles: Sequence[str] | None = None,
                      arena: str = "boids", burn_in: int = 1, ncols: int = 4, force: bool = False,
                      suptitle: str | None = None) -> Path:
    """Plot sequences ``(S, T, 2A)`` in raw units, one panel each: agents in colours, the
    given prefix (first ``burn_in`` frames) in black, a dot at every agent's last frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = as_agent_positions(positions)
    S, T, A, _ = p.shape
    ncols = min(ncols, S)
    nrows = int(np.ceil(S / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows), squeeze=False)
    xmin, xmax, ymin, ymax = ARENAS[arena]
    if arena == "basketball":
        xmax = 47.0  # the half court
    colours = plt.get_cmap("tab10")
    for s, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if s >= S:
            ax.axis("off")
            continue
        for a in range(A):
            c = colours(a % 10)
            ax.plot(p[s, max(burn_in - 1, 0):, a, 0], p[s, max(burn_in - 1, 0):, a, 1], "-", color=c, lw=1.2)
            if burn_in > 1:
                ax.plot(p[s, :burn_in, a, 0], p[s, :burn_in, a, 1], "-", color="k", lw=1.5)
            ax.plot(p[s, -1, a, 0], p[s, -1, a, 1], "o", color=c, ms=3)
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        ax.set_aspect("equal")
        if titles is not None and s < len(titles):
            ax.set_title(titles[s], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, force, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)
