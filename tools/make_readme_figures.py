#!/usr/bin/env python
"""Regenerate the README pictures from the shipped weights (headless, deterministic).

    python tools/make_readme_figures.py [--weights W] [--out docs/img] [--force]

Writes capsules_classes.png (capsules on several procedural test shapes, canonical
frame), parts_vs_capsules.png (the generator's parts beside the capsules, with the NMI of
each shape and of k-means), registration_demo.png (the bundled demo pair) and
stability_vs_pca.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _viewer_common import DEMO_A, DEMO_B, run

CLASSES = ("airplane", "chair", "table", "lamp", "car", "guitar")
PART_CLASSES = ("airplane", "chair", "lamp")


def main(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import canocaps
    from canocaps import viz
    from canocaps.data import build_dataset
    from canocaps.geometry import random_rotation
    from canocaps.heads.baselines import PCACanonicalizer

    out = Path(args.out)
    model = canocaps.load_pretrained(args.weights, device="cpu")
    n = model.config.num_points
    test = build_dataset("procedural", "test", num_points=n, sampling="first", progress=False)
    names = list(test.class_names)
    labels = np.array([test.get_label(i) for i in range(len(test))])

    # 1. capsules on several classes: each shape randomly rotated, shown in its canonical frame
    g = torch.Generator().manual_seed(0)
    panels = []
    for name in CLASSES:
        idx = int(np.flatnonzero(labels == names.index(name))[0])
        x = test[idx]["points"][None] @ random_rotation(1, generator=g).transpose(-1, -2)
        res = model.canonicalize(x)
        panels.append(viz.capsules_panel(res.canonical_points[0], res.assignment[0], res.canonical_keypoints[0], name))
    viz.render_panels(panels, out / "capsules_classes.png", args.force, panel_size=2.6)

    # 1b. capsules against the generator's parts, one test shape per class, randomly rotated
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from canocaps.data.procedural.generator import sample_shape_parts

    panels, g_parts = [], torch.Generator().manual_seed(1)  # its own generator: the other figures' rotations stay
    for name in PART_CLASSES:
        pts, parts = sample_shape_parts(name, 0, "test", 0, n)
        x = torch.as_tensor(pts)[None] @ random_rotation(1, generator=g_parts).transpose(-1, -2)
        res = model.canonicalize(x)
        assign = np.asarray(res.assignment[0])
        km = KMeans(model.config.num_capsules, n_init=1, random_state=0).fit_predict(np.asarray(x[0]))
        panels.append(viz.capsules_panel(res.canonical_points[0], parts, None, f"{name}: parts"))
        panels.append(viz.capsules_panel(res.canonical_points[0], assign, res.canonical_keypoints[0],
                                         f"capsules: NMI {nmi(parts, assign):.2f} (k-means {nmi(parts, km):.2f})"))
    viz.render_panels(panels, out / "parts_vs_capsules.png", args.force, panel_size=2.6)

    # 2. the demo registration
    a, b = canocaps.read_points(DEMO_A), canocaps.read_points(DEMO_B)
    result = canocaps.register(a, b, model=model)
    viz.save_registration_png(a, b, result.apply(a), out / "registration_demo.png", args.force,
                              title=f"demo pair: fitness {result.fitness:.3f}, inlier RMSE {result.inlier_rmse:.4f}")

    # 3. stability vs PCA on one test airplane: 8 independent n-point selections of its
    # 2,048-point surface sample (like 8 scans), each randomly rotated
    idx = int(np.flatnonzero(labels == names.index("airplane"))[1])
    full = build_dataset("procedural", "test", num_points=2048, sampling="first", progress=False)[idx]["points"]
    rng = np.random.default_rng(0)
    copies = torch.stack([full[torch.as_tensor(rng.choice(len(full), n, replace=False))] for _ in range(8)]).double()
    Q = random_rotation(8, generator=g, dtype=torch.float64)
    rotated = (copies @ Q.transpose(-1, -2)).float()
    ours = model.canonicalize(rotated).canonical_points
    pca = PCACanonicalizer().canonicalize(rotated).canonical_points
    viz.save_stability_png(list(rotated), list(ours), out / "stability_vs_pca.png", args.force,
                           baseline=[np.asarray(p) for p in pca],
                           title=f"8 rotated {n}-point samples of one airplane")
    for f in ("capsules_classes.png", "parts_vs_capsules.png", "registration_demo.png", "stability_vs_pca.png"):
        print(f"wrote {out / f}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="make_readme_figures", description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default="docs/img")
    p.add_argument("--force", action="store_true")
    run(main, p)
