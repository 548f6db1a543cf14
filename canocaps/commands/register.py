"""``canocaps register A B``: the rigid transform mapping cloud A onto cloud B."""
from __future__ import annotations

import argparse

from canocaps._files import check_suffix
from canocaps._guard import EXIT_DOUBTFUL
from canocaps.commands._common import add_force, add_model_args, check_outputs, info, load_model, print_json

NAME = "register"
HELP = "rigid transform mapping cloud A onto cloud B (prints the 4x4 matrix and a quality verdict)"

CLOUD_FORMATS = ".ply .pcd .xyz .pts .txt .npy .npz"
MESH_FORMATS = ".obj .off .stl .ply"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help=f"source: a cloud ({CLOUD_FORMATS}) or a mesh ({MESH_FORMATS}; sampled on its surface)")
    p.add_argument("b", help="target cloud or mesh (same formats)")
    p.add_argument("-o", "--output", metavar="OUT", help="write A moved onto B to this file (default: none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text (default: text)")
    p.add_argument("--png", metavar="PNG", help="save a picture of the registration (default: none)")
    p.add_argument("--show", action="store_true",
                   help="open the Open3D viewer (default: off; combine with --png for a file as well)")
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status {EXIT_DOUBTFUL} when the quality verdict is 'doubtful' (the result is "
                        "still printed and written; default: status 0 with the verdict printed)")
    p.add_argument("--no-refine", dest="refine", action="store_false", help="skip ICP refinement (default: refine)")
    p.add_argument("--icp", choices=("point_to_plane", "point_to_point"), default="point_to_plane",
                   help="ICP error metric (default: point_to_plane)")
    p.add_argument("--max-correspondence-distance", type=float, default=None, metavar="D",
                   help="inlier distance in input units; the quality verdict is judged against it "
                        "(default: 0.05 x radius of B)")
    p.add_argument("--method", choices=("canocaps", "pca", "fpfh"), default="canocaps",
                   help="canocaps, pca (PCA frames + ICP) or fpfh (Open3D FPFH+RANSAC+ICP) (default: canocaps)")
    add_model_args(p)
    add_force(p)


def run(args: argparse.Namespace) -> int:
    check_outputs(args.force, args.output, args.png)
    check_suffix(".png", args.png)
    if args.method == "canocaps":
        from canocaps.pretrained import resolve_weights

        resolve_weights(args.weights)  # fail fast, before reading clouds or importing torch
    from canocaps.io import as_points

    a = as_points(args.a, args.a)
    b = as_points(args.b, args.b)
    kw = dict(refine=args.refine, max_correspondence_distance=args.max_correspondence_distance, icp_method=args.icp)
    if args.method == "canocaps":
        from canocaps.heads.registration import register

        res = register(a, b, model=load_model(args), names=(args.a, args.b), **kw)
    elif args.method == "pca":
        from canocaps.heads.registration import pca_register

        res = pca_register(a, b, **kw)
    else:
        from canocaps.heads.baselines import fpfh_ransac_icp

        res = fpfh_ransac_icp(a, b, **kw)
    moved = res.apply(a)
    if args.output:
        from canocaps.io import write_points

        write_points(args.output, moved, force=args.force)
    if args.png:
        from canocaps.viz import save_registration_png

        save_registration_png(a, b, moved, args.png, force=args.force,
                              title=f"{args.a} -> {args.b} (fitness {res.fitness:.3f})")
    if args.json:
        d = res.to_dict()
        d.update({"a": args.a, "b": args.b, "method": args.method})
        print_json(d)
    else:
        print(res.summary())
    if args.output:
        info(f"wrote {args.output}")
    if args.png:
        info(f"wrote {args.png}")
    if args.json and res.doubtful:
        info(f"canocaps: warning: {res.verdict()}")
    if args.show:
        from canocaps.viz import show_registration

        show_registration(a, b, moved, written=args.png)
    return EXIT_DOUBTFUL if (args.strict and res.doubtful) else 0
