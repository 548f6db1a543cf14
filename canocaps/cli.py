"""The ``canocaps`` console script.

``canocaps COMMAND ...``; see ``canocaps --help``. Every failure ends as one line on
stderr (``canocaps: error: ...``) and a non-zero exit status: 2 for bad input
(files, flags, missing weights, existing outputs), 1 for an I/O failure or an
unexpected internal error (set ``CANOCAPS_DEBUG=1`` for its traceback), 130 on Ctrl-C.
Heavy libraries (torch, Open3D) are imported inside the commands, so ``--help`` is fast.
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Sequence

from canocaps import __version__
from canocaps.commands import COMMANDS

__all__ = ["build_parser", "main"]

EPILOG = """examples:
  canocaps demo                              register the bundled demo pair
  canocaps register a.ply b.ply -o a_on_b.ply
  canocaps register a.ply b.ply --json
  canocaps canonicalize in.ply -o canonical.ply --json
  canocaps eval registration --limit 20
  canocaps train --config capsules_cpu --out runs/cpu
  canocaps extras dni --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (importing only light modules)."""
    parser = argparse.ArgumentParser(
        prog="canocaps", description="Canonical Capsules for 3D point clouds: canonical pose, capsules, "
                                     "registration, reconstruction, classification.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"canocaps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = import_module(f"canocaps.commands.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        msg = f"{where}{exc.strerror}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def _fail(msg: str, code: int) -> int:
    print(f"canocaps: error: {msg}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from canocaps.errors import CanocapsError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # exits 2 with argparse's own message on bad flags
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("canocaps: interrupted", file=sys.stderr)
        return 130
    except CanocapsError as exc:
        return _fail(_one_line(exc), 2)
    except BrokenPipeError:  # e.g. `canocaps register ... | head -1`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except OSError as exc:
        return _fail(_one_line(exc), 1)
    except Exception as exc:  # noqa: BLE001 - the promise is "never a traceback"
        if os.environ.get("CANOCAPS_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {_one_line(exc)} "
                     "(set CANOCAPS_DEBUG=1 for the traceback)", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
