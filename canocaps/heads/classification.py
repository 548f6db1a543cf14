"""Classification head: how well unsupervised capsule features separate shape classes.

* :func:`capsule_features`: per shape, the flattened capsule descriptors ``(K*C)`` and
  the canonical keypoints ``(K*3)`` normalised to their bounding box (shifted to the
  box's minimum corner, divided by its largest side) — the official feature.
* :func:`svm_accuracy`: ``LinearSVC(C=0.1)`` trained on one split, scored on another
  (the paper-style protocol: raw features, one fixed C).
* :func:`validated_svm_accuracy`: the fair protocol for comparing features: standardised
  features, ``LinearSVC`` with C chosen on the validation split from :data:`SVM_C_GRID`,
  scored once on the test split. Applied alike to capsule and PCA features.
* :func:`kmeans_accuracy`: label-free; k-means with k = number of classes, clusters
  matched to labels by the Hungarian method.
* :func:`pca_features`: the baseline feature: PCA-aligned raw points as a normalised
  occupancy grid (``grid^3`` bins over ``[-1, 1]^3``; raw points are unordered, so a
  grid is how a linear SVM can use them).

Shapes are randomly rotated (uniform SO(3), fixed seed) before featurisation: the
unaligned setting the features are meant for.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from canocaps.errors import CanocapsInputError
from canocaps.heads._data import batched, dataset_arrays
from canocaps.heads.frames import model_device
from canocaps.heads.results import ClassificationResult

__all__ = ["SVM_C_GRID", "capsule_features", "pca_features", "svm_accuracy", "validated_svm_accuracy",
           "kmeans_accuracy", "hungarian_accuracy", "random_rotations", "evaluate_classification"]

#: Regularisation strengths :func:`validated_svm_accuracy` chooses from.
SVM_C_GRID = (0.01, 0.1, 1.0)


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 3, 3)`` float64 rotations uniform on SO(3), reproducible from ``seed``."""
    import torch

    from canocaps.geometry import random_rotation

    g = torch.Generator().manual_seed(seed)
    return random_rotation(n, dtype=torch.float64, generator=g).numpy()


def _rotate(points: np.ndarray, R: np.ndarray) -> np.ndarray:
    return (points @ np.swapaxes(R, 1, 2)).astype(np.float32)


def capsule_features(model: Any, points: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """``(S, K*C + K*3)`` float64 features of clouds ``points`` ``(S, N, 3)`` (see module doc)."""
    import torch

    dev = model_device(model)
    feats = []
    for sl in batched(len(points), batch_size):
        res = model.canonicalize(torch.as_tensor(points[sl], dtype=torch.float32, device=dev))
        desc = res.descriptors.double().cpu().numpy()
        kp = res.canonical_keypoints.double().cpu().numpy()
        lo = kp.min(axis=1, keepdims=True)
        side = (kp.max(axis=1, keepdims=True) - lo).max(axis=2, keepdims=True)
        kp = (kp - lo) / np.maximum(side, 1e-12)
        feats.append(np.concatenate([desc.reshape(len(desc), -1), kp.reshape(len(kp), -1)], axis=1))
    return np.concatenate(feats)


def pca_features(points: np.ndarray, grid: int = 8) -> np.ndarray:
    """``(S, grid^3)`` occupancy fractions of PCA-aligned clouds ``(S, N, 3)`` in ``[-1, 1]^3``."""
    import torch

    from canocaps.geometry import pca_frame

    x = torch.as_tensor(points, dtype=torch.float64)
    R, t = pca_frame(x)
    canon = (x @ R.transpose(-1, -2) + t[:, None]).numpy()
    idx = np.clip(((canon + 1.0) * 0.5 * grid).astype(np.int64), 0, grid - 1)
    flat = (idx[..., 0] * grid + idx[..., 1]) * grid + idx[..., 2]
    out = np.zeros((len(points), grid ** 3))
    for i, f in enumerate(flat):
        out[i] = np.bincount(f, minlength=grid ** 3) / f.size
    return out


def svm_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 C: float = 0.1, seed: int = 0) -> float:
    """Test accuracy of ``LinearSVC(C)`` fit on ``(S, D)`` train features."""
    from sklearn.svm import LinearSVC

    if len(np.unique(train_y)) < 2:
        raise CanocapsInputError("classification needs at least two classes in the train split")
    clf = LinearSVC(C=C, random_state=seed, max_iter=10000)
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def validated_svm_accuracy(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                           test: tuple[np.ndarray, np.ndarray], grid: tuple[float, ...] = SVM_C_GRID,
                           seed: int = 0) -> tuple[float, float, float]:
    """Test accuracy of a standardised ``LinearSVC`` whose C is chosen on the validation split.

    Each of ``train`` / ``val`` / ``test`` is ``(features (S, D), labels (S,))``. Fits on
    train for every C of ``grid``, keeps the C with the best validation accuracy (the
    smaller C on ties), scores it on test. Returns ``(test_accuracy, C, val_accuracy)``.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if len(np.unique(train[1])) < 2:
        raise CanocapsInputError("classification needs at least two classes in the train split")
    best: tuple[float, float, Any] | None = None
    for C in sorted(grid):
        clf = make_pipeline(StandardScaler(), LinearSVC(C=C, random_state=seed, max_iter=10000))
        clf.fit(*train)
        acc = float((clf.predict(val[0]) == val[1]).mean())
        if best is None or acc > best[0]:
            best = (acc, C, clf)
    assert best is not None
    val_acc, C, clf = best
    return float((clf.predict(test[0]) == test[1]).mean()), float(C), val_acc


def hungarian_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of cluster ids ``pred`` after the best one-to-one cluster -> label matching."""
    from scipy.optimize import linear_sum_assignment

    cl, ci = np.unique(pred, return_inverse=True)
    lb, li = np.unique(labels, return_inverse=True)
    conf = np.zeros((len(cl), len(lb)), dtype=np.int64)
    np.add.at(conf, (ci, li), 1)
    rows, cols = linear_sum_assignment(conf, maximize=True)
    return float(conf[rows, cols].sum() / len(labels))


