#!/usr/bin/env python
"""Show a cloud's capsules (points coloured by capsule, keypoints as spheres) and its canonical pose.

    python tools/view_capsules.py [CLOUD] [--weights W] [--png out.png]

Opens an Open3D window when a display exists; otherwise (or with --png) writes a picture.
"""
from __future__ import annotations

import argparse

from _viewer_common import DEMO_A, add_common_args, run


def main(args: argparse.Namespace) -> int:
    import canocaps
    from canocaps import viz
    from canocaps.heads.canonical import canonicalize_cloud

    model = canocaps.load_pretrained(args.weights, device=args.device)
    points = canocaps.read_points(args.cloud)
    res = canonicalize_cloud(points, model)
    sub, assignment = res.sample_points, res.assignment
    sub_canonical = sub @ res.R.T + res.t
    if args.png:
        viz.render_panels([viz.capsules_panel(sub_canonical, assignment, res.canonical_keypoints,
                                              "capsules (canonical frame)"),
                           viz.cloud_panel(points, "input pose"),
                           viz.cloud_panel(res.canonical_points, "canonical pose")], args.png, args.force)
        print(f"wrote {args.png}")
        return 0
    shown = viz.show_capsules(sub, assignment, res.keypoints)
    return 0 if shown else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="view_capsules", description=__doc__.splitlines()[0])
    p.add_argument("cloud", nargs="?", default=str(DEMO_A), help="point cloud or mesh file (default: demo a.ply)")
    add_common_args(p)
    run(main, p)
