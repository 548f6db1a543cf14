"""The ``canocaps`` console script.

``canocaps COMMAND ...``; see ``canocaps --help``. Every failure ends as one line on
stderr (``canocaps: error: ...``) and a non-zero exit status: 2 for bad input
(files, flags, missing weights, existing outputs), 1 for an I/O failure or an
unexpected internal error (set ``CANOCAPS_DEBUG=1`` for its traceback), 130 on Ctrl-C;
3 when ``canocaps register --strict`` finds its result doubtful (the result is still out).
Heavy libraries (torch, Open3D) are imported inside the commands, so ``--help`` is fast.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Sequence

from canocaps import __version__
from canocaps._guard import guarded
from canocaps._options import HelpFormatter, finish, parse_args
from canocaps.commands import COMMANDS

__all__ = ["build_parser", "main"]

EPILOG = """examples:
  canocaps demo                              register the bundled demo pair
  canocaps register a.ply b.ply -o a_on_b.ply
  canocaps register a.ply b.ply --json
  canocaps canonicalize in.ply -o canonical.ply --json
  canocaps eval registration --limit 20
  canocaps train --config capsules_cpu --out runs/cpu
  canocaps export runs/cpu/best.pt weights.pt
  canocaps eval equivariance --weights weights.pt --split test
  canocaps extras dni --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (importing only light modules)."""
    parser = argparse.ArgumentParser(
        prog="canocaps", description="Canonical Capsules for 3D point clouds: canonical pose, capsules, "
                                     "registration, reconstruction, classification.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"canocaps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = import_module(f"canocaps.commands.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP, formatter_class=HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return finish(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Failures go through the one guard of every entry point (:func:`canocaps._guard.guarded`).
    """
    def body() -> int:
        args = parse_args(build_parser(), argv)  # exits 2 with the (sub)command's usage on bad flags
        return int(args._run(args) or 0)

    return guarded("canocaps", body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
