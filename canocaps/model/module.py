"""The trainer module of Canonical Capsules: two views, six losses, validation metrics.

:class:`CapsulesTrainModule` follows the trainer protocol (:class:`canocaps.train.TrainModule`):
every batch of shapes is seen twice under two random SE(3) transforms drawn on the batch's
device by :class:`canocaps.data.pairs.SE3PairSampler` (known relative pose T12), the
two views go through the network as one 2B batch, and the six losses are weighted by
``config.loss_weights``. Validation reports the losses and the metrics of
:func:`pair_metrics` with pairs drawn from a generator seeded by the dataset indices
(the same pairs at every evaluation).

Wiring this module to data and the trainer (run configs, ``run_training``, evaluation,
export) is the run recipe :mod:`canocaps.recipes.capsules`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from canocaps.errors import CanocapsInputError
from canocaps.model import losses as L
from canocaps.model.config import CapsulesConfig
from canocaps.model.network import CanonicalCapsules
from canocaps.model.results import CapsulesOutput

__all__ = ["CapsulesTrainModule", "compute_losses", "pair_metrics", "canonical_agreement",
           "baseline_pair_metrics", "DEFAULT_PAIRS"]

#: default SE(3) pair sampling: full SO(3), translation U(-0.2, 0.2)^3, no noise
DEFAULT_PAIRS: dict[str, Any] = {"max_angle_deg": 180.0, "max_translation": 0.2, "noise_std": 0.0}


def _sampler(pairs: Mapping[str, Any] | None) -> Any:
    from canocaps.data.pairs import SE3PairSampler

    return SE3PairSampler(**dict(pairs or DEFAULT_PAIRS))


def _split(out: CapsulesOutput, b: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    keys = ("keypoints", "descriptors", "R", "t")
    return ({k: getattr(out, k)[:b] for k in keys}, {k: getattr(out, k)[b:] for k in keys})


def compute_losses(out: CapsulesOutput, points: Tensor, R12: Tensor, t12: Tensor,
                   reconstruction_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """The six losses of a 2B-batch forward ``out`` of ``points`` = cat(view1, view2) (2B, N, 3).

    ``reconstruction_fn`` replaces :func:`losses.reconstruction_loss` (benchmarks).
    """
    b = points.shape[0] // 2
    v1, v2 = _split(out, b)
    assert out.decoded is not None
    recon = reconstruction_fn or L.reconstruction_loss
    losses = {
        "reconstruction": recon(out.canonical_points, out.decoded),
        "localization": L.localization_loss(points, out.weights, out.keypoints),
        "equilibrium": L.equilibrium_loss(out.mass),
        "equivariance": L.equivariance_loss(v1["keypoints"], v2["keypoints"], R12, t12),
        "invariance": L.invariance_loss(v1["descriptors"], v2["descriptors"]),
        "canonical": L.canonical_loss(out.keypoints, out.canonical_keypoints, out.R, out.t),
    }
    if out.moments is not None:  # the learned moment frame: how far the two views' frames disagree
        mo = out.moments
        v1m, v2m = type(mo)(*(x[:b] for x in mo)), type(mo)(*(x[b:] for x in mo))
        losses["frame_stability"] = L.frame_stability_loss(v1m, v2m, points[:b], points[b:], R12)
        losses["frame_conditioning"] = L.frame_conditioning_loss(mo.eigenvalues, mo.skew)
        losses["frame_weights"] = L.weight_regularizer(mo.weights, mo.sign_weights)
    return losses


@torch.no_grad()
def pair_metrics(out: CapsulesOutput, points: Tensor, R12: Tensor, t12: Tensor) -> dict[str, Tensor]:
    """Per-pair quality figures of a 2B-batch forward (each a (B,) tensor).

    - ``equivariance_deg``: angle (degrees) between the canonical frames of the two
      views once the known relative rotation is accounted for,
      ``RRE(R2 @ R12, R1)`` (0 for a perfectly consistent canonicaliser).
    - ``keypoint_error``: mean over capsules of ``||R12 mu1_k + t12 - mu2_k||``
      divided by the shape radius (max distance of view-1 points from their centroid).
    - ``keypoint_equivariance_deg``: the same error as an angle: the rotation (degrees)
      of the rigid fit (uniform Procrustes) of the moved view-1 keypoints
      ``R12 mu1 + t12`` onto view 2's keypoints (0 when they agree up to translation).
    - ``invariance_error``: ``||beta1 - beta2||_F / (0.5 (||beta1||_F + ||beta2||_F))``.
    - ``chamfer``: reconstruction Chamfer of view 1 (squared, mean per direction,
      directions summed), per shape.
    - ``canonical_agreement``: :func:`canonical_agreement` of the two canonical clouds
      (radius units; symmetry-blind where ``equivariance_deg`` is not).
    """
    from canocaps.geometry import rotation_error_deg, weighted_procrustes
    from canocaps.ops import chamfer

    b = points.shape[0] // 2
    v1, v2 = _split(out, b)
    rre = rotation_error_deg(v2["R"] @ R12, v1["R"])
    moved = v1["keypoints"] @ R12.transpose(-1, -2) + t12.unsqueeze(1)
    p1 = points[:b]
    radius = _radius(p1).clamp_min(1e-12)
    kp = (moved - v2["keypoints"]).norm(dim=-1).mean(dim=1) / radius
    R_fit, _ = weighted_procrustes(moved, v2["keypoints"])
    kp_deg = rotation_error_deg(R_fit, torch.eye(3, dtype=R_fit.dtype, device=R_fit.device).expand_as(R_fit))
    d1, d2 = v1["descriptors"].flatten(1), v2["descriptors"].flatten(1)
    inv = (d1 - d2).norm(dim=1) / (0.5 * (d1.norm(dim=1) + d2.norm(dim=1))).clamp_min(1e-12)
    assert out.decoded is not None
    cd, _ = chamfer(out.canonical_points[:b], out.decoded[:b], point_reduction="mean", batch_reduction=None,
                    squared=True)
    agree = canonical_agreement(out.canonical_points[:b], out.canonical_points[b:], radius)
    return {"equivariance_deg": rre, "keypoint_error": kp, "keypoint_equivariance_deg": kp_deg,
            "invariance_error": inv, "chamfer": cd, "canonical_agreement": agree}


class CapsulesTrainModule(nn.Module):
    """Trainer module wrapping :class:`CanonicalCapsules` (as ``self.net``).

    Args:
        config: the network's :class:`CapsulesConfig`.
        pairs: keyword arguments of ``SE3PairSampler`` (rotation limit in degrees,
            translation bound, noise); default full SO(3) and U(-0.2, 0.2)^3.
    Batches are dicts with ``"points"`` (B, N, 3) and optionally ``"points_b"`` (an
    independent sample of the same surfaces, used for view 2) and ``"index"``.
    """

    def __init__(self, config: CapsulesConfig | None = None, pairs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.net = CanonicalCapsules(config)
        self.pairs = dict(pairs or DEFAULT_PAIRS)
        self.sampler = _sampler(self.pairs)
        #: Chamfer used by the reconstruction loss (swappable for benchmarks)
        self.reconstruction_fn: Callable[[Tensor, Tensor], Tensor] | None = None

    @property
    def config(self) -> CapsulesConfig:
        return self.net.config

    def _views(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        pts = batch["points"] if isinstance(batch, Mapping) else batch
        if not isinstance(pts, Tensor) or pts.ndim != 3 or pts.shape[-1] != 3:
            raise CanocapsInputError("training batch: 'points' must be a (B, N, 3) tensor")
        p = next(self.net.parameters())
        pts = pts.to(device=p.device, dtype=p.dtype)
        pts_b = batch.get("points_b") if isinstance(batch, Mapping) else None
        if pts_b is not None:
            pts_b = pts_b.to(device=p.device, dtype=p.dtype)
        pair = self.sampler(pts, pts_b, generator=generator)
        T12 = pair.T12.to(p.dtype)
        both = torch.cat([pair.view1, pair.view2], dim=0).to(p.dtype)
        return both, T12[:, :3, :3], T12[:, :3, 3]

    def _weighted(self, losses: dict[str, Tensor]) -> Tensor:
        w = self.config.loss_weights
        return sum(getattr(w, name) * value for name, value in losses.items())  # type: ignore[return-value]

    def training_step(self, batch: Mapping[str, Any], step: int) -> dict[str, Tensor]:
        """One step: two views, the six losses, ``"loss"`` = their weighted sum."""
        points, R12, t12 = self._views(batch)
        out = self.net(points)
        losses = compute_losses(out, points, R12, t12, self.reconstruction_fn)
        return {"loss": self._weighted(losses), **losses}

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor | float]:
        """Losses and :func:`pair_metrics` (batch means) on deterministic pairs."""
        index = batch.get("index") if isinstance(batch, Mapping) else None
        seed = int(torch.as_tensor(index).flatten()[0]) if index is not None else 0
        gen = torch.Generator().manual_seed(1_000_003 + seed)  # CPU: same pairs on every device
        points, R12, t12 = self._views(batch, gen)
        out = self.net(points)
        losses = compute_losses(out, points, R12, t12)
        metrics = {k: v.mean() for k, v in pair_metrics(out, points, R12, t12).items()}
        return {"loss": self._weighted(losses), **losses, **metrics}


def canonical_agreement(canon1: Tensor, canon2: Tensor, radius: Tensor) -> Tensor:
    """How well two canonicalised clouds of one shape coincide, blind to the shape's symmetries.

    Args:
        canon1: ``(B, N, 3)`` and canon2: ``(B, M, 3)``: the two views, each in its own
            canonical frame.
        radius: ``(B,)`` shape radius.
    Returns:
        ``(B,)``: Euclidean (not squared) Chamfer, mean nearest-neighbour distance per
        direction, the two directions averaged, divided by ``radius``. A frame that
        differs from the other only by a symmetry of the shape scores as well as the
        same frame; the floor is the sampling gap between the two views.
    """
    from canocaps.ops import chamfer

    cd, _ = chamfer(canon1, canon2, point_reduction="mean", batch_reduction=None, squared=False)
    return 0.5 * cd / radius.clamp_min(1e-12)


def _radius(points: Tensor) -> Tensor:
    return (points - points.mean(dim=1, keepdim=True)).norm(dim=-1).amax(dim=1)


@torch.no_grad()
def baseline_pair_metrics(points: Tensor, R12: Tensor, t12: Tensor) -> dict[str, Tensor]:
    """Reference figures for the pairs ``points`` = cat(view1, view2) (2B, N, 3), each (B,).

    - ``pca_equivariance_deg`` / ``pca_canonical_agreement``: the same two measures as
      :func:`pair_metrics` for the PCA frame (:func:`canocaps.geometry.pca_frame`).
    - ``floor_canonical_agreement``: :func:`canonical_agreement` of view 1 and view 2
      brought back by the true pose: the best any canonicaliser can score.
    """
    from canocaps.geometry import pca_frame, rotation_error_deg

    b = points.shape[0] // 2
    p1, p2 = points[:b], points[b:]
    radius = _radius(p1)
    R, t = pca_frame(points)
    canon = points @ R.transpose(-1, -2) + t.unsqueeze(1)
    back = (p2 - t12.unsqueeze(1)) @ R12  # view2 = view1 R12^T + t12
    return {"pca_equivariance_deg": rotation_error_deg(R[b:] @ R12, R[:b]),
            "pca_canonical_agreement": canonical_agreement(canon[:b], canon[b:], radius),
            "floor_canonical_agreement": canonical_agreement(p1, back, radius)}
