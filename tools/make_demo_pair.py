#!/usr/bin/env python
"""Write the bundled demo pair: two independent surface samples of one procedural shape, b moved rigidly.

    python tools/make_demo_pair.py -o data/demo --force

Writes ``a.ply`` and ``b.ply`` (2048 points each, binary PLY) and ``gt_transform.txt``
(the 4x4 transform mapping a onto b, ``b ~= R a + t``, rows of the matrix as text). The
shape is test-split shape ``--index`` of ``--class`` (default: airplane 0); a and b are
two different surface samples of that mesh (so no point of b is exactly a moved point of
a), a is in the canonical pose (normalised, +y up, nose +z) and b = T a for a random
rotation (uniform on SO(3)) and a translation in [-0.2, 0.2]^3 drawn with ``--seed``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def make_pair(class_name: str = "airplane", index: int = 0, num_points: int = 2048, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a (N, 3), b (N, 3), T (4, 4))`` float32/float32/float64 with b = T applied to a second sample."""
    import torch

    from canocaps.data.pairs import SE3PairSampler
    from canocaps.data.procedural.generator import make_mesh, shape_rng
    from canocaps.data.procedural.mesh import sample_surface

    rng = shape_rng(0, "test", class_name, index)
    mesh = make_mesh(class_name, rng)
    a = sample_surface(mesh, num_points, rng)
    b0 = sample_surface(mesh, num_points, rng)
    T = SE3PairSampler().sample_transform(1, "cpu", torch.float64, torch.Generator().manual_seed(seed))[0].numpy()
    b = b0 @ T[:3, :3].T + T[:3, 3]
    return a.astype(np.float32), b.astype(np.float32), T


def main(argv: list[str] | None = None) -> int:
    from canocaps.data.procedural.generator import CLASS_NAMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output-dir", default="data/demo")
    ap.add_argument("--class", dest="class_name", default="airplane", choices=CLASS_NAMES)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--num-points", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0, help="seed of the rigid transform")
    ap.add_argument("--force", action="store_true", help="overwrite existing files")
    args = ap.parse_args(argv)
    return guarded("make_demo_pair", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from canocaps._files import atomic_write_text
    from canocaps.io import write_points

    out = Path(args.output_dir)
    a, b, T = make_pair(args.class_name, args.index, args.num_points, args.seed)
    write_points(out / "a.ply", a, force=args.force)
    write_points(out / "b.ply", b, force=args.force)
    text = "\n".join(" ".join(f"{v:.9f}" for v in row) for row in T) + "\n"
    atomic_write_text(out / "gt_transform.txt", text, force=args.force)
    for name in ("a.ply", "b.ply", "gt_transform.txt"):
        os.chmod(out / name, 0o644)
    angle = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3]) - 1) / 2, -1, 1)))
    print(f"wrote {out}/a.ply, b.ply ({len(a)} points each), gt_transform.txt "
          f"(rotation {angle:.1f} deg, translation {np.round(T[:3, 3], 3).tolist()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
