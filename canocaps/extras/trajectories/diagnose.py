"""Teacher-forced diagnosis of the VRNN-family models on boids: do they reproduce the forces?

For every frame of real sequences the model's one-step prediction (decoder mean at the
prior's mean latent, teacher forcing, labelled intents for the macro model) is compared with
the real next position, through the *change of displacement* ``dv = (x_{t+1} - x_t) - (x_t - x_{t-1})``
projected on the direction of each simulator rule (:mod:`.boids`), in simulator units per frame:

- ``wall``: the radial component of dv (negative = turning back) by distance to the origin,
  ``[0, 1.5)``, ``[1.5, bound)``, ``[bound, inf)`` (the pull acts beyond ``bound`` = 2);
- ``neighbours``: the component of dv pointing away from the centroid of the neighbours within
  ``r_local`` (0.9), for agents inside ``bound``, per behaviour (unfriendly boids are pushed away,
  friendly ones pulled in).

``canocaps extras trajectories diagnose RUN [--split val] [--checkpoint C] [-n 256] [--latent L]``
prints the JSON. A model that has learned a rule has ``model`` close to ``real`` for it.
``--latent posterior`` takes the latent at the *posterior's* mean instead (it has seen the next
frame): if that is much closer to ``real`` than the prior's, z carries the rule and the prior
does not predict it; if both agree, the decoder itself misses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories import datasets
from canocaps.extras.trajectories.boids import BoidsConfig
from canocaps.extras.trajectories.models import TrajectoryModel


@torch.no_grad()
def one_step_predictions(net: TrajectoryModel, x: torch.Tensor, macro: torch.Tensor | None = None,
                         latent: str = "prior") -> torch.Tensor:
    """Teacher-forced predictions ``(B, T-1, A, 2)`` of frames 1..T-1 of ``x`` ``(B, T, 2A)`` (VRNN models):
    the decoder mean with z at the ``latent`` ("prior" or "posterior") mean."""
    core = getattr(net, "core", None)
    if core is None or not hasattr(core, "trace"):
        raise CanocapsInputError(f"{net.name}: no VRNN core to diagnose (VRNN-single, VRNN-indep, macro_vrnn only)")
    if latent not in ("prior", "posterior"):
        raise CanocapsInputError(f"latent must be 'prior' or 'posterior', got {latent!r}")
    core.trace, core.trace_latent = [], latent
    try:
        net.eval()
        net.loss_terms(x, macro)
        pred = torch.stack(core.trace, 1)  # (B, T-1, G, x)
    finally:
        core.trace, core.trace_latent = None, "prior"
    return pred.reshape(x.shape[0], x.shape[1] - 1, -1, 2)


def force_responses(real: np.ndarray, pred: np.ndarray, labels: np.ndarray,
                    config: BoidsConfig | None = None) -> dict[str, Any]:
    """Mean dv along each rule's direction, real and predicted (module doc).

    Args:
        real: ``(S, T, A, 2)`` real positions; pred: ``(S, T-1, A, 2)`` predictions of frames 1..T-1;
        labels: ``(S,)`` 1 friendly, 0 unfriendly.
    """
    cfg = config or BoidsConfig()
    prev = real[:, 1:-1] - real[:, :-2]  # displacement into frame t (t = 1..T-2)
    p = real[:, 1:-1]  # position at frame t
    dv_real = (real[:, 2:] - real[:, 1:-1]) - prev
    dv_pred = (pred[:, 1:] - real[:, 1:-1]) - prev  # pred[:, t] predicts frame t + 1
    r = np.linalg.norm(p, axis=-1)
    radial = p / np.maximum(r[..., None], 1e-9)
    out: dict[str, Any] = {"wall": [], "neighbours": []}
    for lo, hi in ((0.0, 1.5), (1.5, cfg.bound), (cfg.bound, np.inf)):
        m = (r >= lo) & (r < hi)
        out["wall"].append({"radius": [lo, None if np.isinf(hi) else hi], "n": int(m.sum()),
                            "real": _mean((dv_real * radial).sum(-1)[m]), "model": _mean((dv_pred * radial).sum(-1)[m])})
    diff = p[:, :, None] - p[:, :, :, None]  # [s, t, i, j] = p_j - p_i
    dist = np.linalg.norm(diff, axis=-1)
    local = (dist > 0) & (dist <= cfg.r_local)
    count = local.sum(-1)
    centroid = (diff * local[..., None]).sum(-2) / np.maximum(count, 1)[..., None]
    away = -centroid / np.maximum(np.linalg.norm(centroid, axis=-1, keepdims=True), 1e-9)
    for lab, name in ((0, "unfriendly"), (1, "friendly")):
        m = (count > 0) & (r < cfg.bound) & (np.asarray(labels)[:, None, None] == lab)
        out["neighbours"].append({"behaviour": name, "n": int(m.sum()), "real": _mean((dv_real * away).sum(-1)[m]),
                                  "model": _mean((dv_pred * away).sum(-1)[m])})
    return out


def _mean(v: np.ndarray) -> float | None:
    return float(v.mean()) if v.size else None


def diagnose_run(run_dir: str | Path, split: str = "val", n: int = 256, checkpoint: str | None = None,
                 latent: str = "prior") -> dict[str, Any]:
    """:func:`force_responses` of a trained boids run on the first ``n`` sequences of ``split``."""
    from canocaps.extras.trajectories.experiments import load_run

    net, record = load_run(run_dir, checkpoint)
    meta = datasets.read_meta(record["data_dir"])
    if n < 1:
        raise CanocapsInputError(f"-n must be >= 1, got {n}")
    if meta["dataset"] != "boids":
        raise CanocapsInputError("diagnose needs a boids run (it compares with the simulator's rules)")
    ds, _ = datasets.load_dataset(record["data_dir"], split, record.get("macro_lf"), limit=n)
    if ds.labels is None or int(ds.labels.min()) < 0:
        raise CanocapsInputError(f"split {split!r} has no behaviour labels")
    pred = one_step_predictions(net, ds.x, ds.macro if net.uses_macro else None, latent).numpy()
    real = ds.x.numpy().reshape(len(ds), ds.x.shape[1], -1, 2)
    cfg = BoidsConfig(**{k: v for k, v in meta["simulator"].items() if k in BoidsConfig.__dataclass_fields__})
    return {"run_dir": str(run_dir), "checkpoint": record["checkpoint"], "split": split, "n_sequences": len(ds),
            "latent": latent,
            **force_responses(real, pred, ds.labels.numpy(), cfg)}
