"""Typed results of the heads: plain dataclasses of numpy arrays and floats.

Each result prints a short summary (``repr``: shapes, rotations as an angle about an
axis, the key figures), has ``to_dict()`` (JSON-ready: lists and floats) and, where it
holds point clouds or a transform, ``to_open3d()``. Transforms are 4x4 homogeneous
float64 matrices acting on column vectors: ``y = R @ x + t``.

:class:`CanonicalizationResult` and :class:`ReconstructionResult` are the model's own
result classes (:mod:`canocaps.model.results`; one concept, one class), exported here
too; they load on first use so that importing the heads stays cheap (numpy only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from canocaps._format import format_matrix, format_rotation, format_vector
from canocaps.heads.quality import assess_registration

__all__ = [
    "HypothesisScore",
    "RegistrationResult",
    "ReconstructionResult",
    "ClassificationResult",
    "StabilityResult",
    "CanonicalizationResult",
]

_MODEL_RESULTS = ("CanonicalizationResult", "ReconstructionResult")


def __getattr__(name: str) -> Any:
    if name in _MODEL_RESULTS:  # the model's classes, imported on first use (torch-free module, heavy package)
        from canocaps.model import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        score: robust alignment score in [0, 1], higher is better; ranks the hypotheses
            (:func:`canocaps.heads.icp.robust_score`; NaN where not computed).
        core_distance: mean distance of the best-fitting 10 % of points (input units,
            lower is better); ranks the hypotheses of low-overlap pairs
            (:func:`canocaps.heads.icp.core_distance`; NaN where not computed).
    """

    name: str
    fitness: float
    inlier_rmse: float
    transformation: np.ndarray
    score: float = float("nan")
    core_distance: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fitness": float(self.fitness), "inlier_rmse": float(self.inlier_rmse),
                "score": float(self.score), "core_distance": float(self.core_distance),
                "transform": np.asarray(self.transformation).tolist()}

    def __repr__(self) -> str:
        T = np.asarray(self.transformation)
        return (f"HypothesisScore({self.name!r}, score {self.score:.4f}, fitness {self.fitness:.4f}, "
                f"inlier_rmse {self.inlier_rmse:.4g}, "
                f"R {format_rotation(T[:3, :3])}, t {format_vector(T[:3, 3])})")


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
        candidates: every hypothesis tried, best first (highest ``score``).
        quality: ``"good"`` or ``"doubtful"``: the verdict of
            :func:`canocaps.heads.quality.assess_registration` on fitness and inlier RMSE
            (thresholds calibrated on benchmark records; computed when not given).
        quality_reasons: why a result is doubtful (empty when good).
        score: the robust alignment score of this transform
            (:func:`canocaps.heads.icp.robust_score`, in [0, 1]; NaN for single-hypothesis methods).
        low_overlap: True when the clouds looked like partial views of each other (best
            fitness below ``overlap_threshold`` of the attainable fitness, or below
            ``sparse_overlap_threshold`` for sparse clouds) and the hypotheses were ranked by
            ``core_distance`` rather than ``score``.
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
    quality: str | None = None
    quality_reasons: list[str] = field(default_factory=list)
    score: float = float("nan")
    low_overlap: bool = False

    def __post_init__(self) -> None:
        if self.quality is None:
            self.quality, self.quality_reasons = assess_registration(
                float(self.fitness), float(self.inlier_rmse), float(self.max_correspondence_distance))

    @property
    def doubtful(self) -> bool:
        """True when the quality verdict is not ``"good"``."""
        return self.quality != "good"

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
        """JSON-ready dict: ``transform`` (4x4 list), the quality figures and the verdict."""
        return {
            "transform": np.asarray(self.transformation, dtype=np.float64).tolist(),
            "fitness": float(self.fitness),
            "inlier_rmse": float(self.inlier_rmse),
            "score": float(self.score),
            "low_overlap": bool(self.low_overlap),
            "correspondences": self.num_correspondences,
            "hypothesis": self.hypothesis,
            "time_s": float(self.time_s),
            "refined": bool(self.refined),
            "max_correspondence_distance": float(self.max_correspondence_distance),
            "quality": self.quality,
            "quality_reasons": list(self.quality_reasons),
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

    def verdict(self) -> str:
        """One line: ``quality good`` or ``quality DOUBTFUL: reason; reason``."""
        if not self.doubtful:
            return f"quality {self.quality}"
        why = "; ".join(self.quality_reasons) or "no reason recorded"
        return f"quality {str(self.quality).upper()}: {why} (check the result before using it)"

    def summary(self) -> str:
        """Human-readable multi-line summary (what ``canocaps register`` prints)."""
        return (f"transform (maps A onto B):\n{format_matrix(self.transformation)}\n"
                f"fitness {self.fitness:.4f}  inlier_rmse {self.inlier_rmse:.6f}  "
                f"correspondences {self.num_correspondences}  hypothesis {self.hypothesis}  "
                f"refined {'yes' if self.refined else 'no'}  time {self.time_s:.3f} s\n"
                f"{self.verdict()}")

    def __repr__(self) -> str:
        return (f"RegistrationResult({self.quality}, fitness {self.fitness:.4f}, inlier_rmse {self.inlier_rmse:.4g}, "
                f"R {format_rotation(self.rotation)}, t {format_vector(self.translation)}, "
                f"hypothesis {self.hypothesis!r}, {len(self.candidates)} candidates, "
                f"{self.num_correspondences} correspondences, time {self.time_s:.3f} s)")


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
        validated_svm_accuracy, validated_pca_svm_accuracy: the same two features with
            standardisation and C chosen on the validation split
            (:func:`canocaps.heads.classification.validated_svm_accuracy`); None if not run.
    """

    svm_accuracy: float
    kmeans_accuracy: float
    pca_svm_accuracy: float
    num_train: int
    num_test: int
    num_classes: int
    validated_svm_accuracy: float | None = None
    validated_pca_svm_accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"svm_accuracy": self.svm_accuracy, "kmeans_accuracy": self.kmeans_accuracy,
                "pca_svm_accuracy": self.pca_svm_accuracy,
                "validated_svm_accuracy": self.validated_svm_accuracy,
                "validated_pca_svm_accuracy": self.validated_pca_svm_accuracy, "num_train": self.num_train,
                "num_test": self.num_test, "num_classes": self.num_classes, **self.extra}

    def __repr__(self) -> str:
        return (f"ClassificationResult(svm {self.svm_accuracy:.3f}, k-means {self.kmeans_accuracy:.3f}, "
                f"PCA svm {self.pca_svm_accuracy:.3f}; {self.num_train} train / {self.num_test} test, "
                f"{self.num_classes} classes)")


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

    def __repr__(self) -> str:
        return (f"StabilityResult({self.method}: pairwise RRE {self.rre_deg:.2f} deg, Chamfer {self.chamfer:.4g}; "
                f"{self.num_shapes} shapes x {self.num_copies} copies)")