def kmeans_accuracy(x: np.ndarray, labels: np.ndarray, n_clusters: int | None = None, seed: int = 0) -> float:
    """k-means (``n_clusters`` default = number of classes) + Hungarian matching accuracy."""
    from sklearn.cluster import KMeans

    k = n_clusters or len(np.unique(labels))
    pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return hungarian_accuracy(pred, labels)


def evaluate_classification(model: Any, data: str = "procedural", num_points: int = 1024,
                            limit: int | None = None, seed: int = 0, progress: bool = True,
                            dataset_kwargs: dict[str, Any] | None = None) -> ClassificationResult:
    """SVM and k-means accuracy of capsule features vs the PCA-SVM baseline.

    Train split for the SVMs, test split for scoring and for k-means, both protocols
    (:func:`svm_accuracy`: raw features, C = 0.1; :func:`validated_svm_accuracy`:
    standardised features, C chosen on the validation split) for both features. Every
    split is randomly rotated (uniform SO(3); seeds ``seed``, ``seed + 1``, ``seed + 2``
    for train, test, val). ``limit`` caps the shapes per split (spread evenly);
    ``dataset_kwargs`` go to the datasets.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=4, desc="classification", disable=not progress)
    kw = dataset_kwargs or {}
    splits = {}
    for offset, split in enumerate(("train", "test", "val")):
        x, y = dataset_arrays(data, split, num_points, limit, **kw)
        splits[split] = (_rotate(x, random_rotations(len(x), seed + offset)), y)
    (xtr, ytr), (xte, yte), (xva, yva) = splits["train"], splits["test"], splits["val"]
    bar.update(1)
    ftr, fte, fva = (capsule_features(model, x) for x in (xtr, xte, xva))
    bar.update(1)
    svm = svm_accuracy(ftr, ytr, fte, yte, seed=seed)
    svm_v, svm_c, svm_val = validated_svm_accuracy((ftr, ytr), (fva, yva), (fte, yte), seed=seed)
    km = kmeans_accuracy(fte, yte, seed=seed)
    bar.update(1)
    ptr, pte, pva = pca_features(xtr), pca_features(xte), pca_features(xva)
    pca = svm_accuracy(ptr, ytr, pte, yte, seed=seed)
    pca_v, pca_c, pca_val = validated_svm_accuracy((ptr, ytr), (pva, yva), (pte, yte), seed=seed)
    bar.update(1)
    bar.close()
    return ClassificationResult(svm_accuracy=svm, kmeans_accuracy=km, pca_svm_accuracy=pca,
                                num_train=len(ytr), num_test=len(yte), num_classes=int(len(np.unique(ytr))),
                                validated_svm_accuracy=svm_v, validated_pca_svm_accuracy=pca_v,
                                extra={"feature_dim": int(ftr.shape[1]), "pca_feature_dim": int(ptr.shape[1]),
                                       "num_val": len(yva), "validated_svm_C": svm_c,
                                       "validated_svm_val_accuracy": svm_val, "validated_pca_svm_C": pca_c,
                                       "validated_pca_svm_val_accuracy": pca_val})
