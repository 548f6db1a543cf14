"""``canocaps train``: train Canonical Capsules (``--config``) or resume a run (``--resume``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from canocaps.commands._common import info

NAME = "train"
HELP = "train Canonical Capsules from a run config, or resume a run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="run config: a YAML path or a bundled name (capsules_cpu, capsules_paper) "
                                    "(required unless --resume)")
    p.add_argument("-o", "--out", help="run folder (run.yaml, metrics.csv, last.pt, best.pt, model.pt) "
                                       "(required with --config)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last.pt (default: start a new run)")
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set train.max_steps=100 (repeatable)")
    p.add_argument("-f", "--force", action="store_true", help="restart the run that --out holds (its checkpoints "
                                                              "and metrics are removed) (default: off)")


def resolve_config(name: str) -> Path:
    """A YAML path, or the name of a bundled config in ``canocaps/train/configs``."""
    p = Path(name)
    if p.is_file():
        return p
    bundled = Path(__file__).resolve().parents[1] / "train" / "configs"
    for cand in (bundled / name, bundled / f"{name}.yaml"):
        if cand.is_file():
            return cand
    from canocaps.errors import CanocapsInputError

    have = ", ".join(sorted(q.stem for q in bundled.glob("*.yaml"))) or "none"
    raise CanocapsInputError(f"--config {name}: no such file or bundled config (bundled: {have})")


def run(args: argparse.Namespace) -> int:
    from canocaps.errors import CanocapsInputError

    if args.resume and args.out and Path(args.out) != Path(args.resume):
        raise CanocapsInputError("give either --resume RUN_DIR or --out, not both")
    if not args.resume and not (args.config and args.out):
        raise CanocapsInputError("train needs --config X --out RUN_DIR (or --resume RUN_DIR)")
    from canocaps.recipes.capsules import run_training

    config = resolve_config(args.config) if args.config else None
    out = Path(args.resume or args.out)
    run_training(config, out, resume=bool(args.resume), overrides=args.overrides or None, force=args.force)
    from canocaps.train.distributed import dist_info_from_env, exit_worker

    dist_info = dist_info_from_env()
    if dist_info.is_main:
        info(f"done: weights in {out / 'model.pt'}, curves: canocaps plot {out}")
    if dist_info.enabled:
        exit_worker(0)  # a torchrun worker: see exit_worker for why not a normal exit
    return 0
