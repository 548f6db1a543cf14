"""``canocaps eval {registration,reconstruction,classification,stability,equivariance,parts}``: measured tables."""
from __future__ import annotations

import argparse
from typing import Any

from canocaps.commands._common import (add_force, add_model_args, check_outputs, format_table, load_model,
                                       print_json, write_json_file)

NAME = "eval"
HELP = "evaluate a model: registration, reconstruction, classification, stability, equivariance, parts"

TASKS = ("registration", "reconstruction", "classification", "stability", "equivariance", "parts")
TASK_HELP = {
    "registration": "recall / RRE / RTE / time on test pairs with known transforms, vs FPFH+RANSAC and PCA "
                    "(both + ICP)",
    "reconstruction": "Chamfer distance of the auto-encoder on the test split (official convention)",
    "classification": "LinearSVC and k-means on capsule features vs an SVM on PCA-aligned points",
    "stability": "spread of the canonical pose over rotated copies of test shapes, vs PCA",
    "equivariance": "the network's pair metrics (equivariance, keypoints, invariance, Chamfer, losses) on "
                    "random SE(3) pairs of a split, vs PCA",
    "parts": "agreement (NMI) of the point-to-capsule assignment with the parts of the procedural shapes, "
             "vs k-means on the coordinates",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in TASKS:
        q = sub.add_parser(task, help=TASK_HELP[task], description=TASK_HELP[task])
        q.add_argument("--data", default="procedural",
                       help="procedural (bundled), NAME:ROOT (e.g. modelnet40:/data/modelnet40), or a path: a "
                            "converted .h5 or a folder of cloud/mesh files (its test/ sub-folder when it has one, "
                            "else every file in it; classification needs train/ and test/) (default: procedural)")
        q.add_argument("--limit", type=int, default=None,
                       help="use this many shapes per split, spread evenly over it (quick runs) (default: all)")
        q.add_argument("--num-points", type=int, default=None,
                       help="points per shape (default: 1024 for registration pairs, else the model's "
                            "training N)")
        q.add_argument("--per-class", type=int, default=None,
                       help="procedural data only: shapes per class (default: the dataset's)")
        q.add_argument("--json-out", metavar="PATH",
                       help="write the full results as JSON (registration: an interrupted run resumes "
                            "from PATH.partial.jsonl) (default: none)")
        q.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table (default: off)")
        q.add_argument("--seed", type=int, default=0,
                       help="seed of the random parts: classification's k-means and SVM, stability's copies, "
                            "equivariance's pairs (registration pairs use the fixed test transforms)")
        q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar (default: shown)")
        add_model_args(q)
        add_force(q)
        if task == "registration":
            q.add_argument("--methods", default="canocaps,fpfh,pca",
                           help="comma-separated from canocaps, fpfh, pca (default: all three)")
            q.add_argument("--icp", choices=("point_to_plane", "point_to_point"), default="point_to_plane",
                           help="ICP error metric of every method's refinement")
            q.add_argument("--no-refine", dest="refine", action="store_false", help="skip ICP (default: refine)")
            q.add_argument("--rre-max", type=float, default=5.0, help="recall threshold on RRE, degrees")
            q.add_argument("--rte-max", type=float, default=0.05,
                           help="recall threshold on RTE (shapes in the unit sphere)")
            q.add_argument("--conditions", default="clean",
                           help="comma-separated degradations of each sample: clean, noisy (sigma 0.01 + 5%% "
                                "outliers), partial (70%% half-space crop), sparse (512 points)")
        if task == "stability":
            q.add_argument("--num-copies", type=int, default=16, help="rotated copies per shape")
            q.add_argument("--num-shapes", type=int, default=20, help="shapes; --limit overrides")
            q.add_argument("--same-points", dest="resample", action="store_false",
                           help="rotate the very same points (default: each copy is an independent "
                                "subset of the shape's 2048 stored surface samples)")
        if task == "equivariance":
            q.add_argument("--split", default="test", help="data split (default: test)")
            q.add_argument("--batch-size", type=int, default=16, help="shapes per forward pass")
            q.add_argument("--max-angle-deg", type=float, default=180.0, help="rotation limit of the pairs, degrees")
            q.add_argument("--max-translation", type=float, default=0.2, help="translation bound of the pairs")
            q.add_argument("--resample-views", action="store_true",
                           help="view 2 is an independent sample of the surface (like two scans), "
                                "not view 1's points (default: off)")


def registration_table(summary: dict[str, dict[str, Any]]) -> str:
    rows = [[m, s["pairs"], s["recall"], s["median_rre_deg"], s["median_rte"], s["mean_rmse"], s["time_per_pair_s"]]
            for m, s in summary.items()]
    return format_table(["method", "pairs", "recall", "median RRE (deg)", "median RTE", "mean RMSE",
                         "time/pair (s)"], rows)


def eval_split(data: str) -> str | None:
    """The split to evaluate: ``"test"``, or None (every file) for a plain folder of clouds without a
    ``test/`` sub-folder (a folder in a known dataset layout, e.g. ModelNet40 h5, keeps ``"test"``)."""
    from pathlib import Path

    root = Path(data)
    if ":" not in data and root.is_dir() and not (root / "test").is_dir():
        from canocaps.data.layout import detect_layout

        if detect_layout(root) != "folder":  # a known dataset layout has its own test split
            return "test"
        from canocaps.commands._common import info

        info(f"canocaps eval: {data} has no test/ sub-folder: evaluating every file in it")
        return None
    return "test"


def run(args: argparse.Namespace) -> int:
    check_outputs(args.force, args.json_out)
    result: dict[str, Any] = {"task": args.task, "data": args.data, "limit": args.limit,
                              "num_points": args.num_points, "weights": args.weights}
    dkw: dict[str, Any] = {"per_class": args.per_class} if args.per_class is not None else {}
    ckpt = None
    model = None
    if args.task != "registration" or "canocaps" in [m.strip() for m in args.methods.split(",")]:
        model = load_model(args)
    if args.num_points is None:
        args.num_points = 1024 if args.task == "registration" else int(model.config.num_points)
    result["num_points"] = args.num_points
    split = eval_split(args.data) if args.task in ("registration", "reconstruction", "stability") else "test"
    if args.task == "registration":
        from canocaps.heads.registration import benchmark_registration, make_test_pairs, registration_methods

        names = [m.strip() for m in args.methods.split(",") if m.strip()]
        methods = registration_methods(names, model, refine=args.refine, icp_method=args.icp)
        conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
        pairs = [p for c in conditions
                 for p in make_test_pairs(args.data, split, args.num_points, args.limit, condition=c, **dkw)]
        if args.json_out:  # per-pair records land here as measured; a rerun resumes from them
            from pathlib import Path

            ckpt = Path(args.json_out).with_name(Path(args.json_out).name + ".partial.jsonl")
        out = benchmark_registration(methods, pairs, args.rre_max, args.rte_max, progress=args.progress,
                                     checkpoint=ckpt)
        result.update(out)
        if len(conditions) > 1:  # one row per condition and method, as tools/bench_registration.py prints
            from canocaps.heads.registration import summarize_by_condition

            out["by_condition"] = summarize_by_condition(out["records"], conditions, args.rre_max, args.rte_max)
            result["by_condition"] = out["by_condition"]
            table = "\n\n".join(f"{c}:\n{registration_table(per)}" for c, per in out["by_condition"].items())
            summary: Any = out["by_condition"]
        else:
            table = registration_table(out["summary"])
            summary = out["summary"]
    elif args.task == "reconstruction":
        from canocaps.heads.reconstruction import evaluate_reconstruction

        out = evaluate_reconstruction(model, args.data, split, args.num_points, args.limit,
                                      progress=args.progress, dataset_kwargs=dkw)
        result.update(out)
        summary = {k: v for k, v in out.items() if k != "per_shape"}
        table = format_table(["shapes", "Chamfer mean", "Chamfer median", "convention"],
                             [[out["shapes"], out["chamfer_mean"], out["chamfer_median"], out["convention"]]])
    elif args.task == "classification":
        from canocaps.heads.classification import evaluate_classification

        res = evaluate_classification(model, args.data, args.num_points, args.limit, seed=args.seed,
                                      progress=args.progress, dataset_kwargs=dkw)
        summary = res.to_dict()
        result.update(summary)
        table = format_table(
            ["features", "classifier", "accuracy"],
            [["capsules (descriptors + keypoints)", "LinearSVC(C=0.1)", res.svm_accuracy],
             ["capsules (descriptors + keypoints)",
              f"standardised, LinearSVC(C={res.extra['validated_svm_C']:g} chosen on val)", res.validated_svm_accuracy],
             ["capsules (descriptors + keypoints)", f"k-means(k={res.num_classes}) + Hungarian", res.kmeans_accuracy],
             ["PCA-aligned points (8^3 occupancy)", "LinearSVC(C=0.1)", res.pca_svm_accuracy],
             ["PCA-aligned points (8^3 occupancy)",
              f"standardised, LinearSVC(C={res.extra['validated_pca_svm_C']:g} chosen on val)",
              res.validated_pca_svm_accuracy]])
        table += (f"\n{res.num_train} train / {res.extra['num_val']} val / {res.num_test} test shapes, "
                  f"{res.num_classes} classes")
    elif args.task == "equivariance":
        from canocaps.recipes.capsules import evaluate_split

        out = evaluate_split(model, args.data, args.split, args.num_points, args.limit, batch_size=args.batch_size,
                             seed=args.seed, max_angle_deg=args.max_angle_deg,
                             max_translation=args.max_translation, resample_views=args.resample_views,
                             progress=args.progress, dataset_kwargs=dkw)
        result.update({"split": args.split, "resample_views": args.resample_views, **out})
        summary = {k: v for k, v in out.items() if k != "per_class"}
        table = format_table(["shapes", "equivariance (deg) mean", "median", "PCA (deg) mean", "keypoint error",
                              "invariance error", "Chamfer"],
                             [[int(out["num_shapes"]), out["equivariance_deg"], out["equivariance_deg_median"],
                               out["pca_equivariance_deg"], out["keypoint_error"], out["invariance_error"],
                               out["chamfer"]]])
    elif args.task == "parts":
        from canocaps.heads.parts import part_agreement

        out = part_agreement(model, "test", args.per_class or 10, args.num_points, seed=args.seed,
                             progress=args.progress)
        result.update(out)
        summary = {k: v for k, v in out.items() if k != "per_class"}
        table = format_table(["assignment", "NMI with the parts"],
                             [["capsules (argmax attention)", out["nmi"]],
                              [f"k-means on coordinates (k = {model.config.num_capsules})", out["kmeans_nmi"]]])
        table += f"\n{out['num_shapes']} procedural test shapes in random poses"
    else:
        from canocaps.heads.stability import evaluate_stability

        n = args.limit if args.limit is not None else args.num_shapes
        rs = evaluate_stability(model, args.data, split, args.num_points, n, args.num_copies,
                                seed=args.seed, progress=args.progress, resample=args.resample, dataset_kwargs=dkw)
        summary = {r.method: {"chamfer": r.chamfer, "rre_deg": r.rre_deg} for r in rs}
        result["results"] = [r.to_dict() for r in rs]
        import numpy as np

        for r in rs:
            summary[r.method]["rre_deg_median_over_shapes"] = float(np.median([p[1] for p in r.per_shape]))
        table = format_table(["canonicaliser", "shapes x copies", "pairwise Chamfer", "pairwise RRE (deg)",
                              "median over shapes of the RRE (deg)"],
                             [[r.method, f"{r.num_shapes} x {r.num_copies}", r.chamfer, r.rre_deg,
                               summary[r.method]["rre_deg_median_over_shapes"]] for r in rs])
    if args.json:
        print_json(summary)
    else:
        print(table)
    if args.json_out:
        write_json_file(args.json_out, result, args.force)
        if args.task == "registration" and ckpt is not None and ckpt.exists():
            ckpt.unlink()
    return 0
