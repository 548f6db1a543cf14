#!/usr/bin/env python
"""Register cloud A onto cloud B and show before / after.

    python tools/view_registration.py [A B] [--weights W] [--no-refine] [--png out.png]

Defaults to the bundled demo pair. Prints the result (4x4 transform, fitness, inlier RMSE).
"""
from __future__ import annotations

import argparse

from _viewer_common import DEMO_A, DEMO_B, add_common_args, run


def main(args: argparse.Namespace) -> int:
    import canocaps
    from canocaps import viz

    model = canocaps.load_pretrained(args.weights, device=args.device)
    a, b = canocaps.read_points(args.a), canocaps.read_points(args.b)
    result = canocaps.register(a, b, model=model, refine=not args.no_refine)
    print(result)
    moved = result.apply(a)
    if args.png:
        viz.save_registration_png(a, b, moved, args.png, args.force, title=f"fitness {result.fitness:.3f}")
        print(f"wrote {args.png}")
        return 0
    return 0 if viz.show_registration(a, b, moved) else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="view_registration", description=__doc__.splitlines()[0])
    p.add_argument("a", nargs="?", default=str(DEMO_A))
    p.add_argument("b", nargs="?", default=str(DEMO_B))
    p.add_argument("--no-refine", action="store_true", help="skip ICP")
    add_common_args(p)
    run(main, p)
