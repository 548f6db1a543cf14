"""Canonicalise a cloud given in arbitrary units (the ``canocaps canonicalize`` command).

The network sees ``num_points`` points of the cloud centred and scaled into the unit
sphere; the pose it finds is expressed back in the input's units as a *rigid*
transform, applied to every input point.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from canocaps.heads.frames import canonicalize_in_input_units, min_points_of, resolve_model
from canocaps.io import as_points

if TYPE_CHECKING:
    from canocaps.model.results import CanonicalizationResult

__all__ = ["canonicalize_cloud"]


def canonicalize_cloud(points: Any, model: Any = None, *, num_points: int | None = None, seed: int = 0,
                       device: Any = None, name: str = "points") -> CanonicalizationResult:
    """Canonical pose of one cloud, in the input's units.

    Args:
        points: ``(N, 3)`` cloud, any form :func:`canocaps.io.as_points` accepts.
        model: canonicaliser (None: the shipped weights).
        num_points: points fed to the network (default: the model's training N, else 1024).

    Returns:
        :class:`~canocaps.model.results.CanonicalizationResult` (numpy): ``R``, ``t`` and
        ``transform`` ``(4, 4)`` rigid, input -> canonical;
        ``canonical_points`` ``(N, 3)`` all input points moved; capsule keypoints in the
        input frame and in the canonical frame (input units), descriptors, and the
        point-to-capsule assignment of the network's subsample.
    """
    from canocaps.model.results import CanonicalizationResult

    model = resolve_model(model, device)
    p = as_points(points, name, min_points=min_points_of(model), seed=seed, dtype=np.float64, pose=True)
    (f,) = canonicalize_in_input_units(model, [p], num_points=num_points, seeds=[seed])
    T = f.transform
    canon = (p @ T[:3, :3].T + T[:3, 3]).astype(np.float32)  # float64 until here
    assert f.inputs is not None
    return CanonicalizationResult(canonical_points=canon, R=T[:3, :3].copy(), t=T[:3, 3].copy(), keypoints=f.keypoints,
                                  canonical_keypoints=f.canonical_keypoints, descriptors=f.descriptors,
                                  sample_points=f.inputs.sample, assignment=f.assignment, scale=f.inputs.scale)
