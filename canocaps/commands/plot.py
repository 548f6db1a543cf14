"""``canocaps plot RUN_DIR``: training curves of a run as a PNG."""
from __future__ import annotations

import argparse
from pathlib import Path

from canocaps._files import check_suffix
from canocaps.commands._common import add_force, check_outputs, info

NAME = "plot"
HELP = "plot the training curves of a run (metrics.csv) to a PNG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run folder written by canocaps train")
    p.add_argument("-o", "--output", metavar="PNG", help="picture path (default: RUN_DIR/curves.png)")
    p.add_argument("--mark", action="append", default=[], metavar="STEP=LABEL",
                   help="a labelled vertical line at STEP on every panel, e.g. --mark '17000=lr 1e-4' (repeatable; default: none)")
    add_force(p)


def run(args: argparse.Namespace) -> int:
    from canocaps.errors import CanocapsInputError

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CanocapsInputError(f"{run_dir}: not a run folder")
    png = Path(args.output) if args.output else run_dir / "curves.png"
    marks = {}
    for item in args.mark:
        step, sep, label = item.partition("=")
        if not sep or not step.strip().isdigit() or not label.strip():
            raise CanocapsInputError(f"--mark {item!r}: expected STEP=LABEL with an integer STEP")
        marks[int(step)] = label.strip()
    check_outputs(args.force, png)
    check_suffix(".png", png)
    from canocaps.viz import plot_training_curves

    plot_training_curves(run_dir, png, force=args.force, marks=marks)
    info(f"wrote {png}")
    return 0
