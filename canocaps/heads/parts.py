"""Are capsules parts? Agreement of the point-to-capsule assignment with the true parts.

The procedural shapes are built from parts (seat, legs, wings, ...), so every sampled
point carries the part it came from (:func:`canocaps.data.procedural.generator.sample_shape_parts`).
For each test shape, in a random pose, this compares the model's assignment (argmax of
the attention over the K capsules) with the part labels by normalised mutual information
(NMI, scikit-learn's arithmetic normalisation: 0 = independent, 1 = the same partition up
to relabelling). The baseline is k-means with K clusters on the coordinates (a partition
into K compact blobs, no learning), on the same points.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["part_agreement"]


def part_agreement(model: Any, split: str = "test", per_class: int = 10, num_points: int | None = None,
                   seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Mean NMI between capsule assignment and parts over ``per_class`` shapes of each class.

    Args:
        model: a :class:`canocaps.model.CanonicalCapsules` (anything whose
            ``canonicalize(points (1, N, 3))`` returns ``assignment (1, N)``).
        split: procedural split (``train`` / ``val`` / ``test``).
        per_class: shapes per class (the first ones of the split).
        num_points: points per shape (default: the model's ``config.num_points``).
        seed: seeds the random poses and the k-means baseline.

    Returns:
        ``{"nmi", "kmeans_nmi", "num_shapes", "per_class": {class: {"nmi", "kmeans_nmi"}}}``.
    """
    import torch
    from scipy.spatial.transform import Rotation
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score
    from tqdm.auto import tqdm

    from canocaps.data.procedural.generator import CLASS_NAMES, sample_shape_parts

    k = int(model.config.num_capsules)
    n = int(num_points or model.config.num_points)
    rng = np.random.default_rng(seed)
    per: dict[str, dict[str, list[float]]] = {}
    todo = [(c, i) for c in CLASS_NAMES for i in range(per_class)]
    for c, i in tqdm(todo, desc="parts", disable=not progress, leave=False):
        pts, parts = sample_shape_parts(c, 0, split, i, n)
        R = Rotation.random(random_state=rng).as_matrix().astype(np.float32)
        x = pts @ R.T
        with torch.no_grad():
            res = model.canonicalize(torch.as_tensor(x[None]))
        assign = np.asarray(res.assignment).reshape(-1)
        km = KMeans(k, n_init=1, random_state=int(rng.integers(1 << 31))).fit_predict(x)
        row = per.setdefault(c, {"nmi": [], "kmeans_nmi": []})
        row["nmi"].append(float(normalized_mutual_info_score(parts, assign)))
        row["kmeans_nmi"].append(float(normalized_mutual_info_score(parts, km)))
    per_class = {c: {m: float(np.mean(v)) for m, v in d.items()} for c, d in per.items()}
    return {"nmi": float(np.mean([d["nmi"] for d in per_class.values()])),
            "kmeans_nmi": float(np.mean([d["kmeans_nmi"] for d in per_class.values()])),
            "num_shapes": len(todo), "per_class": per_class}
