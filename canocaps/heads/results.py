"""Typed results of the heads: plain dataclasses of numpy arrays and floats.

Each result has ``to_dict()`` (JSON-ready: lists and floats) and, where it holds
point clouds or a transform, ``to_open3d()``. Transforms are 4x4 homogeneous
float64 matrices acting on column vectors: ``y = R @ x + t``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "HypothesisScore",
    "RegistrationResult",
    "ReconstructionResult",
    "ClassificationResult",
    "StabilityResult",
    "CanonicalizationResult",
]


def _fmt_matrix(T: np.ndarray, indent: str = "  ") -> str:
    rows = ["[" + "  ".join(f"{v: .6f}" for v in row) + "]" for row in np.asarray(T)]
    return "\n".join(indent + r for r in rows)


@dataclass
class HypothesisScore:
    """One initial alignment tried by :func:`canocaps.register` and its score.

    Attributes:
        name: ``"canonical"``, ``"flip_x"``/``"flip_y"``/``"flip_z"`` (canonical frame
            turned 180 degrees about that canonical axis), ``"capsules"`` (descriptor
            matching + weighted Procrustes on keypoints), ``"ransac"``, ...
        fitness: fraction of source points with a target point within the
            correspondence distance, after refinement (if any).
        inlier_rmse: RMS distance of those inlier pairs (units of the input).
        transformation: ``(4, 4)`` the refined (or initial) transform of this hypothesis.
    """

    name: str
    fitness: float
    inlier_rmse: float
    transformation: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fitness": float(self.fitness), "inlier_rmse": float(self.inlier_rmse),
                "transform": np.asarray(self.transformation).tolist()}


@dataclass
class RegistrationResult:
    """The rigid transform mapping cloud A onto cloud B, with its quality figures.

    Mirrors Open3D's ``RegistrationResult``.

    Attributes:
        transformation: ``(4, 4)`` float64, maps A onto B: ``b ~= R @ a + t``.
        fitness: inlier fraction of A (``|correspondences| / |A used|``), in [0, 1].
        inlier_rmse: RMS of inlier distances, units of the input clouds.
        correspondence_set: ``(M, 2)`` int indices (into the subsampled A, B used for scoring).
        hypothesis: which initial alignment won (see :class:`HypothesisScore`).
        time_s: wall-clock seconds of the whole registration.
        refined: whether ICP refinement ran.
        max_correspondence_distance: the inlier threshold used (input units).
        candidates: every hypothesis tried, best first.
    """

    transformation: np.ndarray
    fitness: float
    inlier_rmse: float
    correspondence_set: np.ndarray
    hypothesis: str
    time_s: float
    refined: bool = True
    max_correspondence_distance: float = float("nan")
    candidates: list[HypothesisScore] = field(default_factory=list)

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation part of :attr:`transformation`."""
        return np.asarray(self.transformation)[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        """``(3,)`` translation part of :attr:`transformation`."""
        return np.asarray(self.transformation)[:3, 3]

    @property
    def num_correspondences(self) -> int:
        return int(np.asarray(self.correspondence_set).shape[0])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Move ``(N, 3)`` points of A into B's frame."""
        p = np.asarray(points, dtype=np.float64)
        return (p @ self.rotation.T + self.translation).astype(np.asarray(points).dtype, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``transform`` (4x4 list) and the quality figures."""
        return {
            "transform": np.asarray(self.transformation, dtype=np.float64).tolist(),
            "fitness": float(self.fitness),
            "inlier_rmse": float(self.inlier_rmse),
            "correspondences": self.num_correspondences,
            "hypothesis": self.hypothesis,
            "time_s": float(self.time_s),
            "refined": bool(self.refined),
            "max_correspondence_distance": float(self.max_correspondence_distance),
            "candidates": [{k: v for k, v in c.to_dict().items() if k != "transform"} for c in self.candidates],
        }

    def to_open3d(self) -> Any:
        """The same figures as an ``open3d.pipelines.registration.RegistrationResult``."""
        import open3d as o3d

        r = o3d.pipelines.registration.RegistrationResult()
        r.transformation = np.asarray(self.transformation, dtype=np.float64)
        r.fitness = float(self.fitness)
        r.inlier_rmse = float(self.inlier_rmse)
        r.correspondence_set = o3d.utility.Vector2iVector(np.asarray(self.correspondence_set, dtype=np.int32).reshape(-1, 2))
        return r

    def summary(self) -> str:
        """Human-readable multi-line summary (what ``canocaps register`` prints)."""
        return (f"transform (maps A onto B):\n{_fmt_matrix(self.transformation)}\n"
                f"fitness {self.fitness:.4f}  inlier_rmse {self.inlier_rmse:.6f}  "
                f"correspondences {self.num_correspondences}  hypothesis {self.hypothesis}  "
                f"refined {'yes' if self.refined else 'no'}  time {self.time_s:.3f} s")

    def __repr__(self) -> str:
        return (f"RegistrationResult(fitness={self.fitness:.4f}, inlier_rmse={self.inlier_rmse:.6f}, "
                f"correspondences={self.num_correspondences}, hypothesis={self.hypothesis!r}, "
                f"time_s={self.time_s:.3f},\n transformation=\n{_fmt_matrix(self.transformation, ' ')})")


@dataclass
class ReconstructionResult:
    """Auto-encoding of one cloud through the canonical capsules.

    Attributes:
        canonical_input: ``(N, 3)`` the input moved into the canonical frame.
        reconstruction: ``(M, 3)`` decoded cloud, canonical frame (M = K * (N_train // K)).
        transform: ``(4, 4)`` maps the input (in its own units) to the canonical frame.
        chamfer: Chamfer distance between ``canonical_input`` and ``reconstruction``
            under :attr:`convention`.
        convention: how the Chamfer figure is computed (official: squared distances,
            mean over the points of each side, the two sides summed).
    """

    canonical_input: np.ndarray
    reconstruction: np.ndarray
    transform: np.ndarray
    chamfer: float
    convention: str = "squared, mean per direction, directions summed"

    def reconstruction_in_input_frame(self) -> np.ndarray:
        """``(M, 3)`` the reconstruction moved back into the input's frame."""
        Ti = np.linalg.inv(np.asarray(self.transform, dtype=np.float64))
        return (self.reconstruction @ Ti[:3, :3].T + Ti[:3, 3]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"chamfer": float(self.chamfer), "convention": self.convention,
                "num_input": int(self.canonical_input.shape[0]), "num_reconstruction": int(self.reconstruction.shape[0]),
                "transform": np.asarray(self.transform).tolist()}

    def to_open3d(self) -> tuple[Any, Any]:
        """``(canonical_input, reconstruction)`` as Open3D point clouds."""
        import open3d as o3d

        def pcd(p: np.ndarray) -> Any:
            return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(p, dtype=np.float64)))

        return pcd(self.canonical_input), pcd(self.reconstruction)

    def __repr__(self) -> str:
        return (f"ReconstructionResult(chamfer={self.chamfer:.6g} [{self.convention}], "
                f"input={self.canonical_input.shape[0]} pts, reconstruction={self.reconstruction.shape[0]} pts)")


@dataclass
class ClassificationResult:
    """Accuracies of the unsupervised-feature classifiers (fractions in [0, 1]).

    Attributes:
        svm_accuracy: LinearSVC(C=0.1) on capsule descriptors + bbox-normalised
            canonical keypoints, trained on the train split, scored on the test split.
        kmeans_accuracy: k-means (k = number of classes) on the test features,
            clusters matched to labels by the Hungarian method (label-free).
        pca_svm_accuracy: the same SVM on PCA-aligned raw points (occupancy grid).
        num_train, num_test, num_classes: sizes.
    """

    svm_accuracy: float
    kmeans_accuracy: float
    pca_svm_accuracy: float
    num_train: int
    num_test: int
    num_classes: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"svm_accuracy": self.svm_accuracy, "kmeans_accuracy": self.kmeans_accuracy,
                "pca_svm_accuracy": self.pca_svm_accuracy, "num_train": self.num_train,
                "num_test": self.num_test, "num_classes": self.num_classes, **self.extra}


@dataclass
class StabilityResult:
    """Spread of the canonical pose over rotated copies of shapes (lower = more stable).

    Attributes:
        method: ``"canocaps"`` or ``"pca"``.
        chamfer: mean over shapes of the mean pairwise Chamfer distance between the
            canonical clouds of the copies (squared, mean per direction, summed).
        rre_deg: mean over shapes of the mean pairwise rotation error (degrees)
            between the copies' canonical frames expressed in the shape's own frame.
        num_shapes, num_copies: sizes.
        per_shape: per-shape ``(chamfer, rre_deg)``.
    """

    method: str
    chamfer: float
    rre_deg: float
    num_shapes: int
    num_copies: int
    per_shape: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "chamfer": self.chamfer, "rre_deg": self.rre_deg,
                "num_shapes": self.num_shapes, "num_copies": self.num_copies,
                "per_shape": [list(p) for p in self.per_shape]}


