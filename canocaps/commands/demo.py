"""``canocaps demo``: register the bundled demo pair with the shipped weights."""
from __future__ import annotations

import argparse
from pathlib import Path

from canocaps.commands._common import add_force, add_model_args, check_outputs, info, load_model, print_json

NAME = "demo"
HELP = ("register the bundled demo pair (data/demo) and save a picture in ./canocaps_demo/ "
        "(runs any number of times: it replaces its own picture there)")

PNG_NAME = "demo_registration.png"
#: the demo's own run folder (in the current directory; git-ignored in the repository)
RUN_DIR = "canocaps_demo"


def demo_dir() -> Path:
    """The bundled demo pair: ``demo/`` of the data folder (``$CANOCAPS_DATA_DIR`` or the package's)."""
    from canocaps._resources import data_dir

    return data_dir() / "demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", default=None, metavar="DIR",
                   help=f"folder for {PNG_NAME} (default: ./{RUN_DIR}/, the demo's own folder, where each run "
                        "replaces the last picture; in any other folder an existing picture needs --force)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: text)")
    p.add_argument("--show", action="store_true", help="open the Open3D viewer as well (default: off)")
    add_model_args(p)
    add_force(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from canocaps.errors import CanocapsInputError

    d = demo_dir()
    a_path, b_path, gt_path = d / "a.ply", d / "b.ply", d / "gt_transform.txt"
    for f in (a_path, b_path, gt_path):
        if not f.is_file():
            raise CanocapsInputError(f"demo data missing: {f} (it ships in canocaps/resources/data/demo; is $CANOCAPS_DATA_DIR set elsewhere?)")
    own = args.out_dir is None  # the demo's own folder: it replaces its own picture
    force = args.force or own
    png = Path(RUN_DIR if own else args.out_dir) / PNG_NAME
    check_outputs(force, png)
    if own:
        png.parent.mkdir(parents=True, exist_ok=True)
    try:
        T_gt = np.loadtxt(gt_path).reshape(4, 4)
    except ValueError as exc:
        raise CanocapsInputError(f"{gt_path}: not a 4x4 matrix ({exc})") from None

    from canocaps.io import as_points
    from canocaps.heads.registration import register, registration_errors

    a, b = as_points(a_path, str(a_path)), as_points(b_path, str(b_path))
    res = register(a, b, model=load_model(args))
    err = registration_errors(res.transformation, T_gt, a)
    moved = res.apply(a)
    from canocaps.viz import save_registration_png

    save_registration_png(a, b, moved, png, force=force,
                          title=f"canocaps demo: RRE {err['rre_deg']:.2f} deg, RTE {err['rte']:.4f}")
    if args.json:
        print_json({**res.to_dict(), **err, "png": str(png)})
    else:
        print(f"registering {a_path.name} ({len(a)} pts) onto {b_path.name} ({len(b)} pts)")
        print(res.summary())
        print(f"error vs ground truth ({gt_path.name}): RRE {err['rre_deg']:.3f} deg  "
              f"RTE {err['rte']:.5f}  RMSE {err['rmse']:.5f}")
    info(f"wrote {png}")
    if args.show:
        from canocaps.viz import show_registration

        show_registration(a, b, moved, written=png)
    return 0
