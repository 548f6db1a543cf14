#!/usr/bin/env python
"""Render a grid of procedural shapes (one per class by default) to a PNG, headless (matplotlib Agg).

    python tools/render_dataset.py -o docs/img/procedural_classes.png --force
    python tools/render_dataset.py -o /tmp/chairs.png --classes chair --per-class 8
    python tools/render_dataset.py --dataset realmesh -o docs/img/realmesh_examples.png --count 16 --cols 8 --force

Points are drawn in the canonical pose (+y up, front +z) seen from the front-right,
coloured by height. The shapes are test-split shapes of the default seed. With
``--dataset realmesh`` the pictures are ``--count`` test meshes of the real-mesh set (the
cache, else the bundled subset), shared between the labels and evenly spaced over each
label's meshes sorted by name, in their file's own pose.
"""
from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def render(points_list: list[np.ndarray], titles: list[str], cols: int, dpi: int = 80, point_size: float = 1.5) -> bytes:
    """Scatter every ``(N, 3)`` cloud into its own 3D axis; return PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(points_list) + cols - 1) // cols
    fig = plt.figure(figsize=(2.0 * cols, 2.1 * rows), dpi=dpi)
    for k, (p, title) in enumerate(zip(points_list, titles)):
        ax = fig.add_subplot(rows, cols, k + 1, projection="3d")
        # matplotlib's 3D axes have z up: plot (x, z, y) so that our +y is up and +z faces the viewer
        ax.scatter(p[:, 0], p[:, 2], p[:, 1], s=point_size, c=p[:, 1], cmap="viridis", linewidths=0, depthshade=False)
        ax.view_init(elev=20, azim=-60)
        ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_zlim(-1, 1)
        ax.set_box_aspect((1, 1, 1), zoom=1.5)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9, pad=-4)
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    top = 0.95 if lines == 1 else 1 - 0.2 * lines / (2.1 * rows)  # room for multi-line titles (~0.2 in a line)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=top, wspace=0, hspace=0.05 * lines)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    from canocaps.data.procedural.generator import CLASS_NAMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="docs/img/procedural_classes.png")
    ap.add_argument("--dataset", choices=("procedural", "realmesh"), default="procedural")
    ap.add_argument("--count", type=int, default=16, help="realmesh: test meshes to draw")
    ap.add_argument("--classes", nargs="*", default=list(CLASS_NAMES), help="classes to draw (default: all)")
    ap.add_argument("--per-class", type=int, default=1, help="shapes per class")
    ap.add_argument("--num-points", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dpi", type=int, default=80)
    ap.add_argument("--force", action="store_true", help="overwrite the output")
    args = ap.parse_args(argv)
    return guarded("render_dataset", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from canocaps._files import atomic_write_bytes
    from canocaps.data.procedural.generator import CLASS_NAMES, sample_shape
    from canocaps.errors import CanocapsInputError

    unknown = sorted(set(args.classes) - set(CLASS_NAMES))
    if unknown and args.dataset == "procedural":
        raise CanocapsInputError(f"unknown class(es) {unknown}; known: {', '.join(CLASS_NAMES)}")
    clouds, titles = [], []
    if args.dataset == "realmesh":
        clouds, titles = _realmesh_examples(args.count, args.num_points)
    for name in args.classes if args.dataset == "procedural" else ():
        for i in range(args.per_class):
            clouds.append(sample_shape(name, args.seed, "test", i, args.num_points))
            titles.append(name if args.per_class == 1 else f"{name} {i}")
    png = render(clouds, titles, min(args.cols, len(clouds)), args.dpi)
    atomic_write_bytes(args.output, png, force=args.force)
    os.chmod(args.output, 0o644)  # the temporary file behind the atomic write is private (0600)
    print(f"wrote {args.output} ({len(png) / 1024:.0f} KB, {len(clouds)} shapes)")
    return 0


def _realmesh_examples(count: int, num_points: int) -> tuple[list[np.ndarray], list[str]]:
    """Up to ``count`` test clouds of the real-mesh set (shared between labels, evenly spaced) and titles."""
    from canocaps.data import build_dataset
    from canocaps.errors import CanocapsInputError

    if count < 1:
        raise CanocapsInputError(f"--count must be >= 1, got {count}")
    ds = build_dataset("realmesh", "test", num_points, sampling="first")
    labels = sorted(set(ds.labels.tolist()))
    picks = []
    for k, c in enumerate(labels):  # the count shared between the labels, evenly spaced within each
        members = sorted((i for i in range(len(ds)) if ds.labels[i] == c), key=lambda i: ds.names[i])
        share = count // len(labels) + (k < count % len(labels))
        picks += sorted({members[int(round(j))] for j in np.linspace(0, len(members) - 1, min(share, len(members)))})
    titles = []
    for i in picks:
        parts = os.path.splitext(ds.names[i])[0].split("/")
        short = parts[0] if len(parts) == 1 else f"{parts[0]} {parts[-1]}".replace("random_urdfs", "random")
        titles.append(f"{short}\n({ds.class_names[ds.labels[i]].replace('_', ' ')})")
    return [ds[i]["points"].numpy() for i in picks], titles


if __name__ == "__main__":
    sys.exit(main())
