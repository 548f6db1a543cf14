"""``canocaps reconstruct IN -o REC``: auto-encode a cloud through its capsules."""
from __future__ import annotations

import argparse

from canocaps._files import check_suffix
from canocaps.commands._common import add_force, add_model_args, check_outputs, info, load_model, print_json

NAME = "reconstruct"
HELP = "decode a cloud from its canonical capsules; prints the Chamfer distance"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="cloud or mesh file (.ply .pcd .xyz .pts .txt .npy .npz .obj .off .stl); the network "
                                 "sees the model's training number of points of it (a seeded subsample)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the reconstruction here (default: none)")
    p.add_argument("--frame", choices=("input", "canonical"), default="input",
                   help="frame of the written reconstruction: the input's (input units) "
                        "or the normalised canonical frame (default: input)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: text)")
    p.add_argument("--png", metavar="PNG", help="save a picture: canonical input vs reconstruction (default: none)")
    add_model_args(p)
    add_force(p)


def run(args: argparse.Namespace) -> int:
    check_outputs(args.force, args.output, args.png)
    check_suffix(".png", args.png)
    from canocaps.heads.reconstruction import reconstruct

    res = reconstruct(args.input, load_model(args))
    if args.output:
        from canocaps.io import write_points

        pts = res.reconstruction_in_input_frame() if args.frame == "input" else res.reconstruction
        write_points(args.output, pts, force=args.force)
    if args.png:
        from canocaps.viz import save_reconstruction_png

        save_reconstruction_png(res.canonical_input, res.reconstruction, args.png, force=args.force)
    if args.json:
        print_json({"input": args.input, **res.to_dict()})
    else:
        n_seen = res.canonical_input.shape[0]
        seen = (f"input {n_seen} pts (a seeded subsample of its {res.num_input_points}: the model's training N)"
                if res.subsampled else f"input {n_seen} pts")
        print(f"chamfer {res.chamfer:.6g} ({res.convention}; unit-sphere normalised)  "
              f"{seen}  reconstruction {res.reconstruction.shape[0]} pts")
    for path in (args.output, args.png):
        if path:
            info(f"wrote {path}")
    return 0
