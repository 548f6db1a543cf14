#!/usr/bin/env python
"""How far centring misplaces partial views, and how far the translation vote does.

For each real-mesh *validation* pair of a condition (default ``partial``: each view its
own 70 % half-space crop), take the true rotation turned by ``--angles`` degrees about a
fixed axis, and place A's centroid two ways: by centring both clouds (what a translation
read from the frames' centres gives) and by :func:`canocaps.heads.overlap.vote_translation`
(256 points of each view, bins of the inlier distance 0.05 radius, searched within 0.6
radius, as ``canocaps.register`` does). Prints the centroid error in radii of B (median,
and the share below 0.1: inside the basin of the coarse ICP stage at 0.15).

    python tools/study_translation_vote.py --json vote.json
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="realmesh")
    p.add_argument("--split", default="val", help="tune on val (default); never on test")
    p.add_argument("--condition", default="partial")
    p.add_argument("--limit", type=int, default=None, help="pairs (spread over the split)")
    p.add_argument("--angles", default="0,10", help="comma-separated rotation errors, degrees")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("study_translation_vote", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from scipy.spatial.transform import Rotation
    from tqdm.auto import tqdm

    from _cli import write_study_json
    from canocaps._files import check_outputs
    from canocaps.commands._common import format_table
    from canocaps.heads.overlap import vote_translation
    from canocaps.heads.registration import DEFAULT_DISTANCE_FACTOR, SHIFT_EXTENT, make_test_pairs
    from canocaps.io import subsample, unit_sphere

    check_outputs(args.force, args.json)
    pairs = make_test_pairs(args.data, args.split, 2048, args.limit, condition=args.condition)
    axis = np.array([0.6, 0.8, 0.0])
    table: list[list[Any]] = []
    results: dict[str, Any] = {}
    for angle in (float(a) for a in args.angles.split(",") if a.strip()):
        centred, voted = [], []
        for pair in tqdm(pairs, desc=f"{angle:g} deg", unit="pair"):
            pa, pb = pair.a.astype(np.float64), pair.b.astype(np.float64)
            ca, _ = unit_sphere(pa)
            cb, rb = unit_sphere(pb)
            R = Rotation.from_rotvec(np.radians(angle) * axis).as_matrix() @ pair.T_gt[:3, :3]
            start = cb - R @ ca
            dist = DEFAULT_DISTANCE_FACTOR * rb
            t = vote_translation(subsample(pa, 256, 4), subsample(pb, 256, 5), R, start, dist, SHIFT_EXTENT * dist)
            truth = pair.T_gt[:3, :3] @ ca + pair.T_gt[:3, 3]
            centred.append(np.linalg.norm(R @ ca + start - truth) / rb)
            voted.append(np.linalg.norm(R @ ca + t - truth) / rb)
        row = {}
        for name, err in (("centred", np.array(centred)), ("voted", np.array(voted))):
            row[name] = {"median": float(np.median(err)), "below_0.1": float(np.mean(err < 0.1))}
            table.append([angle, name, row[name]["median"], row[name]["below_0.1"]])
        results[f"{angle:g}"] = row
    print(format_table(["rotation error (deg)", "translation", "centroid error median (radii)", "share < 0.1"],
                       table))
    print(f"\n{len(pairs)} pairs, {args.data}/{args.split}/{args.condition}")
    write_study_json(args, pairs=len(pairs), results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