@dataclass
class CanonicalizationResult:
    """One cloud in its canonical pose, in the input's units.

    Attributes:
        canonical_points: ``(N, 3)`` float32, every input point moved by :attr:`transform`.
        transform: ``(4, 4)`` float64 rigid, input frame -> canonical frame.
        keypoints: ``(K, 3)`` capsule keypoints in the input frame (None without capsules).
        canonical_keypoints: ``(K, 3)`` the same keypoints in the canonical frame.
        descriptors: ``(K, C)`` rotation-invariant capsule descriptors (or None).
        sample_points: ``(n, 3)`` the subsample the network saw (input frame).
        assignment: ``(n,)`` int, capsule of each subsample point (or None).
        scale: the radius the cloud was divided by before the network.
    """

    canonical_points: np.ndarray
    transform: np.ndarray
    keypoints: np.ndarray | None
    canonical_keypoints: np.ndarray | None
    descriptors: np.ndarray | None
    sample_points: np.ndarray
    assignment: np.ndarray | None
    scale: float = 1.0

    @property
    def R(self) -> np.ndarray:
        """``(3, 3)`` rotation, input -> canonical."""
        return np.asarray(self.transform)[:3, :3]

    @property
    def t(self) -> np.ndarray:
        """``(3,)`` translation, input units."""
        return np.asarray(self.transform)[:3, 3]

    def to_dict(self) -> dict[str, Any]:
        def lst(v: Any) -> Any:
            return None if v is None else np.asarray(v).tolist()

        return {"transform": lst(self.transform), "R": lst(self.R), "t": lst(self.t),
                "keypoints": lst(self.keypoints), "canonical_keypoints": lst(self.canonical_keypoints),
                "num_points": int(self.canonical_points.shape[0]), "scale": float(self.scale)}

    def to_open3d(self) -> Any:
        """The canonical cloud as an Open3D point cloud."""
        import open3d as o3d

        return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.canonical_points.astype(np.float64)))

    def __repr__(self) -> str:
        k = 0 if self.keypoints is None else len(self.keypoints)
        return (f"CanonicalizationResult(points={self.canonical_points.shape[0]}, capsules={k},\n"
                f" transform=\n{_fmt_matrix(self.transform, ' ')})")
