"""Subcommands of the ``canocaps`` console script, one module each.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules import only the standard library at import time
(heavy imports happen inside ``run``) so ``canocaps --help`` stays fast.
"""
from __future__ import annotations

#: Module names, in the order ``canocaps --help`` lists them.
COMMANDS = ("register", "canonicalize", "reconstruct", "demo", "eval", "train", "export", "plot", "extras")
