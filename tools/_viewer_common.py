"""Shared argument handling for the tools/view_*.py viewers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
DEMO_A = REPO / "data" / "demo" / "a.ply"
DEMO_B = REPO / "data" / "demo" / "b.ply"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="checkpoint path or shipped name (default: shipped weights)")
    parser.add_argument("--png", default=None, help="write a PNG instead of (or when there is no) window")
    parser.add_argument("--force", action="store_true", help="overwrite --png if it exists")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")


def run(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser) -> None:
    """Parse, run, and turn canocaps errors into one line on stderr (exit 2)."""
    from _cli import guarded

    args = parser.parse_args()
    sys.exit(guarded(parser.prog, lambda: main(args)))
