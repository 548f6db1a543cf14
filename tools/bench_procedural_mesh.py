#!/usr/bin/env python
"""Procedural-shape toolkit vs trimesh: primitives (``trimesh.creation``) and surface sampling (``trimesh.sample``).

Times, in one process with the runs of the two alternating (medians of ``--repeats``), every
primitive of :mod:`canocaps.data.procedural.mesh` against its trimesh counterpart at the
resolution the generator uses, and the surface sampler on whole procedural shapes
(``make_mesh`` of each class, 2048 points) against ``trimesh.sample.sample_surface``
(with and without building the ``Trimesh``). It also checks whether trimesh's sampler
gives the same points for the same seed (if not, switching would change the cached data
and every number measured on it).

    OMP_NUM_THREADS=1 python tools/bench_procedural_mesh.py --json bench_procedural_mesh.json

Prints a Markdown table and (``--json``) writes the rows. ``sweep`` has no counterpart here
(``trimesh.creation.sweep_polygon`` needs shapely, not a dependency).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any, Callable

import numpy as np

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script
from _timing import paired_medians


def primitive_cases() -> list[tuple[str, str, Callable[[], Any], Callable[[], Any]]]:
    import trimesh

    from canocaps.data.procedural import mesh as M

    p0, p1 = np.array([0.1, 0.0, 0.2]), np.array([0.3, 0.8, -0.1])
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.2, 0.3]
    prof = np.array([[0.2, 0.0], [0.3, 0.2], [0.25, 0.5], [0.1, 0.6]])
    return [
        ("box", "creation.box", lambda: M.box((0.1, 0.2, 0.3), (0.4, 0.2, 0.6)),
         lambda: trimesh.creation.box(extents=(0.4, 0.2, 0.6), transform=T)),
        ("cylinder (20 segments)", "creation.cylinder", lambda: M.cylinder(0.2, 0.0, 0.5, 20),
         lambda: trimesh.creation.cylinder(radius=0.2, height=0.5, sections=20)),
        ("cone (frustum, 20)", "creation.cone (full cone)", lambda: M.cone(0.3, 0.1, 0.0, 0.5, 20),
         lambda: trimesh.creation.cone(radius=0.3, height=0.5, sections=20)),
        ("ellipsoid (10 x 18)", "creation.uv_sphere + scale", lambda: M.ellipsoid((0, 0, 0), (0.3, 0.2, 0.1)),
         lambda: trimesh.creation.uv_sphere(radius=1.0, count=[10, 18]).apply_scale((0.3, 0.2, 0.1))),
        ("torus (24 x 10)", "creation.torus", lambda: M.torus(0.4, 0.05),
         lambda: trimesh.creation.torus(0.4, 0.05, major_sections=24, minor_sections=10)),
        ("tube p0->p1 (12)", "creation.cylinder(segment=)", lambda: M.tube(p0, p1, 0.05),
         lambda: trimesh.creation.cylinder(radius=0.05, segment=[p0, p1], sections=12)),
        ("lathe (4-point profile, 24)", "creation.revolve", lambda: M.lathe(prof[:, 0], prof[:, 1], 24),
         lambda: trimesh.creation.revolve(prof, sections=24)),
    ]


def sampling_cases(num_points: int, seed: int) -> list[tuple[str, Any]]:
    from canocaps.data.procedural.generator import CLASS_NAMES, make_mesh, shape_rng

    return [(name, make_mesh(name, shape_rng(seed, "test", name, 0))) for name in CLASS_NAMES]


def _run(args: argparse.Namespace) -> int:
    import trimesh

    from canocaps._files import atomic_write_text
    from canocaps.data.procedural.mesh import sample_surface

    rows: list[dict[str, Any]] = []
    for ours_name, theirs_name, ours, theirs in primitive_cases():
        a, b = paired_medians(ours, theirs, args.repeats)
        rows.append({"kind": "primitive", "case": ours_name, "trimesh": theirs_name, "ours_us": a, "trimesh_us": b})

    n = args.num_points
    sample_ours, sample_tm, sample_tm_built, faces, same = [], [], [], [], True
    for name, mesh in sampling_cases(n, args.seed):
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        a, b = paired_medians(lambda: sample_surface(mesh, n, np.random.default_rng(args.seed)),
                     lambda: trimesh.sample.sample_surface(tm, n, seed=args.seed), args.repeats)
        _, c = paired_medians(lambda: sample_surface(mesh, n, np.random.default_rng(args.seed)),
                     lambda: trimesh.sample.sample_surface(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False),
                                                           n, seed=args.seed), args.repeats)
        ours_pts = sample_surface(mesh, n, np.random.default_rng(args.seed))
        tm_pts, _ = trimesh.sample.sample_surface(tm, n, seed=args.seed)
        same = same and bool(np.array_equal(ours_pts, tm_pts))
        sample_ours.append(a)
        sample_tm.append(b)
        sample_tm_built.append(c)
        faces.append(len(mesh.faces))
    rows.append({"kind": "sampling", "case": f"sample_surface, {n} points (median of the 14 class shapes, "
                                             f"{int(np.median(faces))} faces)",
                 "trimesh": "sample.sample_surface", "ours_us": float(np.median(sample_ours)),
                 "trimesh_us": float(np.median(sample_tm))})
    rows.append({"kind": "sampling", "case": "the same, trimesh incl. building the Trimesh (process=False)",
                 "trimesh": "Trimesh(...) + sample.sample_surface", "ours_us": float(np.median(sample_ours)),
                 "trimesh_us": float(np.median(sample_tm_built))})

    print(f"procedural mesh toolkit vs trimesh {trimesh.__version__} (medians, microseconds; "
          f"{platform.processor() or platform.machine()}, one process)")
    print("| case | trimesh counterpart | ours (us) | trimesh (us) | trimesh / ours |")
    print("|---|---|---|---|---|")
    for r in rows:
        r["ratio"] = r["trimesh_us"] / r["ours_us"]
        print(f"| {r['case']} | {r['trimesh']} | {r['ours_us']:.1f} | {r['trimesh_us']:.1f} | {r['ratio']:.2f} |")
    print(f"same points for the same seed: {same}")
    if args.json:
        out = {"rows": rows, "same_points": same, "trimesh": trimesh.__version__, "args": vars(args),
               "machine": platform.platform()}
        atomic_write_text(args.json, json.dumps(out, indent=2), force=args.force)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50, help="timed calls per case and implementation")
    ap.add_argument("--num-points", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    return guarded("bench_procedural_mesh", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
