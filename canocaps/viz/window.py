"""Opening an Open3D window when a screen exists, and saying so in one line when not."""
from __future__ import annotations

import os
import sys
from typing import Sequence


def has_display() -> bool:
    """True when a window can be opened (X11 / Wayland on Linux; always on macOS / Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(geometries: Sequence, title: str = "canocaps") -> bool:
    """Open an Open3D viewer on ``geometries``; return False (and print one line) with no display."""
    if not has_display():
        print("canocaps: no display available; use --png FILE to write a picture instead", file=sys.stderr)
        return False
    import open3d as o3d

    o3d.visualization.draw_geometries(list(geometries), window_name=title)
    return True
