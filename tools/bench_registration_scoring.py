#!/usr/bin/env python
"""The registration head's nearest-neighbour queries and alignment scoring, against what they replaced.

``canocaps.register`` scores every hypothesis it tries (after the short ICP of the
screening, after the full refinement) and ranks many more cheaply. Times, in one process
with the runs of the two alternating (medians of ``--repeats``), on two independent
2,048-point samples of procedural test shapes (the target of the queries is B):

* nearest target point of 2,048 query points: :class:`canocaps.heads.icp.NearestNeighbors`
  (Open3D's k-d tree) against ``scipy.spatial.cKDTree``;
* the cheap screening query (50 rotations x 256 points of A at once), unbounded (Open3D's
  k-d tree against scipy's) and bounded at 3 inlier distances (``NearestNeighbors`` hands
  bounded queries to scipy: the two columns time the same code);
* scoring one alignment (fitness, inlier RMSE, correspondences, robust score, core
  distance): :func:`canocaps.heads.icp.measure` on one :class:`NearestNeighbors` against
  Open3D's ``evaluate_registration`` plus a ``cKDTree`` query (the scoring before), and
  checks that the two give the same figures.

    OMP_NUM_THREADS=1 python tools/bench_registration_scoring.py --json bench_registration_scoring.json

Prints a Markdown table and (``--json``) writes the rows.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from typing import Any

import numpy as np

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script
from _timing import paired_medians


def _old_scoring(src_pcd: Any, tgt_pcd: Any, tree: Any, points: np.ndarray, T: np.ndarray, dist: float) -> Any:
    """The scoring before :func:`measure`: Open3D's evaluation, then a second query for the scores."""
    from dataclasses import replace

    from canocaps.heads import icp as I

    out = I.evaluate(src_pcd, tgt_pcd, T, dist)
    d = I.nearest_distances(points, tree, T)
    return replace(out, score=I.robust_score(d, dist), core_distance=I.core_distance(d))


def run(args: argparse.Namespace) -> int:
    from scipy.spatial import cKDTree
    from scipy.spatial.transform import Rotation

    from canocaps.data import open_dataset
    import open3d.core as o3c

    from canocaps.heads import icp as I

    ds = open_dataset("procedural", "test", 2048, resample_views=True)
    rows: list[dict[str, Any]] = []
    agree = True
    for i in range(args.shapes):
        item = ds[i * max(1, len(ds) // args.shapes)]
        a = np.asarray(item["points"], dtype=np.float64)
        b = np.asarray(item["points_b"], dtype=np.float64)
        dist = 0.05 * float(np.linalg.norm(b - b.mean(0), axis=1).max())
        index, tree = I.NearestNeighbors(b), cKDTree(b)
        Ts = np.tile(np.eye(4), (50, 1, 1))
        Ts[:, :3, :3] = Rotation.random(50, random_state=i).as_matrix()
        cheap = (np.einsum("hij,nj->hni", Ts[:, :3, :3], a[:256])).reshape(-1, 3)
        T = np.eye(4)
        T[:3, 3] = 0.01
        src_pcd, tgt_pcd = I.to_pcd(a), I.to_pcd(b)
        cases = [
            ("nearest of 2,048 points", lambda: index.query(a), lambda: tree.query(a)),
            ("cheap screen (50 x 256 points, unbounded)", lambda: index._nns.knn_search(o3c.Tensor(cheap), 1),
             lambda: tree.query(cheap)),
            ("cheap screen (50 x 256 points, bounded)", lambda: index.query(cheap, distance_upper_bound=3 * dist),
             lambda: tree.query(cheap, distance_upper_bound=3 * dist)),
            ("score one alignment", lambda: I.measure(a, index, T, dist),
             lambda: _old_scoring(src_pcd, tgt_pcd, tree, a, T, dist)),
        ]
        for name, ours, theirs in cases:
            t_new, t_old = paired_medians(ours, theirs, args.repeats)
            rows.append({"shape": i, "case": name, "new_us": t_new, "old_us": t_old})
        new, old = I.measure(a, index, T, dist), _old_scoring(src_pcd, tgt_pcd, tree, a, T, dist)
        agree &= bool(abs(new.fitness - old.fitness) <= 1.0 / len(a) and np.isclose(new.score, old.score)
                      and np.isclose(new.core_distance, old.core_distance)
                      and np.isclose(new.inlier_rmse, old.inlier_rmse, rtol=1e-3))
        print(f"shape {i + 1}/{args.shapes} done", file=sys.stderr, flush=True)
    print(f"{args.shapes} procedural test shapes, 2,048 points a view; medians of {args.repeats} runs (microseconds); "
          f"{platform.processor() or platform.machine()}")
    print("| case | canocaps now | before | speed-up |")
    print("|---|---|---|---|")
    summary = {}
    for name in dict.fromkeys(r["case"] for r in rows):
        new = statistics.median(r["new_us"] for r in rows if r["case"] == name)
        old = statistics.median(r["old_us"] for r in rows if r["case"] == name)
        summary[name] = {"new_us": new, "old_us": old, "speedup": old / new}
        print(f"| {name} | {new:.0f} | {old:.0f} | {old / new:.2f}x |")
    print(f"same figures from both scorings: {agree}")
    if args.json:
        from canocaps._files import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "summary": summary, "same_figures": agree,
                                                 "command": " ".join(sys.argv)}, indent=1), force=args.force)
    return 0 if agree else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", type=int, default=5, help="procedural test shapes (default 5)")
    p.add_argument("--repeats", type=int, default=50, help="timed runs per case and shape (default 50)")
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    args = p.parse_args(argv)
    return guarded("bench_registration_scoring", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
