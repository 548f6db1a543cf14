"""Colours shared by the Open3D and matplotlib pictures."""
from __future__ import annotations

import numpy as np

# Distinct, colour-blind-friendly-ish capsule colours (tab10 then tab20's light variants).
_PALETTE = np.array([
    [0.122, 0.467, 0.706], [1.000, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
    [0.580, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
    [0.737, 0.741, 0.133], [0.090, 0.745, 0.812], [0.682, 0.780, 0.910], [1.000, 0.733, 0.471],
    [0.596, 0.875, 0.541], [1.000, 0.596, 0.588], [0.773, 0.690, 0.835], [0.769, 0.612, 0.580],
])

SOURCE = np.array([0.90, 0.40, 0.10])   # cloud A / input: orange
TARGET = np.array([0.10, 0.45, 0.85])   # cloud B / canonical / reference: blue
MOVED = np.array([0.20, 0.70, 0.25])    # A moved onto B: green


def capsule_colors(assignment: np.ndarray, num_capsules: int | None = None) -> np.ndarray:
    """RGB in [0, 1], shape (N, 3), for point-to-capsule labels ``assignment`` (N,) int."""
    assignment = np.asarray(assignment, dtype=np.int64)
    k = num_capsules or (int(assignment.max()) + 1 if assignment.size else 1)
    palette = palette_for(k)
    return palette[assignment % len(palette)]


def palette_for(k: int) -> np.ndarray:
    """(k, 3) colours; cycles through the palette past 16."""
    reps = int(np.ceil(k / len(_PALETTE)))
    return np.tile(_PALETTE, (reps, 1))[:k]
