"""Result containers of :class:`canocaps.model.CanonicalCapsules` (and of the heads built on it).

One concept, one class: :class:`CanonicalizationResult` is what ``model.canonicalize``,
:func:`canocaps.heads.canonicalize_cloud` and the PCA baseline return;
:class:`ReconstructionResult` what ``model.reconstruct`` and
:func:`canocaps.heads.reconstruct` return. Fields hold torch tensors or numpy arrays
(``.numpy()`` converts); every result prints a short summary (shapes, the rotation as an
angle about an axis, key figures), has ``to_dict()`` (JSON-ready) and ``to_open3d()``.
Importing this module needs numpy only (torch is used when a tensor is there).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from canocaps._format import format_rotation, format_vector, rotation_angle_axis

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["CapsulesOutput", "CanonicalizationResult", "ReconstructionResult", "CanonicalizeResult",
           "ReconstructResult", "CHAMFER_CONVENTION"]

CHAMFER_CONVENTION = "squared, mean per direction, directions summed"


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



# ----------------------------------------------------------------------------- helpers


def _is_tensor(v: Any) -> bool:
    return type(v).__module__.startswith("torch") and hasattr(v, "detach")


def _np(v: Any) -> Any:
    """numpy view of a tensor / array (None stays None)."""
    if v is None:
        return None
    if _is_tensor(v):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _lst(v: Any) -> Any:
    return None if v is None else _np(v).tolist()


def _transform(R: Any, t: Any) -> Any:
    """``[R t; 0 1]`` of ``R`` ``(..., 3, 3)``, ``t`` ``(..., 3)``, tensor or array alike."""
    if not _is_tensor(R):
        R, t = np.asarray(R), np.asarray(t)
        T = np.zeros(R.shape[:-2] + (4, 4), dtype=R.dtype)
        T[..., :3, :3] = R
        T[..., :3, 3] = t
        T[..., 3, 3] = 1
        return T
    import torch

    T = torch.zeros(R.shape[:-2] + (4, 4), dtype=R.dtype, device=R.device)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1
    return T


def _shape(v: Any) -> str:
    return "-" if v is None else "x".join(str(int(d)) for d in tuple(v.shape)) or "scalar"


def _rotations(R: Any, limit: int = 3) -> str:
    """The rotation(s) of ``R`` ``(3, 3)`` or ``(B, 3, 3)`` as angle-axis text (the first ``limit``)."""
    Rn = np.asarray(_np(R), dtype=np.float64)
    if Rn.ndim == 2:
        return format_rotation(Rn)
    items = [f"{rotation_angle_axis(r)[0]:.1f}" for r in Rn[:limit]]
    more = ", ..." if len(Rn) > limit else ""
    return f"angles ({', '.join(items)}{more}) deg"


def _vec(v: Any) -> str:
    a = np.asarray(_np(v), dtype=np.float64)
    return format_vector(a) if a.ndim == 1 else f"{_shape(a)} array"


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if _is_tensor(a) or _is_tensor(b):
        a, b = _np(a), _np(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return bool(a == b)


def _pcd(points: Any) -> Any:
    """One ``(N, 3)`` cloud, or a list of them for ``(B, N, 3)``, as Open3D point clouds."""
    import open3d as o3d

    p = np.asarray(_np(points), dtype=np.float64)
    if p.ndim == 3:
        return [_pcd(x) for x in p]
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))


class _ArrayResult:
    """Shared behaviour: ``.numpy()``, field-wise ``==`` (arrays compared exactly)."""

    def numpy(self) -> Any:
        """The same result with every tensor as a numpy array (on the CPU)."""
        conv = {f.name: (_np(v) if _is_tensor(v := getattr(self, f.name)) else v)
                for f in fields(self)}  # type: ignore[arg-type]
        return replace(self, **conv)  # type: ignore[type-var]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]


# ----------------------------------------------------------------------------- results


@dataclass(repr=False, eq=False)
class CanonicalizationResult(_ArrayResult):
    """A cloud in its canonical pose: output of :meth:`CanonicalCapsules.canonicalize`,
    :func:`canocaps.heads.canonicalize_cloud` and the PCA baseline.

    Shapes are batched (leading B) when the input was (B, N, 3) and unbatched when it
    was (N, 3). From the model, floating outputs have the input's dtype and device
    (network units); from ``canonicalize_cloud`` they are numpy, in the input's units.

    Attributes:
        canonical_points: (B, N, 3) the input moved into the canonical frame, ``x @ R^T + t``.
        R: (B, 3, 3) rotation, input frame -> canonical frame.
        t: (B, 3) translation (same units as the points).
        keypoints: (B, K, 3) capsule keypoints in the input frame (None: no capsules, e.g. PCA).
        canonical_keypoints: (B, K, 3) the keypoints in the canonical frame (or None).
        descriptors: (B, K, C) rotation-invariant capsule descriptors (or None).
        attention: (B, N, K) point-to-capsule attention, rows sum to 1 (model only, else None).
        assignment: (B, n) int64, capsule of each point the network saw (or None).
        sample_points: (n, 3) the subsample the network saw, input frame
            (``canonicalize_cloud``; None from the model, which sees every point).
        scale: the radius the cloud was divided by before the network (1 from the model).
    """

    canonical_points: Any
    R: Any
    t: Any
    keypoints: Any = None
    canonical_keypoints: Any = None
    descriptors: Any = None
    attention: Any = None
    assignment: Any = None
    sample_points: Any = None
    scale: float = 1.0

    @property
    def transform(self) -> Any:
        """(B, 4, 4) homogeneous transform input -> canonical (``[R t; 0 1]``)."""
        return _transform(self.R, self.t)

    @property
    def num_capsules(self) -> int:
        return 0 if self.keypoints is None else int(self.keypoints.shape[-2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``transform``, ``R``, ``t``, ``rotation_deg``, keypoints (lists), sizes, ``scale``."""
        Rn = np.asarray(_np(self.R), dtype=np.float64)
        angles = ([rotation_angle_axis(r)[0] for r in Rn] if Rn.ndim == 3 else rotation_angle_axis(Rn)[0])
        return {"transform": _lst(self.transform), "R": _lst(self.R), "t": _lst(self.t), "rotation_deg": angles,
                "keypoints": _lst(self.keypoints), "canonical_keypoints": _lst(self.canonical_keypoints),
                "num_points": int(self.canonical_points.shape[-2]), "num_capsules": self.num_capsules,
                "scale": float(self.scale)}

    def to_open3d(self) -> Any:
        """The canonical cloud as an Open3D ``PointCloud`` (a list of them when batched)."""
        return _pcd(self.canonical_points)

    def __repr__(self) -> str:
        return (f"CanonicalizationResult(points {_shape(self.canonical_points)}, capsules {self.num_capsules}, "
                f"R {_rotations(self.R)}, t {_vec(self.t)}"
                + (f", scale {self.scale:.4g}" if self.scale != 1.0 else "") + ")")


