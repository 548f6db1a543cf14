"""Ready-made headless pictures: capsules, canonical pose, reconstruction, registration, stability.

Every ``save_*`` function writes a PNG (atomically, refusing to overwrite without
``force``) and returns its path. Point arrays are (N, 3) numpy arrays or tensors.
The ``*_panel`` builders return :class:`Panel` objects for composing bigger figures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from canocaps.viz.colors import MOVED, SOURCE, TARGET, capsule_colors, palette_for
from canocaps.viz.png import Panel, PointLayer, _as_points, render_panels


def capsules_panel(points, assignment, keypoints=None, title: str = "capsules") -> Panel:
    """Points coloured by capsule (assignment (N,) int) and keypoints (K, 3) as big dots."""
    assignment = np.asarray(assignment).reshape(-1)
    k = len(_as_points(keypoints)) if keypoints is not None else int(assignment.max()) + 1
    layers = [PointLayer(_as_points(points), capsule_colors(assignment, k), size=2.0)]
    if keypoints is not None:
        layers.append(PointLayer(_as_points(keypoints), palette_for(k), size=60.0, alpha=1.0))
    return Panel(title, layers)


def cloud_panel(points, title: str, color=TARGET, size: float = 2.0) -> Panel:
    return Panel(title, [PointLayer(_as_points(points), np.asarray(color), size=size)])


def overlay_panel(clouds: Sequence, title: str, colors: Sequence | None = None,
                  labels: Sequence[str | None] | None = None, size: float = 1.5) -> Panel:
    """Several clouds drawn in one panel (e.g. copies of a shape under many rotations)."""
    colors = colors if colors is not None else palette_for(len(clouds))
    labels = labels or [None] * len(clouds)
    return Panel(title, [PointLayer(_as_points(c), np.asarray(col), size=size, label=lab, alpha=0.6)
                         for c, col, lab in zip(clouds, colors, labels)])


def save_capsules_png(points, assignment, keypoints, path: str | Path, force: bool = False,
                      title: str | None = None) -> Path:
    """(a) a cloud coloured by capsule with its keypoints."""
    return render_panels([capsules_panel(points, assignment, keypoints, title or "capsules")], path, force)


def save_canonical_png(points, canonical, path: str | Path, force: bool = False, title: str | None = None) -> Path:
    """(b) input pose beside the canonical pose."""
    return render_panels([cloud_panel(points, "input pose", SOURCE), cloud_panel(canonical, "canonical pose", TARGET)],
                         path, force, suptitle=title)


def save_reconstruction_png(points, reconstruction, path: str | Path, force: bool = False,
                            title: str | None = None) -> Path:
    """(c) input (canonicalised) beside its reconstruction, and both overlaid."""
    return render_panels([
        cloud_panel(points, "input", TARGET),
        cloud_panel(reconstruction, "reconstruction", MOVED),
        overlay_panel([points, reconstruction], "overlay", [TARGET, MOVED], ["input", "reconstruction"]),
    ], path, force, suptitle=title)


def save_registration_png(a, b, moved_a, path: str | Path, force: bool = False, title: str | None = None) -> Path:
    """(d) a registration: A and B before, moved A and B after."""
    return render_panels([
        overlay_panel([a, b], "before", [SOURCE, TARGET], ["A", "B"]),
        overlay_panel([moved_a, b], "after", [MOVED, TARGET], ["A moved", "B"]),
    ], path, force, suptitle=title)


def save_stability_png(rotated: Sequence, canonical: Sequence, path: str | Path, force: bool = False,
                       baseline: Sequence | None = None, baseline_name: str = "PCA",
                       title: str | None = None) -> Path:
    """(e) one shape under many rotations, and its canonical clouds overlaid (one colour per copy)."""
    panels = [overlay_panel(rotated, f"{len(rotated)} rotated inputs"),
              overlay_panel(canonical, "canocaps canonical")]
    if baseline is not None:
        panels.append(overlay_panel(baseline, f"{baseline_name} canonical"))
    return render_panels(panels, path, force, suptitle=title)
