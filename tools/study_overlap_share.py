#!/usr/bin/env python
"""When do two views overlap in part only? The overlap share of `canocaps.register`, the validation study.

``register`` ranks its hypotheses by the core distance and registers in two rounds when the
clouds overlap in part only. It tells that from the best short ICP's fitness (the share of A's
points within the inlier distance of B). Until session 12 the cutoff was an absolute 0.85; but
two whole, independent samples of a shape reach less than that under the true motion when they
are sparse for the inlier distance (or carry outliers). Such pairs went to the partial-view
schedule. ``register`` now compares with a share (``OVERLAP_SHARE``) of the *attainable*
fitness (``_attainable_fitness``: the share of B's points with another within the inlier
distance) for clouds dense enough for the translation vote.

Two tables, on the real-mesh *validation* pairs:

1. Per condition: the true fitness (A moved by the true motion onto B, the points ``register``
   uses) against the attainable fitness. Whole views sit at a ratio near 1, crops lower.
2. ``--shares``: recall and median time of ``register`` (the shipped weights, or PCA's frames
   with ``--frames pca``) per condition, with the absolute 0.85 ("abs") and each share as the
   cutoff for dense clouds (sparse clouds keep ``sparse_overlap_threshold``).

    python tools/study_overlap_share.py --json overlap_share.json
    python tools/study_overlap_share.py --shares abs,0.92 --conditions noisy:0,1 --limit 40
    python tools/study_overlap_share.py --shares 0.92 --screen-always none   # session 13's study

``--screen-always`` replays ``register`` with other hypotheses pinned into the screen
(``screen_always``; default: ``SCREEN_ALWAYS``, "none": the cheap score alone).

Recall is RRE < 5 deg and RTE < 0.05. Never tune on the test split.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

DEFAULT_CONDITIONS = "clean:0,noisy:0,1,2,3,4,partial:0,1,sparse:0,1"


def _parse_conditions(text: str) -> list[tuple[str, list[int]]]:
    """``"clean:0,noisy:0,1"`` -> ``[("clean", [0]), ("noisy", [0, 1])]`` (seeds of the degradations)."""
    from canocaps.errors import CanocapsInputError
    from canocaps.heads.registration import CONDITIONS

    out: list[tuple[str, list[int]]] = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        name, _, seed = token.partition(":")
        if out and not seed and token.isdigit():
            out[-1][1].append(int(token))
            continue
        if name not in CONDITIONS or (seed and not seed.isdigit()):
            raise CanocapsInputError(f"--conditions: {token!r} is not condition[:seed] "
                                     f"(conditions: {', '.join(CONDITIONS)})")
        out.append((name, [int(seed) if seed else 0]))
    if not out:
        raise CanocapsInputError("--conditions: give at least one")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="realmesh")
    p.add_argument("--split", default="val", help="tune on val (default); never on test")
    p.add_argument("--conditions", default=DEFAULT_CONDITIONS,
                   help=f"condition:seed,seed,... (default {DEFAULT_CONDITIONS})")
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--limit", type=int, default=None, help="pairs per condition and seed (spread over the split)")
    p.add_argument("--shares", default="abs,0.88,0.92,0.95,0.98",
                   help="cutoffs to replay with register: 'abs' (0.85 absolute) or shares of the attainable fitness; "
                        "empty: the fitness table only")
    p.add_argument("--frames", choices=("canocaps", "pca"), default="canocaps")
    p.add_argument("--screen-always", default=None,
                   help="hypothesis names always screened, comma-separated; 'none': none "
                        "(default: register's SCREEN_ALWAYS)")
    p.add_argument("--weights", default=None, help="weights name or path (default: the shipped weights)")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("study_overlap_share", lambda: _run(args))


def _fitness_ratios(pair: Any) -> dict[str, float]:
    """True and attainable fitness of one pair, on the points and inlier distance ``register`` uses."""
    from canocaps.heads import icp as _icp
    from canocaps.heads.registration import DEFAULT_DISTANCE_FACTOR, _attainable_fitness
    from canocaps.io import subsample, unit_sphere

    pa, pb = pair.a.astype(np.float64), pair.b.astype(np.float64)
    _, rb = unit_sphere(pb)
    dist = DEFAULT_DISTANCE_FACTOR * rb
    tree = _icp.NearestNeighbors(subsample(pb, 4096, 3))  # register's seeds: A + 2, B + 3
    true = _icp.measure(subsample(pa, 4096, 2), tree, pair.T_gt, dist).fitness
    return {"true": float(true), "attainable": _attainable_fitness(tree, dist)}


def _parse_screen_always(text: str | None) -> tuple[str, ...]:
    """``--screen-always``: None -> ``SCREEN_ALWAYS``; "none" -> (); "a,b" -> ("a", "b")."""
    from canocaps.heads.registration import SCREEN_ALWAYS

    if text is None:
        return tuple(SCREEN_ALWAYS)
    if text.strip().lower() == "none":
        return ()
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _register_with(share: str, frames: str, model: Any, pair: Any, attainable: float,
                   screen_always: tuple[str, ...]) -> tuple[bool, float]:
    """(right, seconds) of ``register`` on one pair with the cutoff ``share`` ("abs": 0.85 absolute)."""
    from canocaps.heads.registration import pca_register, register, registration_errors

    threshold = 0.85 / attainable if share == "abs" else float(share)
    t0 = time.perf_counter()
    if frames == "pca":
        res = pca_register(pair.a, pair.b, overlap_threshold=threshold, screen_always=screen_always)
    else:
        res = register(pair.a, pair.b, model=model, overlap_threshold=threshold, screen_always=screen_always)
    seconds = time.perf_counter() - t0
    e = registration_errors(res.transformation, pair.T_gt, pair.a)
    return bool(e["rre_deg"] < 5.0 and e["rte"] < 0.05), seconds


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from _cli import write_study_json
    from canocaps._files import check_outputs
    from canocaps.commands._common import format_table
    from canocaps.errors import CanocapsInputError
    from canocaps.heads.registration import OVERLAP_SHARE, SHIFT_MIN_DENSITY, make_test_pairs

    check_outputs(args.force, args.json)
    conditions = _parse_conditions(args.conditions)
    screen_always = _parse_screen_always(args.screen_always)
    shares = [s.strip() for s in args.shares.split(",") if s.strip()]
    for s in shares:
        if s != "abs":
            try:
                ok = 0.0 < float(s) <= 2.0
            except ValueError:
                ok = False
            if not ok:
                raise CanocapsInputError(f"--shares: 'abs' or numbers in (0, 2], not {s!r}")
    model = None
    if shares and args.frames == "canocaps":
        from canocaps.pretrained import load_pretrained, resolve_weights

        model = load_pretrained(resolve_weights(args.weights))

    fit_rows: list[list[Any]] = []
    recall_rows: list[list[Any]] = []
    results: dict[str, Any] = {}
    for cond, seeds in conditions:
        pairs = [p for s in seeds
                 for p in make_test_pairs(args.data, args.split, args.num_points, args.limit, condition=cond, seed=s)]
        fits = [_fitness_ratios(p) for p in tqdm(pairs, desc=f"{cond} fitness", unit="pair")]
        true = np.array([f["true"] for f in fits])
        att = np.array([f["attainable"] for f in fits])
        ratio = true / np.maximum(att, 1e-12)
        dense = att >= SHIFT_MIN_DENSITY
        q = np.percentile(ratio, [5, 50, 95])
        row: dict[str, Any] = {"pairs": len(pairs), "seeds": seeds, "dense": int(dense.sum()),
                               "true_below_0.85": int((true < 0.85).sum()),
                               "ratio_p5_p50_p95": [float(x) for x in q],
                               "ratio_below_share": int((ratio < OVERLAP_SHARE).sum())}
        fit_rows.append([cond, len(pairs), row["dense"], row["true_below_0.85"], *[round(float(x), 3) for x in q],
                         row["ratio_below_share"]])
        row["recall"] = {}
        for share in shares:
            outs = [_register_with(share, args.frames, model, p, f["attainable"], screen_always)
                    for p, f in tqdm(list(zip(pairs, fits)), desc=f"{cond} {share}", unit="pair")]
            right = int(sum(o for o, _ in outs))
            ms = float(np.median([1e3 * s for _, s in outs]))
            row["recall"][share] = {"right": right, "recall": right / len(pairs), "median_ms": ms}
            recall_rows.append([cond, share + (" (register today)" if share != "abs" and float(share) == OVERLAP_SHARE
                                               else " (until session 12)" if share == "abs" else ""),
                                f"{right}/{len(pairs)}", right / len(pairs), ms])
        results[cond] = row
    print("True fitness (A moved by the true motion) against the attainable fitness:")
    print(format_table(["condition", "pairs", "dense", "true < 0.85", "ratio p5", "ratio median", "ratio p95",
                        f"ratio < {OVERLAP_SHARE}"], fit_rows))
    if recall_rows:
        print(f"\nregister ({args.frames} frames) with each cutoff for dense clouds:")
        print(format_table(["condition", "cutoff", "right", "recall", "median ms"], recall_rows))
    print(f"\n{args.data}/{args.split}, {args.num_points} points; "
          "'abs': fitness 0.85; shares: of the attainable fitness; "
          f"always screened: {', '.join(screen_always) or 'none'}")
    write_study_json(args, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
