#!/usr/bin/env python
"""Build the real-mesh set (surface samples of the meshes in pybullet's pybullet_data) into the cache.

    pip download pybullet==3.2.7 --no-deps -d /tmp/pb && cd /tmp/pb && mkdir x && cd x && \\
        unzip -q ../pybullet-3.2.7-*.whl 'pybullet_data/*' 'pybullet-3.2.7.dist-info/*'
    python tools/build_realmesh_set.py --source /tmp/pb/x/pybullet_data
    python tools/build_realmesh_set.py --bundle-test canocaps/resources/data/realmesh_test.h5   # the bundled test subset

Without --source the installed ``pybullet_data`` package is used (``pip install pybullet``).
DST defaults to ``$CANOCAPS_CACHE/realmesh_v1.h5`` (``~/.cache/canocaps/``), where
``build_dataset("realmesh", split)`` looks. Resumable: work goes to DST.partial chunk by chunk
and re-running the same command continues; the finished file is moved onto DST atomically.
With --bundle-test an existing DST is reused (never rebuilt; --force then only overwrites
the bundle) to write the small subset.
Format, exclusions and splits: ``canocaps/data/realmesh_build.py`` and data/REALMESH.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dst", nargs="?", default=None, help="output .h5 (default: the cache file the dataset reads)")
    ap.add_argument("--source", default=None, help="a pybullet_data folder (default: the installed pybullet_data)")
    ap.add_argument("--num-points", type=int, default=8192, help="surface samples per mesh P")
    ap.add_argument("--seed", type=int, default=0, help="seed of the samples and of the split")
    ap.add_argument("--chunk", type=int, default=64, help="meshes per saved chunk")
    ap.add_argument("--limit", type=int, default=None, help="sample at most this many meshes now (resume later)")
    ap.add_argument("--source-version", default=None, help="pybullet version to record (default: from its dist-info)")
    ap.add_argument("--bundle-test", default=None, metavar="PATH", help="also write the test split's subset here")
    ap.add_argument("--bundle-points", type=int, default=4096, help="points per mesh in the bundled subset")
    ap.add_argument("--bundle-max", type=int, default=96, help="at most this many meshes in the bundled subset")
    ap.add_argument("--force", action="store_true", help="overwrite an existing DST (or, with --bundle-test, the bundle)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    command = "python tools/build_realmesh_set.py " + shlex.join(argv)
    return guarded("build_realmesh_set", lambda: _run(args, command))


def _run(args: argparse.Namespace, command: str) -> int:
    from canocaps.data.realmesh import default_path
    from canocaps.data.realmesh_build import build_realmesh, write_bundle
    from canocaps.errors import OutputExistsError

    dst = default_path() if args.dst is None else Path(args.dst)
    t0 = time.perf_counter()
    if args.bundle_test is not None and dst.exists():
        print(f"using the existing {dst}")
    else:
        if dst.exists() and not args.force:
            raise OutputExistsError(f"{dst} exists (use --force to rebuild it; --bundle-test PATH reuses it)")
        rep = build_realmesh(args.source, dst, args.num_points, seed=args.seed, chunk=args.chunk, force=args.force,
                             limit=args.limit, progress=not args.quiet, command=command, version=args.source_version)
        if not rep.complete:
            print(f"wrote {rep.path} (partial: run again to continue)")
            return 0
        print(f"wrote {rep.path}: {rep.kept} meshes from {rep.candidates} candidates ({rep.excluded} excluded by name, "
              f"{rep.failed} unreadable, {rep.degenerate} degenerate, {rep.duplicates} duplicates) "
              f"in {time.perf_counter() - t0:.1f} s")
    if args.bundle_test is not None:
        n = write_bundle(dst, args.bundle_test, args.bundle_points, args.bundle_max, seed=args.seed, force=args.force,
                         command=command)
        print(f"wrote {args.bundle_test}: {n} test meshes x {args.bundle_points} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
