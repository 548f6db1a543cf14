"""``canocaps canonicalize IN -o OUT``: move a cloud into its canonical pose."""
from __future__ import annotations

import argparse

from canocaps._files import check_suffix
from canocaps.commands._common import add_force, add_model_args, check_outputs, info, load_model, print_json

NAME = "canonicalize"
HELP = "move a cloud into its learned canonical pose (and show its capsules)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="cloud or mesh file (.ply .pcd .xyz .pts .txt .npy .npz .obj .off .stl)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the canonical cloud (input units) here (default: none)")
    p.add_argument("--json", action="store_true", help="print R, t, transform and keypoints as JSON (default: text)")
    p.add_argument("--png", metavar="PNG", help="save a picture: input and canonical pose (default: none)")
    p.add_argument("--capsules-png", metavar="PNG", help="save a picture of the capsules (default: none)")
    p.add_argument("--show", action="store_true",
                   help="open the Open3D viewer on the capsules (default: off; --capsules-png writes the same "
                        "picture headless)")
    add_model_args(p)
    add_force(p)


def run(args: argparse.Namespace) -> int:
    check_outputs(args.force, args.output, args.png, args.capsules_png)
    check_suffix(".png", args.png, args.capsules_png)
    from canocaps.heads.canonical import canonicalize_cloud
    from canocaps.io import as_points

    pts = as_points(args.input, args.input)
    res = canonicalize_cloud(pts, load_model(args), name=args.input)
    if res.sample_points is not None and len(res.sample_points) < len(pts):
        info(f"canocaps canonicalize: the network saw {len(res.sample_points)} of the {len(pts)} points "
             "(a seeded subsample: the model's training N); the pose moves every point")
    if args.output:
        from canocaps.io import write_points

        write_points(args.output, res.canonical_points, force=args.force)
    if args.png:
        from canocaps.viz import save_canonical_png

        save_canonical_png(pts, res.canonical_points, args.png, force=args.force)
    if args.capsules_png and res.assignment is not None:
        from canocaps.viz import save_capsules_png

        save_capsules_png(res.sample_points, res.assignment, res.keypoints, args.capsules_png, force=args.force)
    if args.json:
        print_json({"input": args.input, **res.to_dict()})
    else:
        print(repr(res))
    for path in (args.output, args.png, args.capsules_png):
        if path:
            info(f"wrote {path}")
    if args.show and res.assignment is not None:
        from canocaps.viz import show_capsules

        show_capsules(res.sample_points, res.assignment, res.keypoints, written=args.capsules_png)
    return 0
