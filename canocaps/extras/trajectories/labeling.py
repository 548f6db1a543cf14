"""Labeling functions: programs that turn trajectories into macro-intent labels.

A labeling function (LF) maps positions ``(S, T, A, 2)`` in *raw units* (feet for
basketball, simulator units for boids) to int64 labels ``(S, T, A)`` in
``[0, num_classes)``. It has a ``name`` and a ``num_classes``. Write a new one with the
decorator; parameters become keyword arguments of :func:`get_labeling_function`::

    @register_labeling_function("quadrant")
    def quadrant(arena: str = "boids") -> LabelingFunction:
        def fn(positions):
            x, y = positions[..., 0], positions[..., 1]
            return ((x > 0) * 2 + (y > 0)).astype(np.int64)
        return make_labeling_function("quadrant", 4, fn)

Built-in LFs (the paper's two for basketball, plus one for boids):

- ``stationary``: the cell of the agent's *next stationary point*. Per-frame speed
  ``s_t = |p_{t+1} - p_t|`` (units per frame) for t < T-1; frame t is stationary when
  ``s_t < speed_threshold`` (0.5 ft per frame for basketball) and the last frame always
  is. An *anchor* is a frame t that is stationary while t+1 is not (the agent leaves the
  spot), or the last frame. The label at t is the cell of the first anchor at or after t.
  (Exactly the authors' ``compute_macro_intents_stationary``.)
- ``window``: the cell of the agent's position at the end of its ``window``-frame block:
  anchors are frames t with ``(t + 1) % window == 0`` and the last frame.
- ``flock``: boids friendliness, one label per sequence broadcast to all frames and
  agents: 1 (friendly) when the mean pairwise distance of the last frame is smaller than
  that of the first frame, else 0.

Grids (:class:`Grid`): cell index ``ix * ny + iy`` with positions clamped into the grid.
Basketball: 5 ft cells, ``nx = 9`` along the court length (x, 0..45 ft; the last 2 ft up
to the half-court line at 47 ft are clamped into column 8) by ``ny = 10`` along the width
(y, 0..50 ft): 90 classes, as the authors' ``N_MACRO_X = 9, N_MACRO_Y = 10``. Boids:
the square [-2.5, 2.5]^2 in 0.5 cells, 10 x 10 = 100 classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from canocaps.errors import CanocapsInputError


@runtime_checkable
class LabelingFunction(Protocol):
    """``(S, T, A, 2)`` float positions -> ``(S, T, A)`` int64 labels in ``[0, num_classes)``."""

    name: str
    num_classes: int

    def __call__(self, positions: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _LF:
    name: str
    num_classes: int
    fn: Callable[[np.ndarray], np.ndarray]
    params: tuple = ()

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        p = as_agent_positions(positions)
        out = np.asarray(self.fn(p))
        if out.shape != p.shape[:3]:
            raise CanocapsInputError(f"labeling function {self.name} returned {out.shape}, expected {p.shape[:3]}")
        out = out.astype(np.int64)
        if out.size and (out.min() < 0 or out.max() >= self.num_classes):
            raise CanocapsInputError(f"labeling function {self.name} returned labels outside [0, {self.num_classes})")
        return out


def make_labeling_function(name: str, num_classes: int, fn: Callable[[np.ndarray], np.ndarray],
                           **params: Any) -> LabelingFunction:
    """Wrap ``fn`` (positions ``(S, T, A, 2)`` -> ``(S, T, A)``) with shape/range checks."""
    return _LF(name, int(num_classes), fn, tuple(sorted(params.items())))


_REGISTRY: dict[str, Callable[..., LabelingFunction]] = {}


def register_labeling_function(name: str) -> Callable[[Callable[..., LabelingFunction]], Callable[..., LabelingFunction]]:
    """Decorator registering a factory ``(**params) -> LabelingFunction`` under ``name``."""

    def deco(factory: Callable[..., LabelingFunction]) -> Callable[..., LabelingFunction]:
        if name in _REGISTRY:
            raise ValueError(f"labeling function {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def build_by_name(table: dict[str, Any], name: str, what: str, params_word: str = "parameters",
                  **params: Any) -> Any:
    """``table[name](**params)``; an unknown name or parameters the factory rejects are one-line
    :class:`CanocapsInputError`s naming ``what`` ("labeling function", "model", ...) and
    ``params_word`` ("parameters", "hyper-parameters")."""
    if name not in table:
        raise CanocapsInputError(f"unknown {what} {name!r} (choose from {', '.join(sorted(table))})")
    try:
        return table[name](**params)
    except TypeError as exc:
        raise CanocapsInputError(f"bad {params_word} for {what} {name!r}: {exc}") from None


def get_labeling_function(name: str, **params: Any) -> LabelingFunction:
    """Build the registered LF ``name`` with ``params`` (e.g. ``window=8``, ``arena="basketball"``)."""
    return build_by_name(_REGISTRY, name, "labeling function", **params)


def list_labeling_functions() -> list[str]:
    return sorted(_REGISTRY)


def as_agent_positions(positions: np.ndarray) -> np.ndarray:
    """``(S, T, 2A)`` or ``(S, T, A, 2)`` -> ``(S, T, A, 2)`` float64 (finite)."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim == 3 and p.shape[-1] % 2 == 0 and p.shape[-1] > 0:
        p = p.reshape(p.shape[0], p.shape[1], -1, 2)
    if p.ndim != 4 or p.shape[-1] != 2:
        raise CanocapsInputError(f"positions must be (S, T, 2A) or (S, T, A, 2), got {np.shape(positions)}")
    if not np.isfinite(p).all():
        raise CanocapsInputError("positions contain NaN or inf")
    return p


