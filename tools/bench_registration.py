#!/usr/bin/env python
"""Registration benchmark: canocaps (+ICP) vs Open3D FPFH+RANSAC+ICP vs PCA+ICP, same run.

Pairs: each test shape of the dataset (default: the bundled procedural shapes; ``--data
realmesh`` the real-mesh set) as two independent surface samples, each degraded as a
condition says (clean; noisy: sigma 0.01 + 5 % outliers; partial: 70 % half-space crop;
sparse: 512 points), moved by two of the fixed test transforms
(``canocaps.data.test_transforms.load_test_transforms``), so every pair has an exact
ground truth. Reported per condition and method: recall (RRE < 5 deg and RTE < 0.05),
median RRE/RTE, mean RMSE under the ground truth, and median and mean time per pair
(after one untimed warm-up pair), all methods on the same pairs in the same run.

    python tools/bench_registration.py --limit 10
    python tools/bench_registration.py --data realmesh --num-points 2048 --conditions clean,noisy,partial,sparse --ablation --json reg.json
    python tools/bench_registration.py --icp both --json bench_registration.json

Prints a Markdown table and (``--json``) writes the summary plus per-pair records. With
``--json``, records are also appended to ``PATH.partial.jsonl`` as they are measured; an
interrupted run started again with the same arguments resumes from there.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="procedural", help="dataset name or path (default: procedural)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None, help="use N test shapes spread evenly over the split (quick run)")
    p.add_argument("--num-points", type=int, default=1024, help="points per sample (default 1024; 'sparse' uses 512)")
    p.add_argument("--conditions", default="clean",
                   help="comma-separated degradations of each sample: clean, noisy, partial, sparse (default clean)")
    p.add_argument("--methods", default="canocaps,fpfh,pca", help="comma-separated: canocaps, fpfh, pca")
    p.add_argument("--icp", choices=("point_to_plane", "point_to_point", "both"), default="point_to_plane",
                   help="ICP metric; 'both' runs every method with each (names get a suffix)")
    p.add_argument("--no-refine", dest="refine", action="store_false", help="no ICP at all")
    p.add_argument("--screen-icp-points", type=int, default=0, metavar="N",
                   help="canocaps and pca: the short ICP of the screening moves N points of A "
                        "(register's screen_icp_points; default 0: all, up to max_icp_points)")
    p.add_argument("--ablation", action="store_true",
                   help="also run canocaps with the network's hypotheses only (no PCA frames among them), "
                        "and without ICP: the network's canonical frame alone; and PCA's frame alone")
    p.add_argument("--weights", default=None, help="weights name or path (default: the shipped weights)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", metavar="PATH", help="write results as JSON")
    p.add_argument("--force", action="store_true", help="overwrite --json")
    p.add_argument("--restart", action="store_true",
                   help="ignore the partial results of an interrupted run (PATH.partial.jsonl beside --json)")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("bench_registration", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import torch

    from canocaps.commands._common import check_outputs, format_table, write_json_file
    from canocaps.heads.registration import (benchmark_registration, make_test_pairs, registration_methods,
                                             summarize_by_condition)

    check_outputs(args.force, args.json)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    model = None
    if "canocaps" in names:
        from canocaps.pretrained import load_pretrained, resolve_weights

        weights = resolve_weights(args.weights)
        model = load_pretrained(weights, device=args.device)
    icps = ("point_to_plane", "point_to_point") if args.icp == "both" else (args.icp,)
    methods = {}
    for icp in icps:
        for name, fn in registration_methods(names, model, refine=args.refine, icp_method=icp).items():
            methods[name if len(icps) == 1 else f"{name}[{icp}]"] = fn
    if args.screen_icp_points < 0:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"--screen-icp-points must be >= 0, not {args.screen_icp_points}")
    if args.screen_icp_points:  # the two methods built on canocaps.register
        from canocaps.heads.registration import pca_register, register

        for name in list(methods):
            if name.split("[")[0] in ("canocaps", "pca"):
                fn = register if name.startswith("canocaps") else pca_register
                icp = name.split("[")[1].rstrip("]") if "[" in name else args.icp
                methods[name] = (lambda a, b, _f=fn, _i=icp: _f(a, b, **({"model": model} if _f is register else {}),
                                                             refine=args.refine, icp_method=_i,
                                                             screen_icp_points=args.screen_icp_points))
    if args.ablation and model is not None:
        from canocaps.heads.registration import HYPOTHESES, register

        methods["canocaps (canonical only, no ICP)"] = \
            lambda a, b: register(a, b, model=model, hypotheses=("canonical",), refine=False)
        net_only = tuple(h for h in HYPOTHESES if h != "pca_frames")
        methods["canocaps (network hypotheses only)"] = \
            lambda a, b: register(a, b, model=model, hypotheses=net_only)
        if "pca" in names:
            from canocaps.heads.registration import pca_register

            methods["pca (canonical only, no ICP)"] = \
                lambda a, b: pca_register(a, b, hypotheses=("canonical",), refine=False)
    t0 = time.perf_counter()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    pairs = [p for c in conditions for p in make_test_pairs(args.data, args.split, args.num_points, args.limit,
                                                             condition=c)]
    ckpt = None
    if args.json:
        from pathlib import Path

        ckpt = Path(args.json).with_name(Path(args.json).name + ".partial.jsonl")
        if args.restart and ckpt.exists():
            ckpt.unlink()
        elif ckpt.exists():
            print(f"resuming from {ckpt}", file=sys.stderr)
    out = benchmark_registration(methods, pairs, checkpoint=ckpt)
    wall = time.perf_counter() - t0
    out["by_condition"] = summarize_by_condition(out["records"], conditions)
    rows = [[c, m, s["pairs"], s["recall"], s["median_rre_deg"], s["median_rte"], s["mean_rmse"],
             s["median_time_per_pair_s"], s["time_per_pair_s"]]
            for c, per in out["by_condition"].items() for m, s in per.items()]
    print(format_table(["condition", "method", "pairs", "recall", "median RRE (deg)", "median RTE", "mean RMSE",
                        "median time/pair (s)", "mean time/pair (s)"], rows))
    print(f"\n{len(pairs)} pairs from {args.data}/{args.split}, {args.num_points} points per sample; "
          f"recall: RRE < 5 deg and RTE < 0.05; refine={args.refine}; wall {wall:.1f} s; "
          f"torch threads {torch.get_num_threads()}; {platform.processor() or platform.machine()}")
    if args.json:
        meta = {"data": args.data, "split": args.split, "limit": args.limit, "num_points": args.num_points,
                "conditions": conditions,
                "weights": str(args.weights), "refine": args.refine, "icp": args.icp,
                "screen_icp_points": args.screen_icp_points, "wall_s": wall,
                "torch_threads": torch.get_num_threads(), "command": " ".join(sys.argv)}
        write_json_file(args.json, {"meta": meta, **out}, args.force)
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
