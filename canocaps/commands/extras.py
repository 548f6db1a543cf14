"""``canocaps extras NAME ARGS...``: run a companion paper's command line."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

NAME = "extras"
HELP = "companion papers on the same trainer: canocaps extras NAME --help"


def available() -> list[str]:
    """Names of ``canocaps.extras.<name>`` packages that ship a ``cli`` module (no imports)."""
    spec = importlib.util.find_spec("canocaps.extras")
    if spec is None or not spec.submodule_search_locations:
        return []
    names = set()
    for loc in spec.submodule_search_locations:
        for d in Path(loc).iterdir():
            if d.is_dir() and not d.name.startswith("_") and ((d / "cli.py").is_file() or (d / "cli").is_dir()):
                names.add(d.name)
    return sorted(names)


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = available()
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(names) or '(none installed)'}")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed on to the extra's command")


def run(args: argparse.Namespace) -> int:
    import importlib

    from canocaps.errors import CanocapsInputError

    names = available()
    if args.name not in names:
        raise CanocapsInputError(f"unknown extra {args.name!r} (available: {', '.join(names) or 'none'})")
    mod = importlib.import_module(f"canocaps.extras.{args.name}.cli")
    return int(mod.main(list(args.args)) or 0)
