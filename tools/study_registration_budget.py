#!/usr/bin/env python
"""How much ICP `canocaps.register` needs on partial views: recall against time, the validation study.

On partial pairs most of ``register``'s time goes to short ICPs: 8 screened hypotheses, then
(the clouds overlapping in part) 8 frame rotations with voted translations (``shift_search``),
then 3 full refinements. This study asks whether a cheaper schedule keeps the recall.

For each real-mesh *validation* pair it builds ``register``'s hypotheses, keeps the 16 best by
the cheap score (``R``, pairwise >= 30 deg apart) and, for clouds dense enough for the vote,
the 16 best shifted ones (``S``); every one of them gets each short-ICP variant
``(points of A, iterations per stage)`` followed by the full ICP, all measured on the
refinement's points, each call timed. It then replays the schedule
``a`` of ``R`` + (when the best short fitness is below 0.85) ``b`` of ``S``, ranked as
``register`` ranks them, the best ``K`` refined, over a grid of ``(variant, a, b, K)``, and
prints the schedules on the recall / time frontier. Time is the median over pairs of the
measured calls a schedule makes: its short ICPs (each with its measurement), its ``K`` full
ICPs and the translation vote when it runs; the network, the cheap score and the normals
(about 70 ms a pair) are the same for every schedule and left out.
Until session 11 ``register`` ran one round: variant ``(2048, 10)``, ``a = b = 8``, ``K = 3``.

The second table replays the two-round schedule ``register`` now uses on partial views
(``canocaps.heads.registration.PARTIAL_FIRST`` and the constants after it): short ICPs on 512
points (512 x 10) of the ``first`` screened hypotheses decide whether the clouds overlap in part
only; if they do, the vote runs, the ``b`` best shifted ones get short ICPs (512 x 10), and the
best of all is refined. That ends it when its core distance is below ``accept`` inlier
distances; otherwise both rankings down to ``top`` get short ICPs (512 x 10) and the best ``K2``
of all are refined. "Part only" is register's rule: a best fitness below
``OVERLAP_SHARE`` of the attainable fitness (an absolute 0.85 until session 12, as the one-round
replay still uses). Clouds too sparse for the vote, or overlapping in full, get the single
round of ``screen_top = 8`` short ICPs on all points (2048 x 10), ``refine_top = 3`` (after the
decision's ICPs, when there was one).

    python tools/study_registration_budget.py --json budget.json
    python tools/study_registration_budget.py --limit 40 --conditions partial,clean

Run it on a quiet machine (the times are the point); recall is RRE < 5 deg and RTE < 0.05.
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import sys
import time
from typing import Any

import numpy as np

VARIANTS = ((512, 5), (512, 10), (2048, 5), (2048, 10))
CURRENT = ((2048, 10), 8, 8, 3)  # the single round register ran until session 11
ACCEPTS = (0.14, 0.16, 0.18, 0.2, 0.22, float("inf"))  # inf: round one always ends it


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="realmesh")
    p.add_argument("--split", default="val", help="tune on val (default); never on test")
    p.add_argument("--conditions", default="partial")
    p.add_argument("--limit", type=int, default=None, help="pairs per condition (spread over the split)")
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--weights", default=None)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("study_registration_budget", lambda: _run(args))


def _timed(f: Any, *a: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = f(*a)
    return out, time.perf_counter() - t


def _outcomes(pair: Any, model: Any) -> dict[str, Any]:
    """Every variant's short ICP and the full ICP after it, for ``R`` and ``S`` of one pair."""
    from canocaps.heads import icp as _icp
    from canocaps.heads.registration import (DEFAULT_DISTANCE_FACTOR, HYPOTHESES, OVERLAP_SHARE, SCREEN_ALWAYS,
                                             SHIFT_MIN_DENSITY, _attainable_fitness, _diverse_first, _ranked, initial_alignments,
                                             registration_errors, shifted_alignments)
    from canocaps.io import subsample, unit_sphere

    pa, pb = pair.a.astype(np.float64), pair.b.astype(np.float64)
    _, rb = unit_sphere(pb)
    dist = DEFAULT_DISTANCE_FACTOR * rb
    cands = initial_alignments(model, pa, pb, HYPOTHESES)
    src, tgt = _icp.to_pcd(subsample(pa, 4096, 2)), _icp.to_pcd(subsample(pb, 4096, 3))
    _icp.estimate_normals(tgt)
    src_points, tree = np.asarray(src.points), _icp.NearestNeighbors(np.asarray(tgt.points))
    screen = subsample(pa, 256, 4)
    ranked = _ranked(screen, tree, cands, 3.0 * dist)
    hyps_r = _diverse_first(ranked, 16, 30.0)
    pinned = [c for c in ranked if c[0] in SCREEN_ALWAYS]  # register screens these wherever they rank
    hyps_s: list[tuple[str, np.ndarray]] = []
    vote_s = 0.0
    attainable = _attainable_fitness(tree, dist)
    dense = attainable >= SHIFT_MIN_DENSITY
    if dense:
        frames = [c for c in ranked if not c[0].startswith("capsule")]
        shifted, vote_s = _timed(shifted_alignments, screen, subsample(pb, 256, 5), frames, dist)
        hyps_s = _diverse_first(_ranked(screen, tree, shifted, 3.0 * dist), 16, 30.0)
    few = {n: _icp.to_pcd(subsample(pa, n, 6)) if n < len(src_points) else src for n, _ in VARIANTS}
    rec: dict[str, Any] = {}
    in_r = {n for n, _ in hyps_r}
    for name, T0 in hyps_r + [c for c in pinned if c[0] not in in_r] + hyps_s:
        rec[name] = {}
        for n, it in VARIANTS:
            T, dt = _timed(_icp.icp_transform, few[n], tgt, T0, dist, "point_to_plane", it)
            short, dm = _timed(_icp.measure, src_points, tree, T, dist)
            Tf, df = _timed(_icp.icp_transform, src, tgt, T, dist, "point_to_plane", 50)
            full, dn = _timed(_icp.measure, src_points, tree, Tf, dist)
            e = registration_errors(Tf, pair.T_gt, pair.a)
            rec[name][(n, it)] = dict(fit=short.fitness, score=short.score, core=short.core_distance / dist,
                                      fscore=full.score, fcore=full.core_distance / dist,
                                      ok=bool(e["rre_deg"] < 5.0 and e["rte"] < 0.05),
                                      short_s=dt + dm, full_s=df + dn)
    # register's cutoff of "part only" (its default sparse_overlap_threshold for sparse clouds)
    cutoff = OVERLAP_SHARE * attainable if dense else 0.85
    return {"R": [n for n, _ in hyps_r], "S": [n for n, _ in hyps_s], "P": [n for n, _ in pinned], "rec": rec,
            "vote_s": vote_s, "cutoff": cutoff}


