"""Canonicalise a cloud given in arbitrary units (the ``canocaps canonicalize`` command).

The network sees ``num_points`` points of the cloud centred and scaled into the unit
sphere; the pose it finds is expressed back in the input's units as a *rigid*
transform, applied to every input point.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from canocaps.heads._inputs import as_points, min_points_of, model_device, normalization, subsample
from canocaps.heads.results import CanonicalizationResult

__all__ = ["canonicalize_cloud"]


def canonicalize_cloud(points: Any, model: Any = None, *, num_points: int | None = None, seed: int = 0,
                       device: Any = None, name: str = "points") -> CanonicalizationResult:
    """Canonical pose of one cloud, in the input's units.

    Args:
        points: ``(N, 3)`` cloud, any form :func:`canocaps.register` accepts.
        model: canonicaliser (None: the shipped weights).
        num_points: points fed to the network (default: the model's training N, else 1024).

    Returns:
        :class:`CanonicalizationResult`: ``transform`` ``(4, 4)`` rigid, input -> canonical;
        ``canonical_points`` ``(N, 3)`` all input points moved; capsule keypoints in the
        input frame and in the canonical frame (input units), descriptors, and the
        point-to-capsule assignment of the network's subsample.
    """
    import torch

    if model is None:
        from canocaps.pretrained import load_pretrained

        model = load_pretrained(device=device)
    p = as_points(points, name, min_points=min_points_of(model), seed=seed)
    n = num_points or int(getattr(getattr(model, "config", None), "num_points", 1024) or 1024)
    c, s = normalization(p)
    sub = subsample(p, n, seed)
    x = torch.as_tensor(((sub - c) / s)[None], dtype=torch.float32, device=model_device(model))
    with torch.no_grad():
        res = model.canonicalize(x)

    def np_(v: Any) -> np.ndarray | None:
        if v is None:
            return None
        return (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)).astype(np.float64)[0]

    R, t = np_(res.R), np_(res.t)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = s * t - R @ c  # canonical (input units) = R (x - c) + s t
    canon = (p.astype(np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.float32)
    kp = np_(getattr(res, "keypoints", None))
    ckp = None if kp is None else kp * s + c
    kp_canon = None if kp is None else (ckp @ T[:3, :3].T + T[:3, 3])
    desc = np_(getattr(res, "descriptors", None))
    assign = getattr(res, "assignment", None)
    assign_np = None if assign is None else np.asarray(assign.detach().cpu().numpy() if hasattr(assign, "detach") else assign)[0]
    return CanonicalizationResult(canonical_points=canon, transform=T, keypoints=ckp, canonical_keypoints=kp_canon,
                                  descriptors=desc, sample_points=sub, assignment=assign_np, scale=s)
