"""Headless pictures (matplotlib, Agg backend): work with no display at all.

A picture is a row of panels; each panel draws a few point sets in 3D with a shared,
equal-aspect box so shapes are not distorted. Files are written atomically and never
overwrite an existing file without ``force``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from canocaps._files import atomic_path, check_suffix


@dataclass
class PointLayer:
    """One point set in a panel: points (N, 3), colour (3,) or per-point (N, 3), marker size."""

    points: np.ndarray
    color: np.ndarray
    size: float = 2.0
    label: str | None = None
    alpha: float = 0.9


@dataclass
class Panel:
    title: str
    layers: list[PointLayer] = field(default_factory=list)


def _as_points(points) -> np.ndarray:
    arr = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=np.float64)
    return arr.reshape(-1, 3)


def render_panels(panels: Sequence[Panel], path: str | Path, force: bool = False,
                  panel_size: float = 3.2, dpi: int = 100, elev: float = 20.0, azim: float = -60.0,
                  suptitle: str | None = None) -> Path:
    """Draw ``panels`` side by side into a PNG at ``path``; returns the path.

    The image is ``len(panels) * panel_size`` by ``panel_size`` inches at ``dpi``.
    Viewing angles ``elev`` / ``azim`` are in degrees (matplotlib's convention; +y up is
    drawn as the vertical axis).
    """
    check_suffix(".png", path)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    n = max(len(panels), 1)
    fig = plt.figure(figsize=(panel_size * n, panel_size + (0.3 if suptitle else 0)), dpi=dpi)
    try:
        for i, panel in enumerate(panels):
            ax = fig.add_subplot(1, n, i + 1, projection="3d")
            everything = [_as_points(layer.points) for layer in panel.layers if len(layer.points)]
            for layer in panel.layers:
                pts = _as_points(layer.points)
                if not len(pts):
                    continue
                color = np.asarray(layer.color, dtype=np.float64)
                # plot (x, z, y) so that +y (the canonical up axis) is vertical on screen
                ax.scatter(pts[:, 0], pts[:, 2], pts[:, 1], s=layer.size, c=color if color.ndim == 2 else [color],
                           alpha=layer.alpha, linewidths=0, depthshade=False, label=layer.label)
            if everything:
                allp = np.concatenate(everything)
                center = (allp.max(0) + allp.min(0)) / 2
                half = max(float((allp.max(0) - allp.min(0)).max()) / 2, 1e-6)
                ax.set_xlim(center[0] - half, center[0] + half)
                ax.set_ylim(center[2] - half, center[2] + half)
                ax.set_zlim(center[1] - half, center[1] + half)
            ax.set_box_aspect((1, 1, 1), zoom=1.35)
            ax.view_init(elev=elev, azim=azim)
            ax.set_title(panel.title, fontsize=9)
            ax.set_axis_off()
            if any(layer.label for layer in panel.layers):
                ax.legend(loc="upper left", fontsize=7, markerscale=3, frameon=False)
        if suptitle:
            fig.suptitle(suptitle, fontsize=10)
        fig.tight_layout()
        with atomic_path(path, force) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)