# --- grids ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """Axis-aligned grid of ``nx x ny`` square cells of side ``cell`` from corner ``(x0, y0)``.

    ``index(p) = ix * ny + iy`` with ``ix = floor((x - x0) / cell)`` clamped to
    ``[0, nx - 1]`` (same for y): positions outside the grid map to the nearest cell.
    """

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @property
    def num_cells(self) -> int:
        return self.nx * self.ny

    def index(self, positions: np.ndarray) -> np.ndarray:
        """``(..., 2)`` -> ``(...)`` int64 cell indices."""
        p = np.asarray(positions, dtype=np.float64)
        ix = np.clip(np.floor((p[..., 0] - self.x0) / self.cell), 0, self.nx - 1).astype(np.int64)
        iy = np.clip(np.floor((p[..., 1] - self.y0) / self.cell), 0, self.ny - 1).astype(np.int64)
        return ix * self.ny + iy

    def center(self, index: np.ndarray) -> np.ndarray:
        """Cell centres ``(..., 2)`` of indices ``(...)``."""
        idx = np.asarray(index)
        ix, iy = idx // self.ny, idx % self.ny
        return np.stack([self.x0 + (ix + 0.5) * self.cell, self.y0 + (iy + 0.5) * self.cell], -1)


GRIDS: dict[str, Grid] = {
    "basketball": Grid(0.0, 0.0, 5.0, 9, 10),
    "boids": Grid(-2.5, -2.5, 0.5, 10, 10),
}

SPEED_THRESHOLDS = {"basketball": 0.5, "boids": 0.05}


def _grid(arena: str) -> Grid:
    if arena not in GRIDS:
        raise CanocapsInputError(f"unknown arena {arena!r} (choose from {', '.join(GRIDS)})")
    return GRIDS[arena]


def next_anchor_index(anchor: np.ndarray) -> np.ndarray:
    """For boolean anchors ``(..., T)`` (last frame must be True), the index of the first
    anchor at or after each t, ``(..., T)`` int64."""
    T = anchor.shape[-1]
    idx = np.where(anchor, np.arange(T), T)
    return np.minimum.accumulate(idx[..., ::-1], axis=-1)[..., ::-1]


def stationary_anchors(positions: np.ndarray, speed_threshold: float) -> np.ndarray:
    """Anchors of the ``stationary`` LF: ``(S, T, A, 2)`` -> bool ``(S, T, A)``."""
    p = as_agent_positions(positions)
    speed = np.linalg.norm(p[:, 1:] - p[:, :-1], axis=-1)  # (S, T-1, A)
    stationary = np.concatenate([speed < speed_threshold, np.ones_like(speed[:, :1], dtype=bool)], 1)
    anchor = np.zeros_like(stationary)
    anchor[:, :-1] = stationary[:, :-1] & ~stationary[:, 1:]
    anchor[:, -1] = True
    return anchor


def _label_at_anchors(p: np.ndarray, anchor: np.ndarray, grid: Grid) -> np.ndarray:
    nxt = next_anchor_index(np.moveaxis(anchor, 1, -1))  # (S, A, T)
    nxt = np.moveaxis(nxt, -1, 1)  # (S, T, A)
    target = np.take_along_axis(p, nxt[..., None], axis=1)  # (S, T, A, 2)
    return grid.index(target)


@register_labeling_function("stationary")
def stationary(arena: str = "basketball", speed_threshold: float | None = None) -> LabelingFunction:
    """Next-stationary-point LF on the arena grid (threshold in units per frame)."""
    grid = _grid(arena)
    thr = SPEED_THRESHOLDS[arena] if speed_threshold is None else float(speed_threshold)
    if not thr > 0:
        raise CanocapsInputError(f"speed_threshold must be > 0, got {thr}")

    def fn(p: np.ndarray) -> np.ndarray:
        return _label_at_anchors(p, stationary_anchors(p, thr), grid)

    return make_labeling_function("stationary", grid.num_cells, fn, arena=arena, speed_threshold=thr)


@register_labeling_function("window")
def window(window: int = 10, arena: str = "boids") -> LabelingFunction:
    """Cell of the position at the end of each ``window``-frame block."""
    grid = _grid(arena)
    w = int(window)
    if w < 1:
        raise CanocapsInputError(f"window must be >= 1, got {window}")

    def fn(p: np.ndarray) -> np.ndarray:
        S, T, A, _ = p.shape
        t = np.arange(T)
        anchor = ((t + 1) % w == 0) | (t == T - 1)
        return _label_at_anchors(p, np.broadcast_to(anchor[None, :, None], (S, T, A)), grid)

    return make_labeling_function("window", grid.num_cells, fn, arena=arena, window=w)


@register_labeling_function("flock")
def flock() -> LabelingFunction:
    """Boids friendliness: 1 when the flock's mean pairwise distance shrinks (last vs first frame)."""

    def fn(p: np.ndarray) -> np.ndarray:
        S, T, A, _ = p.shape
        iu = np.triu_indices(A, 1)
        d = np.linalg.norm(p[:, :, :, None] - p[:, :, None, :], axis=-1)[:, :, iu[0], iu[1]].mean(-1)
        friendly = (d[:, -1] < d[:, 0]).astype(np.int64)
        return np.broadcast_to(friendly[:, None, None], (S, T, A)).copy()

    return make_labeling_function("flock", 2, fn)


# --- naive references (per-agent loops mirroring the authors' code; for tests) -------------------


def stationary_reference(track: np.ndarray, grid: Grid, speed_threshold: float) -> np.ndarray:
    """One agent's track ``(T, 2)`` -> labels ``(T,)``, by the authors' backward recursion."""
    T = len(track)
    speed = np.linalg.norm(track[1:] - track[:-1], axis=-1)
    stationary_ = np.append(speed < speed_threshold, True)
    out = np.zeros(T, dtype=np.int64)
    for t in reversed(range(T)):
        if t + 1 == T or (stationary_[t] and not stationary_[t + 1]):
            out[t] = grid.index(track[t])
        else:
            out[t] = out[t + 1]
    return out


def window_reference(track: np.ndarray, grid: Grid, window: int) -> np.ndarray:
    T = len(track)
    out = np.zeros(T, dtype=np.int64)
    for t in reversed(range(T)):
        out[t] = grid.index(track[t]) if (t + 1) % window == 0 or t + 1 == T else out[t + 1]
    return out
