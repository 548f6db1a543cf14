#!/usr/bin/env python
"""How `canocaps.register` should choose among its hypotheses: the validation study.

For each real-mesh *validation* pair (the conditions of ``bench_registration``), it builds
the hypotheses ``register`` builds (the network's frame, flips, swaps, capsule matches and
triplets, PCA's frames), screens them as ``register`` does (cheap k-d tree score, the best
``--screen-top`` at least ``--min-angle`` degrees apart), runs the short and the full ICP
on *every* kept hypothesis, and then replays the ranking rules on those results:

* ``fitness``: fitness, then inlier RMSE (the rule before this study);
* ``robust s``: :func:`canocaps.heads.icp.robust_score` with scale ``s``;
* ``robust + core``: the robust score, or :func:`canocaps.heads.icp.core_distance` when
  the best short-ICP fitness is below ``--overlap-threshold`` (what ``register`` does now);

each with the ``refine_top`` best (by the same rule) taken from the short to the full ICP.
``ceiling`` is the share of pairs where some kept hypothesis ends right after the full ICP.
Recall: RRE < 5 deg and RTE < 0.05. The study replays the first round only: ``register``'s
later translation search for partial views (``shift_search``) is not part of it.

    python tools/study_registration_selection.py --json selection_study.json
    python tools/study_registration_selection.py --conditions partial --limit 40 --min-angle 0

Prints a Markdown table; ``--json`` also writes it with the arguments.
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
    p.add_argument("--conditions", default="clean,noisy,partial,sparse")
    p.add_argument("--limit", type=int, default=None, help="pairs per condition (spread over the split)")
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--screen-top", type=int, default=8)
    p.add_argument("--min-angle", type=float, default=30.0, help="degrees between kept hypotheses (0: plain ranking)")
    p.add_argument("--overlap-threshold", type=float, default=0.85)
    p.add_argument("--weights", default=None)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("study_registration_selection", lambda: _run(args))


def _outcomes(pair: Any, model: Any, args: argparse.Namespace) -> tuple[float, list[dict[str, Any]]]:
    """Short and full ICP of every kept hypothesis of one pair: ``(dist, [{stage: figures}])``."""
    from dataclasses import replace

    from scipy.spatial import cKDTree

    from canocaps.heads import icp as _icp
    from canocaps.heads.registration import (DEFAULT_DISTANCE_FACTOR, HYPOTHESES, initial_alignments,
                                             registration_errors, screen_alignments)
    from canocaps.io import subsample, unit_sphere

    pa, pb = pair.a.astype(np.float64), pair.b.astype(np.float64)
    _, rb = unit_sphere(pb)
    cands = initial_alignments(model, pa, pb, HYPOTHESES)
    dist = DEFAULT_DISTANCE_FACTOR * rb
    src, tgt = _icp.to_pcd(subsample(pa, 4096, 2)), _icp.to_pcd(subsample(pb, 4096, 3))
    _icp.estimate_normals(tgt)
    src_points, tree = np.asarray(src.points), cKDTree(np.asarray(tgt.points))
    kept = screen_alignments(subsample(pa, 256, 4), tree, cands, 3.0 * dist, args.screen_top, args.min_angle)
    rows = []
    for _, T0 in kept:
        short = _icp.icp(src, tgt, T0, dist, "point_to_plane", 10)
        full = _icp.icp(src, tgt, short.transformation, dist, "point_to_plane", 50)
        row = {}
        for stage, out in (("short", short), ("full", full)):
            d = _icp.nearest_distances(src_points, tree, out.transformation)
            e = registration_errors(out.transformation, pair.T_gt, pair.a)
            row[stage] = replace(out, correspondence_set=np.empty((0, 2), np.int64))
            row[stage + "_d"] = d
            row[stage + "_ok"] = bool(e["rre_deg"] < 5.0 and e["rte"] < 0.05)
        rows.append(row)
    return dist, rows


def _rules(threshold: float) -> dict[str, Any]:
    """Ranking rules: name -> function(row, stage, dist, low_overlap) -> key, lower is better."""
    from canocaps.heads.icp import core_distance, robust_score

    rules: dict[str, Any] = {"fitness": lambda r, s, dist, low: (-round(r[s].fitness, 3), r[s].inlier_rmse)}
    for scale in (0.3, 0.5, 1.0):
        rules[f"robust {scale}"] = (lambda sc: lambda r, s, dist, low: -robust_score(r[s + "_d"], dist, sc))(scale)
    rules[f"robust 0.5 + core (fitness < {threshold:g})"] = (
        lambda r, s, dist, low: core_distance(r[s + "_d"]) / dist if low else -robust_score(r[s + "_d"], dist))
    return rules


def _replay(dist: float, rows: list[dict[str, Any]], rule: Any, refine_top: int, threshold: float) -> bool:
    """Whether ``rule`` with ``refine_top`` full refinements picks a right transform."""
    low = max(r["short"].fitness for r in rows) < threshold
    order = sorted(range(len(rows)), key=lambda j: rule(rows[j], "short", dist, low))
    refined = set(order[:refine_top])
    stage = {j: ("full" if j in refined else "short") for j in range(len(rows))}
    best = min(range(len(rows)), key=lambda j: rule(rows[j], stage[j], dist, low))
    return rows[best][stage[best] + "_ok"]


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from _cli import write_study_json
    from canocaps._files import check_outputs
    from canocaps.commands._common import format_table
    from canocaps.heads.registration import make_test_pairs
    from canocaps.pretrained import load_pretrained, resolve_weights

    check_outputs(args.force, args.json)
    model = load_pretrained(resolve_weights(args.weights))
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    rules = _rules(args.overlap_threshold)
    table: list[list[Any]] = []
    results: dict[str, Any] = {}
    for cond in conditions:
        pairs = make_test_pairs(args.data, args.split, args.num_points, args.limit, condition=cond)
        per_pair = [_outcomes(p, model, args) for p in tqdm(pairs, desc=cond, unit="pair")]
        ceiling = float(np.mean([any(r["full_ok"] for r in rows) for _, rows in per_pair]))
        results[cond] = {"pairs": len(pairs), "ceiling": ceiling, "recall": {}}
        for name, rule in rules.items():
            for top in (2, 3, args.screen_top):
                recall = float(np.mean([_replay(d, rows, rule, top, args.overlap_threshold) for d, rows in per_pair]))
                results[cond]["recall"][f"{name} / refine_top {top}"] = recall
                table.append([cond, name, top, recall, ceiling])
    print(format_table(["condition", "ranking rule", "refine_top", "recall", "ceiling"], table))
    print(f"\n{args.data}/{args.split}, {args.num_points} points, screen_top {args.screen_top}, "
          f"min angle {args.min_angle:g} deg")
    write_study_json(args, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
