#!/usr/bin/env python
"""Calibrate the registration quality verdict (``canocaps.heads.quality``) on benchmark records.

Reads the JSON files of ``tools/bench_registration.py`` (every per-pair record carries
``fitness``, ``inlier_rmse``, ``max_correspondence_distance``, ``rre_deg`` and ``rte``).
A result is *wrong* when RRE >= 5 deg or RTE >= 0.05 (the benchmark's recall rule). For
candidate thresholds -- fitness at least F, inlier RMSE at most X times the inlier distance
-- it prints the rate of wrong results that pass (the verdict says "good" to a wrong
answer) and of right results that are flagged ("doubtful" to a right answer), over all
records and per dataset/method/condition, and the same for the thresholds in use.

    python tools/bench_registration.py --data procedural --conditions clean,noisy,partial,sparse \\
        --num-points 2048 --methods canocaps,pca --limit 48 --json runs/cal/procedural.json
    python tools/bench_registration.py --data realmesh --conditions clean,noisy,partial,sparse \\
        --num-points 2048 --methods canocaps,pca --limit 48 --json runs/cal/realmesh.json
    python tools/calibrate_verdict.py runs/cal/procedural.json runs/cal/realmesh.json [--json cal.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

RRE_MAX, RTE_MAX = 5.0, 0.05
FITNESS_GRID = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97)
RATIO_GRID = (1.0, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35)


def load_records(paths: list[str]) -> list[dict[str, Any]]:
    """Every per-pair record of the files, tagged with ``data`` (from the file's meta) and ``condition``."""
    out = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"calibrate_verdict: error: {path}: {e}") from None
        data = doc.get("meta", {}).get("data", Path(path).stem)
        for method, recs in doc.get("records", {}).items():
            for r in recs:
                if not all(k in r for k in ("fitness", "inlier_rmse", "max_correspondence_distance", "rre_deg", "rte")):
                    continue
                cond = r.get("pair", "").split("/")[-2] if r.get("pair", "").count("/") >= 3 else "clean"
                out.append({**r, "method": method, "data": data, "condition": cond})
    if not out:
        raise SystemExit("calibrate_verdict: error: no records with fitness, inlier_rmse, "
                         "max_correspondence_distance, rre_deg and rte in the given files")
    return out


def rates(recs: list[dict[str, Any]], fitness_min: float, ratio_max: float) -> dict[str, Any]:
    """Counts and rates of the verdict ``fitness >= fitness_min and rmse/dist <= ratio_max`` on ``recs``."""
    f = np.array([r["fitness"] for r in recs])
    ratio = np.array([r["inlier_rmse"] / r["max_correspondence_distance"] for r in recs])
    wrong = np.array([(r["rre_deg"] >= RRE_MAX) or (r["rte"] >= RTE_MAX) for r in recs])
    good = (f >= fitness_min) & (ratio <= ratio_max)
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    return {"n": len(recs), "wrong": n_wrong, "right": n_right,
            "wrong_pass": int((wrong & good).sum()), "right_flagged": int((~wrong & ~good).sum()),
            "wrong_pass_rate": float((wrong & good).sum() / n_wrong) if n_wrong else float("nan"),
            "right_flagged_rate": float((~wrong & ~good).sum() / n_right) if n_right else float("nan"),
            "good_is_right": float((good & ~wrong).sum() / good.sum()) if good.sum() else float("nan")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("files", nargs="+", help="bench_registration.py --json outputs")
    p.add_argument("--max-wrong-pass", type=float, default=0.10,
                   help="the pick: fewest right results flagged among thresholds letting at most this "
                        "fraction of wrong results pass")
    p.add_argument("--json", metavar="PATH", help="also write the grid as JSON")
    p.add_argument("-f", "--force", action="store_true", help="overwrite --json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from canocaps._files import atomic_write_text, check_outputs
    from canocaps.heads.quality import FITNESS_MIN, RMSE_RATIO_MAX

    check_outputs(args.force, args.json)
    recs = load_records(args.files)
    print(f"{len(recs)} records from {len(args.files)} file(s); wrong = RRE >= {RRE_MAX} deg or RTE >= {RTE_MAX}\n")
    print("| fitness >= | rmse/dist <= | wrong that pass | right flagged | 'good' that are right |")
    print("|---|---|---|---|---|")
    grid = []
    for fmin in FITNESS_GRID:
        for rmax in RATIO_GRID:
            r = rates(recs, fmin, rmax)
            grid.append({"fitness_min": fmin, "ratio_max": rmax, **r})
            print(f"| {fmin:.2f} | {rmax:.2f} | {r['wrong_pass']}/{r['wrong']} = {r['wrong_pass_rate']:.3f} | "
                  f"{r['right_flagged']}/{r['right']} = {r['right_flagged_rate']:.3f} | {r['good_is_right']:.3f} |")
    ok = [g for g in grid if g["wrong_pass_rate"] <= args.max_wrong_pass]
    if ok:
        best = min(ok, key=lambda g: (g["right_flagged_rate"], g["wrong_pass_rate"], -g["ratio_max"], g["fitness_min"]))
        print(f"\npick (fewest right flagged with at most {args.max_wrong_pass:.0%} of wrong passing): "
              f"fitness >= {best['fitness_min']}, rmse/dist <= {best['ratio_max']}: wrong that pass "
              f"{best['wrong_pass_rate']:.3f}, right flagged {best['right_flagged_rate']:.3f}")
    else:
        print(f"\nno threshold in the grid lets at most {args.max_wrong_pass:.0%} of wrong results pass")
    print(f"\nin use: FITNESS_MIN = {FITNESS_MIN}, RMSE_RATIO_MAX = {RMSE_RATIO_MAX}, per group:\n")
    print("| data | method | condition | pairs | wrong | wrong that pass | right flagged |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in recs:
        for key in ((r["data"], r["method"], r["condition"]), (r["data"], r["method"], "all"), ("all", "all", "all")):
            groups.setdefault(key, []).append(r)
    per_group = []
    for key in sorted(groups):
        r = rates(groups[key], FITNESS_MIN, RMSE_RATIO_MAX)
        per_group.append({"data": key[0], "method": key[1], "condition": key[2], **r})
        print(f"| {' | '.join(key)} | {r['n']} | {r['wrong']} | {r['wrong_pass']} ({r['wrong_pass_rate']:.3f}) | "
              f"{r['right_flagged']} ({r['right_flagged_rate']:.3f}) |")
    if args.json:
        atomic_write_text(args.json, json.dumps({"files": args.files, "grid": grid, "in_use": per_group}, indent=1)
                          + "\n", force=args.force)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
