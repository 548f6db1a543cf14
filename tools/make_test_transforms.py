#!/usr/bin/env python
"""Write fixed test transforms (pairs T1, T2) to an h5 file; deterministic for a given seed.

    python tools/make_test_transforms.py --count 1000 --seed 0 -o data/test_transforms.h5

See canocaps/data/test_transforms.py for the format and the law of the transforms.
"""
from __future__ import annotations

import argparse
import sys

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000, help="number of (T1, T2) pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-angle-deg", type=float, default=180.0, help="rotation limit (180 = uniform SO(3))")
    ap.add_argument("--max-translation", type=float, default=0.2, help="translation bound per axis")
    ap.add_argument("-o", "--output", default="data/test_transforms.h5")
    ap.add_argument("--force", action="store_true", help="overwrite the output")
    args = ap.parse_args(argv)
    return guarded("make_test_transforms", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from canocaps.data.test_transforms import write_test_transforms

    path = write_test_transforms(args.output, args.count, args.seed, args.max_angle_deg, args.max_translation,
                                 force=args.force)
    print(f"wrote {path}: {args.count} pairs, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
