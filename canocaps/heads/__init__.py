"""Heads on top of a canonicaliser: registration, reconstruction, classification, stability.

Every head works with any object whose ``canonicalize(points)`` returns ``R``, ``t``
(``canonical = points @ R^T + t``): the trained :class:`canocaps.model.CanonicalCapsules`
or the :class:`~canocaps.heads.baselines.PCACanonicalizer` baseline.

Importing this package is cheap (numpy only); torch/Open3D/scikit-learn load on use.
"""
from __future__ import annotations

from typing import Any

from canocaps.heads.baselines import PCACanonicalizer, fpfh_ransac_icp
from canocaps.heads.canonical import canonicalize_cloud
from canocaps.heads.classification import capsule_features, evaluate_classification, kmeans_accuracy, svm_accuracy
from canocaps.heads.reconstruction import evaluate_reconstruction, reconstruct
from canocaps.heads.registration import (
    benchmark_registration,
    make_test_pairs,
    pca_register,
    register,
    registration_errors,
    summarize_registration,
)
from canocaps.heads.results import ClassificationResult, HypothesisScore, RegistrationResult, StabilityResult
from canocaps.heads.stability import canonical_spread, evaluate_stability


def __getattr__(name: str) -> Any:
    if name in ("CanonicalizationResult", "ReconstructionResult"):  # the model's classes: loaded on first use
        from canocaps.model import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "canonicalize_cloud", "CanonicalizationResult",
    "register", "registration_errors", "summarize_registration", "make_test_pairs", "benchmark_registration",
    "reconstruct", "evaluate_reconstruction",
    "capsule_features", "svm_accuracy", "kmeans_accuracy", "evaluate_classification",
    "canonical_spread", "evaluate_stability",
    "PCACanonicalizer", "fpfh_ransac_icp", "pca_register",
    "RegistrationResult", "HypothesisScore", "ReconstructionResult", "ClassificationResult", "StabilityResult",
]
