"""``python -m canocaps.model {evaluate,export}``: the model's weight tools.

Training is ``canocaps train --config capsules_cpu --out runs/x`` (``--resume runs/x``).

    python -m canocaps.model export runs/x/best.pt weights.pt
    python -m canocaps.model evaluate weights.pt --split test --json metrics.json

Training curves: ``canocaps plot runs/x -o curves.png``.

Errors print one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from canocaps.errors import CanocapsError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m canocaps.model", description="Canonical Capsules run tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evaluate", help="metrics of a weights file on a data split")
    e.add_argument("weights")
    e.add_argument("--data", default="procedural")
    e.add_argument("--split", default="test")
    e.add_argument("--num-points", type=int, default=None, help="default: the model's num_points")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--limit", type=int, default=None, help="first LIMIT shapes only")
    e.add_argument("--max-angle-deg", type=float, default=180.0)
    e.add_argument("--max-translation", type=float, default=0.2)
    e.add_argument("--seed", type=int, default=0, help="seeds the point selection and the pair poses")
    e.add_argument("--resample-views", action="store_true",
                   help="view 2 is an independent sample of the surface (like two scans), not view 1's points")
    e.add_argument("--json", default=None)
    e.add_argument("--force", action="store_true")
    x = sub.add_parser("export", help="trainer checkpoint -> standalone weights file")
    x.add_argument("checkpoint")
    x.add_argument("out")
    x.add_argument("--force", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "export":
            from canocaps.model.training import export_weights

            export_weights(a.checkpoint, a.out, force=a.force)
        elif a.cmd == "evaluate":
            import torch

            from canocaps.data import build_dataset
            from canocaps.model import CanonicalCapsules
            from canocaps.model.training import evaluate

            net = CanonicalCapsules.load(a.weights)
            ds = build_dataset(a.data, a.split, a.num_points or net.config.num_points, seed=a.seed,
                               resample_views=a.resample_views)
            if a.limit:
                ds = torch.utils.data.Subset(ds, range(min(a.limit, len(ds))))
            res = evaluate(net, ds, batch_size=a.batch_size, seed=a.seed,
                           pairs={"max_angle_deg": a.max_angle_deg, "max_translation": a.max_translation,
                                  "noise_std": 0.0})
            text = json.dumps({"weights": a.weights, "data": a.data, "split": a.split,
                               "resample_views": a.resample_views, **res}, indent=2)
            print(text)
            if a.json:
                from canocaps._files import atomic_write_text

                atomic_write_text(a.json, text + "\n", force=a.force)
    except CanocapsError as exc:
        print(f"canocaps: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
