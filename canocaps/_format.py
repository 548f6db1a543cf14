"""Text of results: rotations as an angle about an axis, matrices as aligned rows (numpy only).

Foundation: imported by :mod:`canocaps.model.results` and :mod:`canocaps.heads.results`
so that every result prints its rotation the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rotation_angle_axis", "format_rotation", "format_matrix", "format_vector"]


def rotation_angle_axis(R: Any) -> tuple[float, np.ndarray]:
    """Angle (degrees, in [0, 180]) and unit axis ``(3,)`` of one rotation matrix ``(3, 3)``.

    The axis of the identity is reported as ``(0, 0, 1)``; a half turn's axis is the
    column of ``(R + I) / 2`` with the largest norm (its sign is arbitrary).
    """
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cos)))
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if np.linalg.norm(w) > 1e-6:
        return angle, w / np.linalg.norm(w)
    if angle < 90.0:
        return angle, np.array([0.0, 0.0, 1.0])
    B = (R + np.eye(3)) / 2.0
    axis = B[:, int(np.argmax(np.linalg.norm(B, axis=0)))]
    return angle, axis / max(float(np.linalg.norm(axis)), 1e-12)


def format_rotation(R: Any) -> str:
    """``"123.4 deg about (0.12, -0.53, 0.84)"`` for one ``(3, 3)`` rotation."""
    angle, axis = rotation_angle_axis(R)
    return f"{angle:.1f} deg about ({axis[0]:.2f}, {axis[1]:.2f}, {axis[2]:.2f})"


def format_matrix(T: Any, indent: str = "  ") -> str:
    """A matrix as rows of 6-decimal numbers, one row a line, each line starting with ``indent``."""
    rows = ["[" + "  ".join(f"{v: .6f}" for v in row) + "]" for row in np.asarray(T)]
    return "\n".join(indent + r for r in rows)


def format_vector(v: Any) -> str:
    """``"(0.1234, -2, 3.5e-05)"``: a short vector with 4 significant digits."""
    return "(" + ", ".join(f"{x:.4g}" for x in np.asarray(v, dtype=np.float64).ravel()) + ")"
