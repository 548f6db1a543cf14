"""Pictures of capsules, canonical poses, reconstructions, registrations and stability.

Two outputs for each picture:
- an Open3D window (``show_*``; returns False and says so in one line with no display,
  naming the PNG already written when ``written=`` is given),
- a headless PNG (``save_*``; matplotlib Agg), used by the CLI's ``--png``, the demo,
  the README figures and the tests.
"""
from __future__ import annotations

from canocaps.viz.curves import plot_training_curves, read_metrics
from canocaps.viz.pictures import (capsules_panel, cloud_panel, overlay_panel, save_canonical_png,
                                   save_capsules_png, save_reconstruction_png, save_registration_png,
                                   save_stability_png)
from canocaps.viz.png import Panel, PointLayer, render_panels
from canocaps.viz.window import has_display, show


def show_capsules(points, assignment, keypoints, title: str = "canocaps: capsules", written=None) -> bool:
    from canocaps.viz.geometries import capsule_geometries

    return show(capsule_geometries(points, assignment, keypoints), title) if has_display() else show([], title, written)


def show_canonical(points, canonical, title: str = "canocaps: canonical pose", written=None) -> bool:
    from canocaps.viz.geometries import canonical_geometries

    return show(canonical_geometries(points, canonical), title) if has_display() else show([], title, written)


def show_reconstruction(points, reconstruction, title: str = "canocaps: reconstruction", written=None) -> bool:
    from canocaps.viz.geometries import reconstruction_geometries

    return show(reconstruction_geometries(points, reconstruction), title) if has_display() else show([], title, written)


def show_registration(a, b, moved_a, title: str = "canocaps: registration", written=None) -> bool:
    from canocaps.viz.geometries import registration_geometries

    return show(registration_geometries(a, b, moved_a), title) if has_display() else show([], title, written)


def show_stability(rotated, canonical, title: str = "canocaps: stability", written=None) -> bool:
    from canocaps.viz.geometries import stability_geometries

    return show(stability_geometries(rotated, canonical), title) if has_display() else show([], title, written)


__all__ = [
    "Panel", "PointLayer", "render_panels", "capsules_panel", "cloud_panel", "overlay_panel",
    "save_capsules_png", "save_canonical_png", "save_reconstruction_png", "save_registration_png",
    "save_stability_png", "plot_training_curves", "read_metrics", "has_display", "show",
    "show_capsules", "show_canonical", "show_reconstruction", "show_registration", "show_stability",
]
