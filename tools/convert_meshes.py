#!/usr/bin/env python
"""Convert a folder of meshes (ShapeNetCore v2 layout or class sub-folders) into one h5 of surface samples.

    python tools/convert_meshes.py /data/ShapeNetCore.v2 /data/shapenetcore_2048.h5 --num-points 2048

Resumable: progress is kept in DST.h5.partial (chunk by chunk); re-running the same command
continues where it stopped. The finished file is moved onto DST atomically; read it with
``build_dataset("converted", split, root=DST)`` (80/20 split per class, as the official code).
"""
from __future__ import annotations

import argparse
import sys

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="mesh folder: <synset>/<model>/models/model_normalized.obj or <class>/<files>")
    ap.add_argument("dst", help="output .h5")
    ap.add_argument("--num-points", type=int, default=2048, help="surface samples per mesh")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=64, help="meshes per saved chunk")
    ap.add_argument("--strict", action="store_true", help="stop at the first unreadable mesh instead of skipping it")
    ap.add_argument("--limit", type=int, default=None, help="convert at most this many meshes now (resume later)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing DST")
    args = ap.parse_args(argv)
    return guarded("convert_meshes", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from canocaps.data.convert import convert_meshes

    out = convert_meshes(args.src, args.dst, args.num_points, seed=args.seed, chunk=args.chunk, force=args.force,
                         skip_errors=not args.strict, limit=args.limit)
    print(f"wrote {out}" + (" (partial: run again to continue)" if str(out).endswith(".partial") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
