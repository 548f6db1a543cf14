"""``canocaps export CHECKPOINT OUT``: a trainer checkpoint -> a standalone weights file."""
from __future__ import annotations

import argparse

from canocaps.commands._common import add_force, check_outputs, info

NAME = "export"
HELP = "turn a training checkpoint (RUN/best.pt, RUN/last.pt) into a standalone weights file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a trainer checkpoint of canocaps train (run.yaml must sit beside it)")
    p.add_argument("out", help="weights file to write (loads with canocaps.model.CanonicalCapsules.load, --weights)")
    add_force(p)


def run(args: argparse.Namespace) -> int:
    check_outputs(args.force, args.out)
    from canocaps.recipes.capsules import export_weights

    export_weights(args.checkpoint, args.out, force=args.force)
    info(f"wrote {args.out}")
    return 0
