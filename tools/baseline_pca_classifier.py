#!/usr/bin/env python
"""How hard is a dataset without learning? A linear classifier on PCA-normalised raw clouds.

    python tools/baseline_pca_classifier.py                    # the procedural set, defaults
    python tools/baseline_pca_classifier.py --json out.json --per-class-train 300 --per-class-test 50

Each cloud (N = 1024 points, first N of the stored sample) is put in a **PCA frame**
(the library's :func:`canocaps.geometry.pca_frame`): centred, rotated onto its principal
axes (largest variance first), the first two axes signed so that the third moment
(skewness) along them is positive, the third their cross product (a proper rotation),
then scaled so the farthest point has norm 1. Test rotations come from
:func:`canocaps.geometry.random_rotation` (uniform on SO(3), seeded). This is the classic rotation "canonicalisation" without
learning. Two fixed-size features are fed to scikit-learn's ``LogisticRegression``
(standardised, max_iter=2000), once with C=1 and once with C chosen on the validation
split from 0.01 / 0.1 / 1 / 10 (the same kind of selection the capsule features get in
``canocaps eval classification``):

* ``occupancy``: an 8x8x8 histogram of the points over [-1, 1]^3 (fractions, 512-D);
* ``sorted``: the sorted coordinates along each PCA axis (3 x 64 quantiles, 192-D);
* ``both``: the two concatenated.

Reported beside them: the same classifier on the clouds in their *given* canonical pose
(no rotation, no PCA: the upper reference for such a linear baseline) and on randomly
rotated clouds under PCA, which is what a model sees at test time. A low score under
PCA means pose normalisation alone does not solve the task; a high score in the given
pose means the classes are separable once the pose is known.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def pca_frame(points: np.ndarray) -> np.ndarray:
    """``(N, 3)`` -> the cloud in its PCA frame scaled to unit radius.

    The frame is the library's (:func:`canocaps.geometry.pca_frame`: axes by decreasing
    variance, the first two signed by positive skewness, the third their cross product, so
    a proper rotation); the farthest point then has norm 1.
    """
    import torch

    from canocaps.geometry import pca_frame as _pca

    x = torch.as_tensor(points, dtype=torch.float64)
    R, t = _pca(x)
    q = (x @ R.T + t).numpy()
    return q / np.linalg.norm(q, axis=1).max()


def features(points: np.ndarray, kind: str, bins: int = 8, quantiles: int = 64) -> np.ndarray:
    """Fixed-size feature of one ``(N, 3)`` cloud in [-1, 1]^3 (see the module docstring)."""
    out = []
    if kind in ("occupancy", "both"):
        h, _ = np.histogramdd(points, bins=bins, range=[(-1, 1)] * 3)
        out.append(h.ravel() / len(points))
    if kind in ("sorted", "both"):
        qs = np.linspace(0, 1, quantiles)
        out.append(np.quantile(points, qs, axis=0).T.ravel())
    return np.concatenate(out)


def random_rotations(n: int, generator: Any) -> np.ndarray:
    """``(n, 3, 3)`` float64 rotations uniform on SO(3) (:func:`canocaps.geometry.random_rotation`)."""
    import torch

    from canocaps.geometry import random_rotation

    return random_rotation(n, dtype=torch.float64, generator=generator).numpy()


def evaluate(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
             test: tuple[np.ndarray, np.ndarray], kind: str) -> dict[str, float]:
    """Test accuracy with C=1, and with C chosen on ``val`` (the smaller C on ties)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {name: np.stack([features(p, kind) for p in split[0]]) for name, split in
         (("train", train), ("val", val), ("test", test))}
    out: dict[str, float] = {}
    best = (-1.0, 0.0, 0.0)
    for C in (0.01, 0.1, 1.0, 10.0):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        clf.fit(x["train"], train[1])
        val_acc = float((clf.predict(x["val"]) == val[1]).mean())
        test_acc = float((clf.predict(x["test"]) == test[1]).mean())
        if C == 1.0:
            out["test_accuracy"] = test_acc
        if val_acc > best[0]:
            best = (val_acc, C, test_acc)
    out.update(val_selected_C=best[1], val_accuracy=best[0], val_selected_test_accuracy=best[2])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class-train", type=int, default=300)
    ap.add_argument("--per-class-test", type=int, default=50)
    ap.add_argument("--per-class-val", type=int, default=30)
    ap.add_argument("--num-points", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random test rotations")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    return guarded("baseline_pca_classifier", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import torch

    from canocaps._files import atomic_write_text
    from canocaps.data.procedural import ProceduralShapes

    t0 = time.time()
    sets = {}
    for split, pc in (("train", args.per_class_train), ("val", args.per_class_val), ("test", args.per_class_test)):
        ds = ProceduralShapes(split, args.num_points, per_class=pc, sampling="first")
        pts = np.stack([ds[i]["points"].numpy() for i in range(len(ds))]).astype(np.float64)
        sets[split] = (pts, ds.labels.copy())
    rng = torch.Generator().manual_seed(args.seed)
    rows = []
    for setting in ("given pose (no PCA)", "PCA frame", "random rotation + PCA frame"):
        tr, va, te = sets["train"], sets["val"], sets["test"]
        if setting != "given pose (no PCA)":
            if setting.startswith("random"):
                tr, va, te = ((np.einsum("sij,snj->sni", random_rotations(len(d[0]), rng), d[0]), d[1])
                              for d in (tr, va, te))
            tr, va, te = ((np.stack([pca_frame(p) for p in d[0]]), d[1]) for d in (tr, va, te))
        for kind in ("occupancy", "sorted", "both"):
            rows.append({"setting": setting, "feature": kind, **evaluate(tr, va, te, kind)})
    n_cls = len(np.unique(sets["train"][1]))
    print(f"procedural: {n_cls} classes, {len(sets['train'][1])} train / {len(sets['val'][1])} val / "
          f"{len(sets['test'][1])} test shapes, "
          f"N={args.num_points}; LogisticRegression on standardised features; chance {1 / n_cls:.3f}")
    print(f"{'setting':<30} {'feature':<10} {'test acc (C=1)':>14} {'test acc (C on val)':>19} {'C':>5}")
    for r in rows:
        print(f"{r['setting']:<30} {r['feature']:<10} {r['test_accuracy']:14.3f} "
              f"{r['val_selected_test_accuracy']:19.3f} {r['val_selected_C']:5g}")
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        atomic_write_text(args.json, json.dumps({"rows": rows, "args": vars(args), "chance": 1 / n_cls}, indent=2), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
