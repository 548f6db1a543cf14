"""Reconstruction head: auto-encode a cloud through its canonical capsules.

Metric (official Canonical Capsules convention): Chamfer distance between the
canonicalised input and the decoded cloud, with *squared* Euclidean distances, the
*mean* over the points of each side, and the two directions *summed*. Clouds are in
the unit-sphere normalisation the network is trained in (inputs are centred and
scaled by their radius before encoding).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from canocaps.heads._data import batched, dataset_arrays, test_transforms
from canocaps.heads.frames import (inference_threads, min_points_of, model_device, network_points, prepare_inputs,
                                   resolve_model)
from canocaps.io import as_points

if TYPE_CHECKING:
    from canocaps.model.results import ReconstructionResult

__all__ = ["CHAMFER_CONVENTION", "reconstruct", "evaluate_reconstruction"]

#: the official Chamfer convention (the same string as :data:`canocaps.model.results.CHAMFER_CONVENTION`)
CHAMFER_CONVENTION = "squared, mean per direction, directions summed"


def _chamfer(x: Any, y: Any) -> Any:
    """Per-sample official Chamfer ``(B,)`` of tensors ``(B, N, 3)``, ``(B, M, 3)`` (:func:`canocaps.ops.chamfer`)."""
    from canocaps.ops import chamfer

    return chamfer(x, y, batch_reduction=None, point_reduction="mean")[0]


def reconstruct(points: Any, model: Any = None, *, num_points: int | None = None, seed: int = 0,
                device: Any = None) -> ReconstructionResult:
    """Canonicalise, encode and decode one cloud; measure the Chamfer distance.

    Args:
        points: ``(N, 3)`` cloud (anything :func:`canocaps.register` accepts).
        model: a :class:`canocaps.model.CanonicalCapsules`; None loads the shipped weights.
        num_points: points fed to the network (default the model's training N).
        seed: subsampling seed.

    Returns:
        :class:`~canocaps.model.results.ReconstructionResult` (numpy): ``canonical`` the
        decoded cloud and ``canonical_input`` the network's subsample, both in the
        normalised canonical frame; ``points`` the decoded cloud in the input's frame and
        units; ``transform`` the rigid pose (network units), ``similarity`` input units ->
        canonical frame (with ``scale``); ``num_input`` of the input's points were fed to
        the network (the model's training N: a larger cloud is subsampled, seeded).
    """
    import torch

    from canocaps.model.results import ReconstructionResult

    model = resolve_model(model, device)
    p = as_points(points, points if isinstance(points, str) else "points", min_points=min_points_of(model), seed=seed,
                  dtype=np.float64, pose=True)
    (inp,) = prepare_inputs([p], network_points(model, num_points), [seed])
    xt = torch.as_tensor(inp.x[None], device=model_device(model))
    with inference_threads(int(xt.shape[1])):
        rec = model.reconstruct(xt)
    R, t = rec.R[0].double().cpu(), rec.t[0].double().cpu()
    canon_in = xt[0].double().cpu() @ R.T + t
    decoded = rec.canonical[0].double().cpu()
    cd = float(_chamfer(canon_in[None], decoded[None])[0])
    D = inp.normalising
    T = np.eye(4)
    T[:3, :3] = R.numpy()
    T[:3, 3] = t.numpy()
    Ti = np.linalg.inv(T @ D)  # normalised canonical frame -> input units
    dec = decoded.numpy()
    return ReconstructionResult(canonical=dec.astype(np.float32),
                                points=(dec @ Ti[:3, :3].T + Ti[:3, 3]).astype(np.float32),
                                R=T[:3, :3].copy(), t=T[:3, 3].copy(),
                                canonical_input=canon_in.numpy().astype(np.float32), chamfer=cd,
                                convention=CHAMFER_CONVENTION, scale=float(inp.scale), normalising=D,
                                num_input_points=len(p))


def evaluate_reconstruction(model: Any, data: str = "procedural", split: str = "test", num_points: int = 1024,
                            limit: int | None = None, batch_size: int = 16, progress: bool = True,
                            dataset_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean official Chamfer over a dataset split (inputs moved by the fixed test transforms).

    Shape i is moved by the view-1 test transform ``T1[i mod M]`` (the official protocol:
    fixed transforms, first ``num_points`` points). Returns ``{"chamfer_mean", "chamfer_median",
    "shapes", "num_input", "num_decoded", "convention", "per_shape"}``.
    """
    import torch
    from tqdm.auto import tqdm

    pts, _ = dataset_arrays(data, split, num_points, limit, sampling="first", **(dataset_kwargs or {}))
    Ts, _ = test_transforms()
    dev = model_device(model)
    per: list[float] = []
    num_decoded = 0
    for sl in tqdm(batched(len(pts), batch_size), desc="reconstruction", disable=not progress, unit="batch"):
        idx = np.arange(sl.start, sl.stop)
        T = Ts[idx % len(Ts)]
        x = pts[sl] @ np.swapaxes(T[:, :3, :3], 1, 2) + T[:, None, :3, 3]
        xt = torch.as_tensor(x, dtype=torch.float32, device=dev)
        rec = model.reconstruct(xt)
        canon_in = xt @ rec.R.transpose(-1, -2) + rec.t[:, None]
        per += _chamfer(canon_in.double(), rec.canonical.double()).cpu().tolist()
        num_decoded = int(rec.canonical.shape[1])
    arr = np.asarray(per)
    return {"chamfer_mean": float(arr.mean()), "chamfer_median": float(np.median(arr)), "shapes": int(len(arr)),
            "num_input": int(pts.shape[1]), "num_decoded": num_decoded, "convention": CHAMFER_CONVENTION,
            "per_shape": arr.tolist()}
