"""The Canonical Capsules network (Sun et al., NeurIPS 2021).

points (B, N, 3) --Encoder--> features (B, N, C) --CapsulePooling--> attention (B, N, K),
keypoints mu (B, K, 3), descriptors beta (B, K, C) --Canonicalizer--> canonical
keypoints mu_bar, pose (R, t) with mu_bar ~= mu @ R^T + t --CapsuleDecoder--> decoded
cloud (B, K * (num_points // K), 3) in the canonical frame.

Two choices (``CapsulesConfig.encoder`` / ``.frame``): the paper's ACN encoder on
coordinates or the rotation-invariant encoder; the paper's Procrustes frame or the
learned moment frame (:mod:`canocaps.model.moment_frame`), in which case the canonical
keypoints are the keypoints moved by the frame (``mu @ R^T + t``).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from canocaps.errors import CanocapsInputError, CanocapsWeightsError
from canocaps.model.canonicalizer import Canonicalizer
from canocaps.model.capsules import CapsulePooling
from canocaps.model.checkpoint import read_weights, write_weights
from canocaps.model.config import CapsulesConfig
from canocaps.model.decoder import CapsuleDecoder
from canocaps.model.encoder import Encoder
from canocaps.model.invariant_encoder import InvariantEncoder
from canocaps.model.moment_frame import MomentFrame
from canocaps.model.results import CanonicalizeResult, CapsulesOutput, ReconstructResult

__all__ = ["CanonicalCapsules", "save_model", "load_model"]


class CanonicalCapsules(nn.Module):
    """Encoder + capsules + canonicaliser + decoder.

    ``forward`` is the differentiable training pass; ``canonicalize`` and
    ``reconstruct`` are the inference API (eval mode, no grad, input checks,
    unbatched in -> unbatched out, dtype/device of the input preserved).
    """

    def __init__(self, config: CapsulesConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else CapsulesConfig()
        cfg = self.config
        self.encoder: nn.Module = InvariantEncoder(cfg) if cfg.encoder == "invariant" else Encoder(cfg)
        self.capsules = CapsulePooling(cfg.feat_dim, cfg.num_capsules, cfg.routing_iterations, cfg.routing_init)
        self.canonicalizer: nn.Module = (MomentFrame(cfg.feat_dim, cfg.moment_weight_power, cfg.moment_sign_power,
                                                     cfg.moment_area_k)
                                         if cfg.frame == "moments"
                                         else Canonicalizer(cfg))
        self.decoder = CapsuleDecoder(self.config)

    # ----------------------------------------------------------------- training
    def forward(self, points: Tensor, decode: bool = True) -> CapsulesOutput:
        """Differentiable pass on points (B, N, 3) in the model's dtype/device."""
        nearest = self._shared_neighbours(points)
        feats = self.encoder(points) if nearest is None else self.encoder(points, nearest)
        pooled = self.capsules(points, feats)
        moments = None
        if isinstance(self.canonicalizer, MomentFrame):
            moments = self.canonicalizer(points, feats, nearest)
            R, t = moments.R, moments.t
            canon_kp = pooled.keypoints @ R.transpose(-1, -2) + t.unsqueeze(1)
        else:
            pose = self.canonicalizer(pooled.descriptors, pooled.keypoints, pooled.mass)
            R, t, canon_kp = pose.R, pose.t, pose.canonical_keypoints
        canon_pts = points @ R.transpose(-1, -2) + t.unsqueeze(1)
        decoded = self.decoder(pooled.descriptors, canon_kp) if decode else None
        return CapsulesOutput(
            features=feats, attention=pooled.attention, mass=pooled.mass, weights=pooled.weights,
            keypoints=pooled.keypoints, descriptors=pooled.descriptors,
            canonical_keypoints=canon_kp, R=R, t=t,
            canonical_points=canon_pts, decoded=decoded, moments=moments)

    def _shared_neighbours(self, points: Tensor) -> Any:
        """One kNN of ``points`` ``(B, N, 3)`` for both the invariant encoder and the area weights
        (:class:`canocaps.ops.KNN`, sorted, self included), or None where only one of them needs it."""
        area_k = getattr(self.canonicalizer, "area_k", 0)
        if not isinstance(self.encoder, InvariantEncoder) or area_k <= 0:
            return None
        from canocaps.ops import knn

        n = points.shape[1]
        k = min(n, max(2, self.encoder.k, area_k + 1))
        with torch.no_grad():
            return knn(points.detach(), points.detach(), k)

    # ---------------------------------------------------------------- inference
    @property
    def _param(self) -> Tensor:
        return next(self.parameters())

    def _prepare(self, points: Any, name: str = "points") -> tuple[Tensor, bool, torch.dtype, torch.device]:
        if isinstance(points, np.ndarray):
            if points.dtype not in (np.float32, np.float64, np.float16):
                raise CanocapsInputError(f"{name}: expected a float array, got dtype {points.dtype}")
            points = torch.from_numpy(np.ascontiguousarray(points))
        if not isinstance(points, Tensor):
            raise CanocapsInputError(f"{name}: expected a torch.Tensor or numpy array, got {type(points).__name__}")
        if not points.is_floating_point():
            raise CanocapsInputError(f"{name}: expected floating point values, got {points.dtype}")
        if points.ndim not in (2, 3) or points.shape[-1] != 3:
            raise CanocapsInputError(f"{name}: expected shape (N, 3) or (B, N, 3), got {tuple(points.shape)}")
        batched = points.ndim == 3
        x = points if batched else points.unsqueeze(0)
        k = self.config.num_capsules
        if x.shape[0] == 0:
            raise CanocapsInputError(f"{name}: empty batch")
        if x.shape[1] < k:
            raise CanocapsInputError(f"{name}: {x.shape[1]} points, need at least {k} (one per capsule)")
        if x.is_meta:
            raise CanocapsInputError(f"{name}: a meta tensor holds no data")
        if not bool(torch.isfinite(x).all()):
            raise CanocapsInputError(f"{name}: contains NaN or inf")
        if float(x.detach().abs().max()) > 1e15:  # moments (sums of squares) would overflow float32
            raise CanocapsInputError(f"{name}: coordinates up to {float(x.detach().abs().max()):.3g} overflow the "
                                     f"network's float32 moments (|x| <= 1e15); it expects clouds in the unit "
                                     f"sphere: canocaps.heads.canonical.canonicalize_cloud takes any units")
        p = self._param
        return x.to(device=p.device, dtype=p.dtype), batched, points.dtype, points.device

    @contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def canonicalize(self, points: Tensor | np.ndarray) -> CanonicalizeResult:
        """Bring ``points`` (N, 3) or (B, N, 3), any N >= K, into the canonical frame.

        Runs in eval mode under ``torch.no_grad``. Floating outputs come back in the
        input's dtype and on its device; unbatched input gives unbatched outputs.
        Raises :class:`CanocapsInputError` on a wrong shape, too few points, NaN/inf.
        """
        x, batched, dtype, device = self._prepare(points)
        with self._inference():
            out = self.forward(x, decode=False)

        def back(v: Tensor) -> Tensor:
            v = v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
            return v if batched else v[0]

        return CanonicalizeResult(
            canonical_points=back(out.canonical_points), R=back(out.R), t=back(out.t),
            keypoints=back(out.keypoints), canonical_keypoints=back(out.canonical_keypoints),
            descriptors=back(out.descriptors), attention=back(out.attention),
            assignment=back(out.attention.argmax(dim=-1)))

    def reconstruct(self, points: Tensor | np.ndarray) -> ReconstructResult:
        """Auto-encode ``points`` (N, 3) or (B, N, 3).

        Returns the decoded cloud, M = K * (num_points // K) points, in the canonical
        frame and moved back into the input frame (``(y - t) @ R``).
        """
        x, batched, dtype, device = self._prepare(points)
        with self._inference():
            out = self.forward(x, decode=True)
        assert out.decoded is not None
        back_pts = (out.decoded - out.t.unsqueeze(1)) @ out.R

        def back(v: Tensor) -> Tensor:
            v = v.to(device=device, dtype=dtype)
            return v if batched else v[0]

        return ReconstructResult(canonical=back(out.decoded), points=back(back_pts), R=back(out.R), t=back(out.t))

    # -------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, force: bool = False, metadata: dict[str, Any] | None = None) -> None:
        """Write weights + config to one file (atomic; no overwrite without ``force``)."""
        save_model(self, path, force=force, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "CanonicalCapsules":
        """Load a file written by :meth:`save`; raises :class:`CanocapsWeightsError` if bad."""
        return load_model(path, map_location=map_location)


def save_model(model: CanonicalCapsules, path: str | os.PathLike, force: bool = False,
               metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model`` weights (moved to CPU) + config atomically (format: :mod:`canocaps.model.checkpoint`)."""
    return write_weights(path, model.config, model.state_dict(), force=force, metadata=metadata)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> CanonicalCapsules:
    """Rebuild a :class:`CanonicalCapsules` from :func:`save_model` output (eval mode).

    Raises :class:`CanocapsWeightsError` (one line) when the file is missing, not a
    weights file, or does not match its config.
    """
    config, state, _ = read_weights(path, map_location=map_location)
    model = CanonicalCapsules(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "mismatch"
        raise CanocapsWeightsError(f"{Path(path)}: weights do not match the config ({first})") from None
    model.to(map_location)
    model.eval()
    return model
