"""The basketball (STATS SportVU) trajectory format of Zhan et al. and its normalisation.

Format: an ``.npz`` with key ``data``, shape ``(S, 50, 22)`` float, positions in feet:
columns 0-1 the ball (x, y), 2-11 the five offensive players (x1, y1, ..., x5, y5),
12-21 the five defenders. Court coordinates: x along the length (0..94 ft), y along the
width (0..50 ft); the possessions are mirrored onto the left half court (x in 0..47 ft).
Each sequence holds 50 frames (the 0.5 ft per-frame stationarity threshold is in feet per frame).

Normalisation, exactly as the authors' ``datasets/bball/core.py``
(``normalize(data) = (data - SHIFT) / NORMALIZE`` with ``SHIFT = [25] * 22`` and
``NORMALIZE = [94, 50] * 11``): every coordinate, x and y alike, is first shifted by
-25 ft, then x is divided by 94 and y by 50. So x in [0, 47] maps to [-0.266, 0.234] and
y in [0, 50] to [-0.5, 0.5]. :func:`unnormalize` inverts it.

Getting the data: it is not redistributable and cannot be downloaded here. Stats Perform
publishes it on AWS Data Exchange (see the authors' repository
``ezhan94/multiagent-programmatic-supervision``, README "Installation & Setup"); put
``bball_train.npz`` and ``bball_test.npz`` in a folder and run
``canocaps extras trajectories prepare-basketball --train bball_train.npz --test bball_test.npz -o DIR``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from canocaps.errors import CanocapsInputError

SEQ_LEN = 50
N_COLUMNS = 22
COURT_LENGTH = 94.0
COURT_WIDTH = 50.0
HALF_COURT_LENGTH = COURT_LENGTH / 2
SHIFT = 25.0
SCALE = np.array([COURT_LENGTH, COURT_WIDTH], dtype=np.float64)

BALL = slice(0, 2)
OFFENSE = slice(2, 12)
DEFENSE = slice(12, 22)
GROUPS = {"ball": BALL, "offense": OFFENSE, "defense": DEFENSE, "all": slice(0, 22)}


def load_basketball(path: str | Path, key: str = "data", seq_len: int | None = SEQ_LEN) -> np.ndarray:
    """Read and validate a basketball ``.npz``: returns ``(S, 50, 22)`` float32 feet.

    Raises :class:`CanocapsInputError` (one line naming the file) when the file is
    missing/unreadable, lacks ``key``, has the wrong shape, or holds NaN/inf.
    ``seq_len=None`` accepts any sequence length.
    """
    p = Path(path)
    if not p.is_file():
        raise CanocapsInputError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            if key not in z.files:
                raise CanocapsInputError(f"{p}: no key {key!r} (found: {', '.join(z.files) or 'none'})")
            data = np.asarray(z[key])
    except CanocapsInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CanocapsInputError(f"{p}: not a readable .npz ({exc.__class__.__name__})") from None
    want = f"(S, {seq_len if seq_len else 'T'}, {N_COLUMNS})"
    if data.ndim != 3 or data.shape[2] != N_COLUMNS or data.shape[0] < 1 or (seq_len and data.shape[1] != seq_len):
        raise CanocapsInputError(f"{p}: {key!r} must have shape {want}, got {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise CanocapsInputError(f"{p}: {key!r} must be numeric, got {data.dtype}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise CanocapsInputError(f"{p}: {key!r} contains NaN or inf")
    return data


def select(data: np.ndarray, group: str = "offense") -> np.ndarray:
    """Columns of one group: ``(S, T, 22)`` -> ``(S, T, 2k)`` (ball k=1, offense/defense k=5, all k=11)."""
    if group not in GROUPS:
        raise CanocapsInputError(f"unknown group {group!r} (choose from {', '.join(GROUPS)})")
    return data[..., GROUPS[group]]


def normalize(data: np.ndarray) -> np.ndarray:
    """``(..., 2k)`` feet -> ``(v - 25) / [94, 50, 94, 50, ...]`` (shift, then scale)."""
    d = np.asarray(data)
    return ((d - SHIFT) / np.tile(SCALE, d.shape[-1] // 2)).astype(d.dtype)


def unnormalize(data: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize`: ``v * [94, 50, ...] + 25``."""
    d = np.asarray(data)
    return (d * np.tile(SCALE, d.shape[-1] // 2) + SHIFT).astype(d.dtype)
