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


def show(geometries: Sequence, title: str = "canocaps", written: str | os.PathLike | None = None) -> bool:
    """Open an Open3D viewer on ``geometries``; return False (and print one line) with no display.

    ``written``: a picture of the same scene already saved (``--png``); the line then
    points to it instead of suggesting ``--png``.
    """
    if not has_display():
        if written:
            print(f"canocaps: no display available for --show; the picture is in {written}", file=sys.stderr)
        else:
            print("canocaps: no display available for --show; use --png FILE to write a picture instead",
                  file=sys.stderr)
        return False
    import open3d as o3d

    o3d.visualization.draw_geometries(list(geometries), window_name=title)
    return True