def _replay(pair: dict[str, Any], variant: tuple[int, int], a: int, b: int, k: int,
            threshold: float = 0.85) -> tuple[bool, float]:
    """``register``'s choice under one schedule: (right, seconds its ICPs, measurements and vote took)."""
    rec = pair["rec"]
    pool = pair["R"][:a]
    low = max(rec[n][variant]["fit"] for n in pool) < threshold
    shifted = low and bool(pair["S"])
    if shifted:
        pool = pool + pair["S"][:b]

    def rank(n: str, full: bool = False) -> float:
        r = rec[n][variant]
        return round(r["fcore" if full else "core"], 4) if low else -round(r["fscore" if full else "score"], 4)

    top = sorted(pool, key=rank)[:k]
    seconds = sum(rec[n][variant]["short_s"] for n in pool) + sum(rec[n][variant]["full_s"] for n in top)
    return rec[min(top, key=lambda n: rank(n, True))][variant]["ok"], seconds + (pair["vote_s"] if shifted else 0.0)


def _replay_rounds(pair: dict[str, Any], first: int, b: int, accept: float, top: int, k2: int,
                   screen_top: int = 8, refine_top: int = 3) -> tuple[bool, float]:
    """``register``'s choice under the two-round schedule: (right, seconds its ICPs, measurements and vote took).

    Part only: a best short fitness below ``pair["cutoff"]`` (register's, from :func:`_outcomes`). The
    single round screens ``pair["P"]`` too (register's ``SCREEN_ALWAYS``) wherever they rank.
    """
    rec, R, S, threshold = pair["rec"], pair["R"], pair["S"], pair["cutoff"]
    one_round = R[:screen_top] + [n for n in pair.get("P", []) if n not in R[:screen_top]]
    whole, part = (2048, 10), (512, 10)
    variant: dict[str, tuple[int, int]] = {}
    refined: list[str] = []
    seconds = 0.0

    def short(names: list[str], v: tuple[int, int]) -> None:
        nonlocal seconds
        for n in names:
            if n not in variant:
                variant[n] = v
                seconds += rec[n][v]["short_s"]

    def rank(n: str, low: bool, full: bool = False) -> float:
        r = rec[n][variant[n]]
        return round(r["fcore" if full else "core"], 4) if low else -round(r["fscore" if full else "score"], 4)

    def refine(k: int, low: bool) -> str:
        nonlocal seconds
        for n in [n for n in sorted(variant, key=lambda n: rank(n, low)) if n not in refined][:max(0, k - len(refined))]:
            refined.append(n)
            seconds += rec[n][variant[n]]["full_s"]
        return min(refined, key=lambda n: rank(n, low, True))

    dense = bool(S)  # the study builds shifted hypotheses only where the vote may run
    short(R[:first] if dense else one_round, part if dense else whole)
    low = max(rec[n][variant[n]]["fit"] for n in variant) < threshold
    if not (dense and low):  # one round, on all points
        variant.clear()
        short(one_round, whole)
        low = max(rec[n][whole]["fit"] for n in variant) < threshold
        if not (dense and low):  # (all points may still find a partial overlap: then on as below)
            best = refine(refine_top, low)
            return rec[best][variant[best]]["ok"], seconds
    seconds += pair["vote_s"]
    short(S[:b], part)
    best = refine(1, True)
    if rec[best][variant[best]]["fcore"] >= accept:
        short(R[:top] + S[:top], part)
        best = refine(k2, True)
    return rec[best][variant[best]]["ok"], seconds


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from _cli import write_study_json
    from canocaps._files import check_outputs
    from canocaps.commands._common import format_table
    from canocaps.heads.registration import make_test_pairs
    from canocaps.pretrained import load_pretrained, resolve_weights

    check_outputs(args.force, args.json)
    model = load_pretrained(resolve_weights(args.weights))
    from canocaps.heads import registration as reg

    results: dict[str, Any] = {}
    table: list[list[Any]] = []
    rounds_table: list[list[Any]] = []
    for cond in (c.strip() for c in args.conditions.split(",") if c.strip()):
        pairs = make_test_pairs(args.data, args.split, args.num_points, args.limit, condition=cond)
        per_pair = [_outcomes(p, model) for p in tqdm(pairs, desc=cond, unit="pair")]
        rows = []
        for variant, a, b, k in itertools.product(VARIANTS, (4, 8, 12, 16), (4, 8, 12, 16), (1, 2, 3, 4)):
            outs = [_replay(pp, variant, a, b, k) for pp in per_pair]
            ms = [1e3 * s for _, s in outs]
            rows.append({"variant": list(variant), "a": a, "b": b, "K": k, "recall": float(np.mean([o for o, _ in outs])),
                         "model_ms": float(np.median(ms)), "current": (variant, a, b, k) == CURRENT})
        frontier, best = [], -1.0
        for r in sorted(rows, key=lambda r: (r["model_ms"], -r["recall"])):
            if r["recall"] > best or r["current"]:
                best = max(best, r["recall"])
                frontier.append(r)
        current = next(r for r in rows if r["current"])
        results[cond] = {"pairs": len(pairs), "current": current, "frontier": frontier}
        for r in frontier:
            table.append([cond, "{}x{}".format(*r["variant"]), r["a"], r["b"], r["K"], r["recall"], r["model_ms"],
                          "one round (until session 11)" if r["current"] else ""])
        screen_top = inspect.signature(reg.register).parameters["screen_top"].default
        default = (reg.PARTIAL_FIRST, screen_top, reg.PARTIAL_ACCEPT, reg.PARTIAL_TOP, reg.PARTIAL_REFINE_TOP)
        rounds = []
        for first, b, accept, top, k2 in itertools.product((4, 8), (8, 12), ACCEPTS, (8, 12, 16), (3, 4)):
            outs = [_replay_rounds(pp, first, b, accept, top, k2) for pp in per_pair]
            rounds.append({"first": first, "b": b, "accept": accept, "top": top, "K2": k2,
                           "recall": float(np.mean([o for o, _ in outs])),
                           "model_ms": float(np.median([1e3 * s for _, s in outs])),
                           "default": (first, b, accept, top, k2) == default})
        frontier, best = [], -1.0
        for r in sorted(rounds, key=lambda r: (r["model_ms"], -r["recall"])):
            if r["recall"] > best or r["default"]:
                best = max(best, r["recall"])
                frontier.append(r)
        results[cond]["rounds_default"] = next(r for r in rounds if r["default"])
        results[cond]["rounds_frontier"] = frontier
        for r in frontier:
            rounds_table.append([cond, r["first"], r["b"], r["accept"], r["top"], r["K2"], r["recall"], r["model_ms"],
                                 "register today" if r["default"] else ""])
    print("One round (register until session 11 on every pair):")
    print(format_table(["condition", "short ICP (points x iterations)", "a", "b", "K", "recall", "ICP + vote ms",
                        ""], table))
    print("\nTwo rounds on partial views (register today):")
    print(format_table(["condition", "first", "b", "accept", "top", "K2", "recall", "ICP + vote ms", ""], rounds_table))
    write_study_json(args, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
