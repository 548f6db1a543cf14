"""Stability head: does the canonical pose stay put when the input is rotated?

For a shape ``x`` and rotations ``Q_1..Q_m`` (uniform SO(3), fixed seed), canonicalise
each copy ``x_i Q_i^T``, where ``x_i`` is either the same ``N`` points every time or (the
default of :func:`evaluate_stability`) an independent random subset of ``N`` points of the
shape's stored surface samples — the realistic case: two scans never share points, and
an exactly rotated copy makes PCA trivially perfect. A perfectly stable canonicaliser
gives the same canonical cloud every time. Reported spreads (lower is better):

* Chamfer: mean over pairs ``i < j`` of the Chamfer distance between the canonical
  clouds (squared, mean per direction, directions summed; the paper's measure);
* RRE: mean over pairs of the angle (degrees) between the composite frames
  ``R_i Q_i`` and ``R_j Q_j`` (the canonical frame expressed in the shape's own frame).

The PCA canonicaliser runs through the same code as the baseline.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from canocaps.heads._data import dataset_arrays
from canocaps.heads.classification import random_rotations
from canocaps.heads.results import StabilityResult

__all__ = ["canonical_spread", "evaluate_stability"]


def canonical_spread(canonicalizer: Any, points: np.ndarray, num_copies: int = 16, seed: int = 0,
                     num_points: int | None = None) -> tuple[float, float]:
    """``(chamfer, rre_deg)`` spread of the canonical pose of ``num_copies`` rotated copies.

    Args:
        canonicalizer: anything with ``canonicalize((B, N, 3)) -> (canonical_points, R, ...)``.
        points: ``(M, 3)`` one shape.
        num_points: None: every copy is all ``M`` points; else each copy is its own random
            subset of ``num_points`` of them (needs ``M >= num_points``).
    """
    import torch

    from canocaps.geometry import chamfer_distance, rotation_error_deg
    from canocaps.heads.frames import model_device

    if num_copies < 2:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"num_copies must be >= 2, got {num_copies}")
    Q = torch.as_tensor(random_rotations(num_copies, seed))
    p = np.asarray(points, dtype=np.float64)
    if num_points is None:
        x = torch.as_tensor(p)[None].expand(num_copies, -1, -1)
    else:
        if num_points > len(p):
            from canocaps.errors import CanocapsInputError

            raise CanocapsInputError(f"num_points={num_points} > the shape's {len(p)} points")
        rng = np.random.default_rng(seed)
        x = torch.as_tensor(np.stack([p[rng.choice(len(p), num_points, replace=False)] for _ in range(num_copies)]))
    copies = x @ Q.transpose(-1, -2)  # (m, N, 3)
    res = canonicalizer.canonicalize(copies.to(torch.float32).to(model_device(canonicalizer)))
    canon = torch.as_tensor(res.canonical_points).double().cpu()
    R = torch.as_tensor(res.R).double().cpu() @ Q  # shape frame -> canonical
    i, j = torch.triu_indices(num_copies, num_copies, offset=1)
    cd = chamfer_distance(canon[i], canon[j], squared=True, reduction="sum", batch_reduction="none")
    rre = rotation_error_deg(R[i], R[j])
    return float(cd.mean()), float(rre.mean())


def evaluate_stability(model: Any, data: str = "procedural", split: str = "test", num_points: int = 1024,
                       num_shapes: int | None = 20, num_copies: int = 16, include_pca: bool = True,
                       seed: int = 0, progress: bool = True, resample: bool = True, pool_points: int = 2048,
                       dataset_kwargs: dict[str, Any] | None = None) -> list[StabilityResult]:
    """:func:`canonical_spread` averaged over ``num_shapes`` shapes, for the model and PCA.

    With ``resample`` (default), each shape is loaded with ``pool_points`` points and every
    copy is its own random subset of ``num_points`` of them; otherwise every copy is the
    same ``num_points`` points rotated.
    """
    from tqdm.auto import tqdm

    from canocaps.heads.baselines import PCACanonicalizer

    kw = {"sampling": "first", **(dataset_kwargs or {})}
    pts, _ = dataset_arrays(data, split, max(pool_points, num_points) if resample else num_points, num_shapes, **kw)
    methods: dict[str, Any] = {"canocaps": model}
    if include_pca:
        methods["pca"] = PCACanonicalizer()
    out = []
    for name, m in methods.items():
        per = [canonical_spread(m, p, num_copies, seed + i, num_points if resample else None)
               for i, p in enumerate(tqdm(pts, desc=f"stability/{name}", disable=not progress, unit="shape"))]
        arr = np.asarray(per)
        out.append(StabilityResult(method=name, chamfer=float(arr[:, 0].mean()), rre_deg=float(arr[:, 1].mean()),
                                   num_shapes=len(per), num_copies=num_copies, per_shape=[tuple(map(float, r)) for r in per]))
    return out
