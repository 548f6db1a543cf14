"""Result containers of :class:`canocaps.model.CanonicalCapsules`."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = ["CapsulesOutput", "CanonicalizeResult", "ReconstructResult"]


@dataclass
class CapsulesOutput:
    """Everything one differentiable forward pass computes (batched, model dtype).

    Attributes (B shapes, N points, K capsules, C channels, M = K * (num_points // K)):
        features: (B, N, C) encoder features.
        attention: (B, N, K) point-to-capsule attention, softmax over K.
        mass: (B, K) sum_n attention (points).
        weights: (B, N, K) attention / max(mass, 1e-3).
        keypoints: (B, K, 3) capsule poses in the input frame.
        descriptors: (B, K, C) capsule descriptors.
        canonical_keypoints: (B, K, 3) regressed, centred.
        R: (B, 3, 3), t: (B, 3) input frame -> canonical frame (``x @ R^T + t``).
        canonical_points: (B, N, 3) the input in the canonical frame.
        decoded: (B, M, 3) reconstruction in the canonical frame (None if not decoded).
        moments: the :class:`~canocaps.model.moment_frame.MomentPose` of a moment-frame
            model (None for the Procrustes frame).
    """

    features: Tensor
    attention: Tensor
    mass: Tensor
    weights: Tensor
    keypoints: Tensor
    descriptors: Tensor
    canonical_keypoints: Tensor
    R: Tensor
    t: Tensor
    canonical_points: Tensor
    decoded: Optional[Tensor] = None
    moments: Optional[Any] = None


def _transform(R: Any, t: Any) -> Any:
    if isinstance(R, np.ndarray):
        T = np.zeros(R.shape[:-2] + (4, 4), dtype=R.dtype)
        T[..., :3, :3] = R
        T[..., :3, 3] = t
        T[..., 3, 3] = 1
        return T
    T = torch.zeros(R.shape[:-2] + (4, 4), dtype=R.dtype, device=R.device)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1
    return T


class _ArrayResult:
    def numpy(self) -> Any:
        """The same result with every tensor as a numpy array (on the CPU)."""
        conv = {f.name: (v.detach().cpu().numpy() if isinstance(v := getattr(self, f.name), Tensor) else v)
                for f in fields(self)}  # type: ignore[arg-type]
        return replace(self, **conv)  # type: ignore[type-var]


@dataclass
class CanonicalizeResult(_ArrayResult):
    """Output of :meth:`CanonicalCapsules.canonicalize`.

    Shapes are batched (leading B) when the input was (B, N, 3) and unbatched when it
    was (N, 3). Floating outputs have the input's dtype and device.

    Attributes:
        canonical_points: (B, N, 3) the input moved into the canonical frame, ``x @ R^T + t``.
        R: (B, 3, 3) rotation, input frame -> canonical frame.
        t: (B, 3) translation (same units as the points).
        keypoints: (B, K, 3) capsule keypoints in the input frame.
        canonical_keypoints: (B, K, 3) regressed canonical keypoints (canonical frame).
        descriptors: (B, K, C) rotation-invariant capsule descriptors.
        attention: (B, N, K) point-to-capsule attention (rows sum to 1).
        assignment: (B, N) int64, argmax capsule of each point.
    """

    canonical_points: Any
    R: Any
    t: Any
    keypoints: Any
    canonical_keypoints: Any
    descriptors: Any
    attention: Any
    assignment: Any

    @property
    def transform(self) -> Any:
        """(B, 4, 4) homogeneous transform input -> canonical (``[R t; 0 1]``)."""
        return _transform(self.R, self.t)


@dataclass
class ReconstructResult(_ArrayResult):
    """Output of :meth:`CanonicalCapsules.reconstruct`.

    Attributes:
        canonical: (B, M, 3) decoded cloud in the canonical frame, M = K * (num_points // K).
        points: (B, M, 3) the same cloud moved back into the input frame, ``(y - t) @ R``.
        R: (B, 3, 3), t: (B, 3) the canonicalising pose.
    """

    canonical: Any
    points: Any
    R: Any
    t: Any

    @property
    def transform(self) -> Any:
        """(B, 4, 4) homogeneous transform input -> canonical."""
        return _transform(self.R, self.t)
