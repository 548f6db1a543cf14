"""Options and helpers shared by the subcommands (standard library only at import)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from canocaps._files import check_outputs

__all__ = ["add_model_args", "add_force", "check_outputs", "load_model", "print_json", "info", "write_json_file",
           "format_table"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--weights`` and ``--device``."""
    p.add_argument("--weights", metavar="NAME|PATH", default=None,
                   help="weights name (in $CANOCAPS_WEIGHTS_DIR or the shipped ones) or a .pt path "
                        "(default: the shipped canocaps_equivariant_cpu)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto: CUDA when there is one (default: auto)")


def add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing output files (default: off)")


def load_model(args: argparse.Namespace) -> Any:
    from canocaps.pretrained import load_pretrained

    return load_pretrained(args.weights, device=args.device)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=None, allow_nan=True) + "\n")
    sys.stdout.flush()


def info(msg: str) -> None:
    """A progress/status line on stderr (stdout is reserved for results)."""
    print(msg, file=sys.stderr)


def write_json_file(path: str | Path, obj: Any, force: bool) -> None:
    from canocaps._files import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2) + "\n", force=force)


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text (Markdown-compatible) table; floats printed with 4 significant digits."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    body = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in body)])
