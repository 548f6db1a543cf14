#!/usr/bin/env python
"""Choose the moment frame's point weighting on validation data, and write weights with it.

The moment frame (:mod:`canocaps.model.moment_frame`) weights each point by its learned
weight raised to ``moment_weight_power`` (0 = uniform) times, when ``moment_area_k > 0``,
the surface area it stands for (:func:`canocaps.model.moment_frame.point_areas`). Both are
inference-time settings of the same trained parameters. For every combination of
``--area-k`` and ``--power`` this evaluates the frame disagreement of independent samples
(``canocaps eval equivariance --resample-views``: each view its own sample, an SE(3) pair)
on the *validation* splits of ``--data`` (all their shapes, or ``--limit`` each), prints mean / median
degrees beside PCA's on the same pairs, and picks the setting with the lowest sum of the
medians; settings within ``--tie`` degrees of that sum are tied, and a tie goes to the
simpler setting (the lower learned-weight power: the learned weights were trained without
area weights). ``--write OUT`` saves the weights with that setting in their config (the
parameters are unchanged; the metadata records the choice).

    python tools/choose_frame_weighting.py --json frame_weighting.json \\
        --write canocaps/resources/weights/canocaps_equivariant_cpu.pt --force
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="weights file or bundled name (default: the shipped weights)")
    p.add_argument("--data", default="procedural,realmesh", help="comma-separated datasets")
    p.add_argument("--limit", type=int, default=0, help="validation shapes per dataset (0: all)")
    p.add_argument("--area-k", default="0,10", help="comma-separated moment_area_k values (0 = off)")
    p.add_argument("--power", default="0,1", help="comma-separated moment_weight_power values")
    p.add_argument("--tie", type=float, default=0.25, help="degrees of the summed medians that count as a tie")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--write", metavar="OUT", help="save the weights with the chosen setting")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("choose_frame_weighting", lambda: _run(args))


def _with_setting(base: Any, area_k: int, power: float) -> Any:
    import copy

    from canocaps.model import CanonicalCapsules

    cfg = copy.deepcopy(base.config)
    cfg.moment_area_k, cfg.moment_weight_power, cfg.moment_sign_power = int(area_k), float(power), None
    cfg.validate()
    model = CanonicalCapsules(cfg)
    model.load_state_dict(base.state_dict())
    return model.eval()


def _run(args: argparse.Namespace) -> int:
    import json

    from canocaps._files import atomic_write_text, check_outputs
    from canocaps.commands._common import format_table
    from canocaps.errors import CanocapsInputError
    from canocaps.model import CanonicalCapsules
    from canocaps.model.checkpoint import read_weights
    from canocaps.pretrained import resolve_weights
    from canocaps.recipes.capsules import evaluate_split

    check_outputs(args.force, args.json, args.write)
    source = resolve_weights(args.weights)
    _, _, source_meta = read_weights(source)
    base = CanonicalCapsules.load(source)
    if base.config.frame != "moments":
        raise CanocapsInputError("these weights have no moment frame (config frame: procrustes)")
    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    grid = [(int(k), float(w)) for k in args.area_k.split(",") for w in args.power.split(",")]
    rows: list[dict[str, Any]] = []
    for area_k, power in grid:
        model = _with_setting(base, area_k, power)
        row: dict[str, Any] = {"moment_area_k": area_k, "moment_weight_power": power}
        for data in datasets:
            print(f"area_k {area_k}, power {power:g}: {data} validation", file=sys.stderr, flush=True)
            res = evaluate_split(model, data, "val", limit=args.limit or None, resample_views=True, progress=False)
            row[data] = {k: float(res[k]) for k in ("equivariance_deg", "equivariance_deg_median",
                                                    "pca_equivariance_deg", "pca_equivariance_deg_median")}
        rows.append(row)
    def total(r: dict[str, Any]) -> float:
        return sum(r[d]["equivariance_deg_median"] for d in datasets)

    lowest = min(total(r) for r in rows)
    best = min((r for r in rows if total(r) <= lowest + args.tie),
               key=lambda r: (r["moment_weight_power"], total(r)))
    header = ["area_k", "power"] + [f"{d} mean / median" for d in datasets] + ["chosen"]
    table = [[r["moment_area_k"], f"{r['moment_weight_power']:g}"]
             + [f"{r[d]['equivariance_deg']:.1f} / {r[d]['equivariance_deg_median']:.1f}" for d in datasets]
             + ["*" if r is best else ""] for r in rows]
    table.append(["PCA", ""] + [f"{rows[0][d]['pca_equivariance_deg']:.1f} / "
                                f"{rows[0][d]['pca_equivariance_deg_median']:.1f}" for d in datasets] + [""])
    print(format_table(header, table))
    if args.json:
        atomic_write_text(args.json, json.dumps({"limit": args.limit, "tie": args.tie, "rows": rows, "chosen": best},
                                                indent=2) + "\n",
                          force=args.force)
    if args.write:
        model = _with_setting(base, best["moment_area_k"], best["moment_weight_power"])
        meta = {**source_meta, "frame_weighting": {"chosen_on": "val", "data": datasets, "limit": args.limit or "all",
                                    "moment_area_k": best["moment_area_k"],
                                    "moment_weight_power": best["moment_weight_power"]}}
        model.save(args.write, force=args.force, metadata=meta)
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
