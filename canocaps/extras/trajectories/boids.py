"""A vectorised, seeded boids simulator with friendly / unfriendly flocks.

Our reading of Zhan et al. (ICLR 2019, appendix) and of the authors' generator
(``datasets/boids``): 8 agents, 50 frames, 2-D positions in arbitrary units (no
normalisation). Every sequence draws one behaviour, friendly (label 1) or unfriendly
(label 0), shared by all its agents. Per frame, every boid accumulates an acceleration

- cohesion  ``C_COH * s * clip(centroid_local - p)``   with s = +1 (friendly) or -1 (unfriendly),
- alignment ``C_ALI * clip(mean_vel_local)``,
- separation ``C_SEP * clip(p - centroid_close)``,
- return    ``C_ORI * unit(-p)`` when ``|p| > bound``,

where "local" neighbours lie within ``r_local`` and "close" ones within ``r_close``
(distance > 0), and ``clip`` rescales a vector to unit norm when its norm exceeds 1.
Then ``v <- clip(v + 0.5 clip(a))`` and ``p <- p + step_size * boost * v``. So friendly
boids are attracted to their neighbours' centroid and move as a flock; unfriendly boids
are pushed away from it. ``boost`` (a per-boid speed factor, 1 at start) is redrawn from
U(boost_min, boost_max) every ``stochastic_interval`` frames, and initial velocities are
N(0, I). The first frame is the fixed start layout ``0.8 * [(1,0), (-1,0), ...]``.

Consequences (tested): per-frame displacement <= ``step_size * boost_max`` (0.14);
positions are softly held near the disk of radius ``bound``.

Differences from the authors' script, on purpose: (1) their ``Boid`` uses a mutable
default ``acc=np.zeros(2)`` shared by every boid ever built, so the first update of
every sequence adds an acceleration accumulated over all earlier sequences; here each
boid's acceleration starts from zero at every frame. (2) We vectorise over sequences and
agents and seed a ``numpy.random.Generator``; the update order is the same (all
accelerations from the current state, then all velocities, then all positions).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from canocaps.errors import CanocapsInputError

FRIENDLY = 1
UNFRIENDLY = 0

START_LAYOUT = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)


@dataclass(frozen=True)
class BoidsConfig:
    """Simulator constants (defaults: the authors' ``datasets/boids/cfg.py``)."""

    n_agents: int = 8
    seq_len: int = 50
    start_scale: float = 0.8
    r_close: float = 0.2
    r_local: float = 0.9
    c_coh: float = 1.0
    c_sep: float = 0.1
    c_ali: float = 0.2
    c_ori: float = 1.0
    bound: float = 2.0
    boost_min: float = 0.8
    boost_max: float = 1.4
    step_size: float = 0.1
    stochastic_interval: int = 10
    friendly_prob: float = 0.5
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not 1 <= self.n_agents <= len(START_LAYOUT):
            raise CanocapsInputError(f"n_agents must be in [1, {len(START_LAYOUT)}], got {self.n_agents}")
        if self.seq_len < 2:
            raise CanocapsInputError(f"seq_len must be >= 2, got {self.seq_len}")
        if not 0.0 <= self.friendly_prob <= 1.0:
            raise CanocapsInputError(f"friendly_prob must be in [0, 1], got {self.friendly_prob}")

    @property
    def max_step(self) -> float:
        """Largest possible per-frame displacement of one boid (same units as positions)."""
        return self.step_size * self.boost_max

    def to_dict(self) -> dict:
        return asdict(self)


def clip_norm(v: np.ndarray, max_norm: float = 1.0) -> np.ndarray:
    """Rescale vectors (last axis) whose norm exceeds ``max_norm`` to norm ``max_norm``."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    scale = np.where(n > max_norm, max_norm / np.maximum(n, 1e-12), 1.0)
    return v * scale


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values (S, A, A, 2) of neighbour j for boid i, mask (S, A, A) -> mean (S, A, 2), has_any (S, A)."""
    count = mask.sum(-1)
    total = (values * mask[..., None]).sum(-2)
    return total / np.maximum(count, 1)[..., None], count > 0


def accelerations(pos: np.ndarray, vel: np.ndarray, sign: np.ndarray, cfg: BoidsConfig) -> np.ndarray:
    """Boids rule accelerations (before clipping).

    Args:
        pos, vel: ``(S, A, 2)`` positions and velocities.
        sign: ``(S,)`` +1 friendly, -1 unfriendly (the cohesion sign).
    Returns:
        ``(S, A, 2)`` summed accelerations.
    """
    diff = pos[:, None, :, :] - pos[:, :, None, :]  # [s, i, j] = p_j - p_i
    dist = np.linalg.norm(diff, axis=-1)
    local = (dist > 0) & (dist <= cfg.r_local)
    close = (dist > 0) & (dist <= cfg.r_close)
    S, A, _ = pos.shape
    others_pos = np.broadcast_to(pos[:, None, :, :], (S, A, A, 2))
    others_vel = np.broadcast_to(vel[:, None, :, :], (S, A, A, 2))

    acc = np.zeros_like(pos)
    centroid, has_local = _masked_mean(others_pos, local)
    mean_vel, _ = _masked_mean(others_vel, local)
    coh = sign[:, None, None] * clip_norm(centroid - pos)
    ali = clip_norm(mean_vel)
    acc += has_local[..., None] * (cfg.c_coh * coh + cfg.c_ali * ali)

    centroid_close, has_close = _masked_mean(others_pos, close)
    acc += has_close[..., None] * cfg.c_sep * clip_norm(pos - centroid_close)

    r = np.linalg.norm(pos, axis=-1, keepdims=True)
    outside = r > cfg.bound
    acc += outside * cfg.c_ori * clip_norm(-pos)
    return acc


def simulate(n_sequences: int, seed: int | np.random.SeedSequence = 0, config: BoidsConfig | None = None,
             behavior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Simulate boids flocks.

    Args:
        n_sequences: S, number of sequences.
        seed: seed of the ``numpy.random.Generator`` (same seed -> same output).
        config: simulator constants (default :class:`BoidsConfig`).
        behavior: optional ``(S,)`` labels (1 friendly, 0 unfriendly) to force;
            default: Bernoulli(``friendly_prob``) draws.
    Returns:
        ``positions (S, T, 2A)`` float32 laid out ``[x0, y0, x1, y1, ...]`` and
        ``labels (S,)`` int64 (1 friendly, 0 unfriendly).
    """
    cfg = config or BoidsConfig()
    cfg.validate()
    if n_sequences < 1:
        raise CanocapsInputError(f"n_sequences must be >= 1, got {n_sequences}")
    rng = np.random.default_rng(seed)
    S, A, T = n_sequences, cfg.n_agents, cfg.seq_len
    if behavior is None:
        labels = (rng.random(S) < cfg.friendly_prob).astype(np.int64)
    else:
        labels = np.asarray(behavior, dtype=np.int64).reshape(-1)
        if labels.shape != (S,) or not np.isin(labels, (0, 1)).all():
            raise CanocapsInputError(f"behavior must be {S} labels in {{0, 1}}")
    sign = np.where(labels == FRIENDLY, 1.0, -1.0)

    pos = np.broadcast_to(cfg.start_scale * START_LAYOUT[:A], (S, A, 2)).copy()
    vel = rng.standard_normal((S, A, 2))
    boost = np.ones((S, A))
    out = np.empty((S, T, A, 2), dtype=np.float64)
    out[:, 0] = pos
    for t in range(1, T):
        if cfg.stochastic_interval > 0 and t % cfg.stochastic_interval == 0:
            boost = rng.uniform(cfg.boost_min, cfg.boost_max, size=(S, A))
        acc = accelerations(pos, vel, sign, cfg)
        vel = clip_norm(vel + 0.5 * clip_norm(acc))
        pos = pos + cfg.step_size * boost[..., None] * vel
        out[:, t] = pos
    return out.reshape(S, T, 2 * A).astype(np.float32), labels


def simulate_reference(n_sequences: int, seed: int = 0, config: BoidsConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-boid loop version of :func:`simulate` (same RNG stream, same output); for tests."""
    cfg = config or BoidsConfig()
    cfg.validate()
    rng = np.random.default_rng(seed)
    S, A, T = n_sequences, cfg.n_agents, cfg.seq_len
    labels = (rng.random(S) < cfg.friendly_prob).astype(np.int64)
    vel_all = rng.standard_normal((S, A, 2))
    out = np.empty((S, T, A, 2))
    boosts = {}
    for t in range(1, T):
        if cfg.stochastic_interval > 0 and t % cfg.stochastic_interval == 0:
            boosts[t] = rng.uniform(cfg.boost_min, cfg.boost_max, size=(S, A))

    def clip(v: np.ndarray) -> np.ndarray:
        n = float(np.linalg.norm(v))
        return v / n if n > 1 else v

    for s in range(S):
        sgn = 1.0 if labels[s] == FRIENDLY else -1.0
        pos = [cfg.start_scale * START_LAYOUT[i].copy() for i in range(A)]
        vel = [vel_all[s, i].copy() for i in range(A)]
        boost = [1.0] * A
        out[s, 0] = np.array(pos)
        for t in range(1, T):
            if t in boosts:
                boost = list(boosts[t][s])
            accs = []
            for i in range(A):
                acc = np.zeros(2)
                loc = [j for j in range(A) if 0 < np.linalg.norm(pos[j] - pos[i]) <= cfg.r_local]
                if loc:
                    c = np.mean([pos[j] for j in loc], axis=0)
                    acc += cfg.c_coh * sgn * clip(c - pos[i])
                    acc += cfg.c_ali * clip(np.mean([vel[j] for j in loc], axis=0))
                cl = [j for j in range(A) if 0 < np.linalg.norm(pos[j] - pos[i]) <= cfg.r_close]
                if cl:
                    acc += cfg.c_sep * clip(pos[i] - np.mean([pos[j] for j in cl], axis=0))
                if np.linalg.norm(pos[i]) > cfg.bound:
                    acc += cfg.c_ori * clip(-pos[i])
                accs.append(acc)
            for i in range(A):
                vel[i] = clip(vel[i] + 0.5 * clip(accs[i]))
                pos[i] = pos[i] + cfg.step_size * boost[i] * vel[i]
            out[s, t] = np.array(pos)
    return out.reshape(S, T, 2 * A).astype(np.float32), labels


def mean_pairwise_distance(positions: np.ndarray, n_agents: int | None = None) -> np.ndarray:
    """Mean distance over agent pairs per frame.

    Args:
        positions: ``(S, T, 2A)`` (or ``(S, T, A, 2)``).
    Returns:
        ``(S, T)``.
    """
    p = _as_agents(positions)
    A = p.shape[2]
    d = np.linalg.norm(p[:, :, :, None, :] - p[:, :, None, :, :], axis=-1)
    iu = np.triu_indices(A, 1)
    return d[:, :, iu[0], iu[1]].mean(-1)


def _as_agents(positions: np.ndarray) -> np.ndarray:
    p = np.asarray(positions)
    if p.ndim == 4 and p.shape[-1] == 2:
        return p
    if p.ndim == 3 and p.shape[-1] % 2 == 0:
        return p.reshape(p.shape[0], p.shape[1], -1, 2)
    raise CanocapsInputError(f"positions must be (S, T, 2A) or (S, T, A, 2), got {p.shape}")
