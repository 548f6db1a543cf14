#!/usr/bin/env python
"""Canonicalise one shape under many random rotations; overlay the canonical clouds (canocaps vs PCA).

    python tools/view_stability.py [CLOUD] [--copies 8] [--weights W] [--png out.png]

A stable canonicaliser puts every rotated copy in the same pose: the overlaid clouds coincide.
"""
from __future__ import annotations

import argparse

from _viewer_common import DEMO_A, add_common_args, run


def canonical_copies(canonicalizer, clouds):
    import numpy as np
    import torch

    res = canonicalizer.canonicalize(torch.as_tensor(np.stack(clouds), dtype=torch.float32))
    out = res.canonical_points
    return [np.asarray(c.detach().cpu() if hasattr(c, "detach") else c) for c in out]


def main(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import canocaps
    from canocaps import viz
    from canocaps.data import normalize_unit_sphere
    from canocaps.geometry import random_rotation
    from canocaps.heads.baselines import PCACanonicalizer

    model = canocaps.load_pretrained(args.weights, device="cpu" if args.device is None else args.device)
    n = model.config.num_points
    points = normalize_unit_sphere(canocaps.read_points(args.cloud, num_points=n))
    g = torch.Generator().manual_seed(args.seed)
    Q = random_rotation(args.copies, generator=g, dtype=torch.float64).numpy()
    rotated = [(points @ q.T).astype(np.float32) for q in Q]
    ours = canonical_copies(model, rotated)
    pca = canonical_copies(PCACanonicalizer(), rotated)
    if args.png:
        viz.save_stability_png(rotated, ours, args.png, args.force, baseline=pca)
        print(f"wrote {args.png}")
        return 0
    return 0 if viz.show_stability(rotated, ours) else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="view_stability", description=__doc__.splitlines()[0])
    p.add_argument("cloud", nargs="?", default=str(DEMO_A))
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    add_common_args(p)
    run(main, p)