@dataclass(repr=False, eq=False)
class ReconstructionResult(_ArrayResult):
    """A cloud decoded from its canonical capsules: output of :meth:`CanonicalCapsules.reconstruct`
    and :func:`canocaps.heads.reconstruct`.

    Attributes (batched like the input; M = K * (num_points // K)):
        canonical: (B, M, 3) the decoded cloud in the canonical frame (network units).
        points: (B, M, 3) the same cloud moved back into the input frame
            (model: ``(y - t) @ R``; ``heads.reconstruct``: in the input's units).
        R: (B, 3, 3), t: (B, 3) the canonicalising pose the network found (rigid, network units).
        canonical_input: (N, 3) the input (as the network saw it) in the canonical frame,
            or None (``heads.reconstruct`` fills it).
        chamfer: Chamfer distance between ``canonical_input`` and ``canonical`` under
            :attr:`convention` (None when not measured).
        convention: how ``chamfer`` is computed (official: squared distances, the mean
            over the points of each side, the two sides summed).
        scale: the radius the input was divided by before the network (1 from the model);
        normalising: (4, 4) the similarity input units -> network units (None from the model).
        num_input_points: points of the input cloud (``heads.reconstruct``; the network saw
            ``canonical_input``'s rows, a seeded subsample when the cloud is larger), or None.
    """

    canonical: Any
    points: Any
    R: Any
    t: Any
    canonical_input: Any = None
    chamfer: Optional[float] = None
    convention: str = CHAMFER_CONVENTION
    scale: float = 1.0
    normalising: Any = None
    num_input_points: Optional[int] = None

    @property
    def subsampled(self) -> bool:
        """True when the network saw fewer points than the input cloud had."""
        return (self.num_input_points is not None and self.canonical_input is not None
                and int(self.canonical_input.shape[-2]) < self.num_input_points)

    @property
    def transform(self) -> Any:
        """(B, 4, 4) the rigid transform input frame -> canonical frame, network units (``[R t; 0 1]``)."""
        return _transform(self.R, self.t)

    @property
    def similarity(self) -> Any:
        """(4, 4) input units -> canonical frame including the scaling (``transform @ normalising``)."""
        T = np.asarray(_np(self.transform), dtype=np.float64)
        return T if self.normalising is None else T @ np.asarray(self.normalising, dtype=np.float64)

    @property
    def reconstruction(self) -> Any:
        """The decoded cloud in the canonical frame (= :attr:`canonical`)."""
        return self.canonical

    def reconstruction_in_input_frame(self) -> Any:
        """The decoded cloud in the input's frame (= :attr:`points`)."""
        return self.points

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``chamfer``, ``convention``, sizes, ``transform`` (rigid), ``similarity`` (with ``scale``)."""
        out: dict[str, Any] = {"chamfer": None if self.chamfer is None else float(self.chamfer),
                               "convention": self.convention,
                               "num_input": None if self.canonical_input is None else int(self.canonical_input.shape[-2]),
                               "num_reconstruction": int(self.canonical.shape[-2]),
                               "num_input_points": self.num_input_points,
                               "transform": _lst(self.transform), "scale": float(self.scale)}
        if self.normalising is not None:
            out["similarity"] = self.similarity.tolist()
        return out

    def to_open3d(self) -> Any:
        """``(canonical_input, reconstruction)`` in the canonical frame as Open3D point clouds
        (``canonical_input`` None when not kept)."""
        return (None if self.canonical_input is None else _pcd(self.canonical_input)), _pcd(self.canonical)

    def __repr__(self) -> str:
        cd = "" if self.chamfer is None else f"chamfer {self.chamfer:.6g} [{self.convention}], "
        inp = "" if self.canonical_input is None else f"input {_shape(self.canonical_input)}, "
        if self.subsampled:
            inp = f"input {_shape(self.canonical_input)} (of {self.num_input_points} points), "
        return (f"ReconstructionResult({cd}{inp}reconstruction {_shape(self.canonical)}, R {_rotations(self.R)}"
                + (f", scale {self.scale:.4g}" if self.scale != 1.0 else "") + ")")


# The names these classes had before they were merged (kept for imports; the same classes).
CanonicalizeResult = CanonicalizationResult
ReconstructResult = ReconstructionResult
