#!/usr/bin/env python
"""Why the per-agent trajectory models miss the boids' unfriendly repulsion: the Gaussian NLL.

Outside any VRNN, one small network (a DeepSets neighbour sum ``sum_j phi(p_j - p_i, v_j - v_i,
intent)``, ``phi`` two ReLU layers of width 32, then a two-layer ReLU MLP of width 32 on own
position, own displacement, the sum and the intent; weights shared by the agents) regresses each
agent's change of displacement ``dv = x_{t+1} - 2 x_t + x_{t-1}`` on a boids data folder
(``simulate``; displacements scaled by 10 as the models' ``velocity_scale``). Three losses:

* ``mse``: least squares on the mean;
* ``nll``: Gaussian NLL with a learned std (softplus + 1e-3, the models' decoders);
* ``faithful``: the mean by least squares, the std by the NLL at the detached mean from
  detached features (:func:`canocaps.extras.trajectories.models.common.faithful_gaussian_nll`).

``--target step`` regresses the next displacement ``x_{t+1} - x_t`` instead, with the models'
bounded mean ``0.2 tanh(.)``: the network must then also carry the momentum (the report is
still on dv = prediction minus the previous displacement).

After each epoch it prints, on the validation split, for agents inside radius 2 with a neighbour
within 0.9 (as ``diagnose``), per behaviour: the real and predicted component of dv pointing away
from the neighbours' centroid, and the R^2 of the predicted dv.

    python tools/study_trajectories_nll.py DATA --loss nll --epochs 4
    python tools/study_trajectories_nll.py DATA --loss faithful --epochs 4 --target step

One CPU core: about 8 s per epoch on 2048 training sequences.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def load(data: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(S, T, A, 2)`` positions and ``(S,)`` labels (1 friendly) of a boids split."""
    with np.load(data / f"{split}.npz") as d:
        x, y = d["data"], d["label"]
    return x.reshape(x.shape[0], x.shape[1], -1, 2).astype(np.float32), y


def features(x: np.ndarray, labels: np.ndarray, target: str = "dv") -> list[torch.Tensor]:
    """Per agent-frame (frames 1..T-2): own position (N, 2), own displacement x 10 (N, 2), the
    others' relative positions and displacements (N, A, 2) each (self = 0), intent (N, 1); the
    target (N, 2): dv, or the next displacement (``target="step"``)."""
    p, v = x[:, 1:-1], (x[:, 1:-1] - x[:, :-2]) * 10
    dv = x[:, 2:] - x[:, 1:-1] if target == "step" else x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    S, T, A, _ = p.shape
    rel, relv = p[:, :, None] - p[:, :, :, None], v[:, :, None] - v[:, :, :, None]  # [s, t, i, j] = p_j - p_i
    intent = np.broadcast_to(labels[:, None, None, None].astype(np.float32), (S, T, A, 1))
    return [torch.from_numpy(np.ascontiguousarray(a).reshape(S * T * A, *a.shape[3:])) for a in (p, v, rel, relv, intent, dv)]


class Regressor(nn.Module):
    """DeepSets regressor of dv; ``(mean, std)`` with the std from its own MLP when ``separate_std``."""

    def __init__(self, width: int = 32, separate_std: bool = False, step: bool = False) -> None:
        super().__init__()
        self.step = step
        self.phi = nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())

        def mlp() -> nn.Module:
            return nn.Sequential(nn.Linear(5 + width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())

        self.body, self.mean = mlp(), nn.Linear(width, 2)
        self.std_body = mlp() if separate_std else None
        self.std = nn.Linear(width, 2)

    def forward(self, p, v, rel, relv, intent) -> tuple[torch.Tensor, torch.Tensor]:
        A = rel.shape[1]
        mask = (rel.abs().sum(-1, keepdim=True) > 0).float()  # drop the agent itself
        pooled = (self.phi(torch.cat([rel, relv, intent[:, None].expand(-1, A, 1)], -1)) * mask).sum(1)
        inp = torch.cat([p, v, pooled, intent], -1)
        h = self.body(inp)
        hs = h if self.std_body is None else self.std_body(inp.detach())
        mean = 0.2 * torch.tanh(self.mean(h)) if self.step else 0.05 * self.mean(h)
        return mean, F.softplus(self.std(hs)) + 1e-3


def loss_fn(kind: str, mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "mse":
        return ((mean - y) ** 2).mean()
    nll_at = lambda m: 0.5 * ((y - m) / std) ** 2 + torch.log(std)  # noqa: E731
    if kind == "nll":
        return nll_at(mean).mean()
    return (0.5 * (mean - y) ** 2 / (std.detach() ** 2).mean() + nll_at(mean.detach())).mean()


def away_report(x: np.ndarray, labels: np.ndarray, pred: np.ndarray, dv: np.ndarray) -> dict[str, dict[str, float]]:
    p = x[:, 1:-1]
    diff = p[:, :, None] - p[:, :, :, None]
    local = (np.linalg.norm(diff, axis=-1) > 0) & (np.linalg.norm(diff, axis=-1) <= 0.9)
    count = local.sum(-1)
    centroid = (diff * local[..., None]).sum(-2) / np.maximum(count, 1)[..., None]
    away = -centroid / np.maximum(np.linalg.norm(centroid, axis=-1, keepdims=True), 1e-9)
    inside = np.linalg.norm(p, axis=-1) < 2
    out = {}
    for lab, name in ((0, "unfriendly"), (1, "friendly")):
        m = (count > 0) & inside & (labels[:, None, None] == lab)
        r2 = 1 - ((pred - dv)[m] ** 2).sum() / ((dv[m] - dv[m].mean(0)) ** 2).sum()
        out[name] = {"away_real": float((dv * away).sum(-1)[m].mean()),
                     "away_pred": float((pred * away).sum(-1)[m].mean()), "r2": float(r2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a boids data folder (simulate)")
    ap.add_argument("--loss", choices=("mse", "nll", "faithful"), default="nll")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=1024, help="agent-frames per step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=("dv", "step"), default="dv")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    train = features(*load(args.data, "train"), args.target)
    xv, lv = load(args.data, "val")
    val = features(xv, lv)  # dv
    net = Regressor(separate_std=args.loss == "faithful", step=args.target == "step")
    opt = torch.optim.Adam(net.parameters(), args.lr)
    n, t0, step = train[0].shape[0], time.time(), 0
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(n).split(args.batch_size):
            mean, std = net(*[a[idx] for a in train[:5]])
            loss = loss_fn(args.loss, mean, std, train[5][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        with torch.no_grad():
            pred = net(*val[:5])[0].numpy().reshape(xv.shape[0], xv.shape[1] - 2, xv.shape[2], 2)
        if args.target == "step":  # predicted dv = predicted step - previous step
            pred = pred - (xv[:, 1:-1] - xv[:, :-2])
        rep = away_report(xv, lv, pred, val[5].numpy().reshape(pred.shape))
        print(json.dumps({"loss": args.loss, "lr": args.lr, "target": args.target, "epoch": epoch, "steps": step,
                          "seconds": round(time.time() - t0, 1), **rep}), flush=True)


if __name__ == "__main__":
    main()
