#!/usr/bin/env python
"""Start-up cost of CLI calls: wall time per command and where the imports go, vs a baseline tree.

Each command runs as a fresh process (``python -m canocaps ...``) with ``PYTHONPATH`` set to
this checkout and, with ``--baseline SRC``, to another source tree of the package (e.g. an
older commit unpacked with ``git archive OLD canocaps | tar -x -C /tmp/base``); the two
alternate, ``--repeat`` times each, so machine load hits both alike. One extra run per tree
with ``python -X importtime`` gives the cumulative import time of the heavy packages.

    python tools/bench_startup.py --repeat 5 --baseline /tmp/base --json startup.json

Prints a Markdown table (median wall seconds per command and tree) and the import
breakdown of ``register``; ``--json`` writes everything.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open3d", "trimesh", "scipy", "sklearn", "h5py", "matplotlib", "tqdm", "yaml", "canocaps")


def commands(demo: Path, out: Path) -> dict[str, list[str]]:
    a, b = str(demo / "a.ply"), str(demo / "b.ply")
    return {
        "--help": ["--help"],
        "register": ["register", a, b],
        "register --method pca": ["register", a, b, "--method", "pca"],
        "canonicalize": ["canonicalize", a],
        "reconstruct": ["reconstruct", a],
        "demo": ["demo", "--out-dir", str(out), "--force"],
    }


def run_once(src: Path, args: list[str], importtime: bool = False) -> tuple[float, str]:
    """Wall seconds and stderr of one ``python -m canocaps ARGS`` with ``src`` first on the path.

    It runs in the temporary folder, since ``-m`` puts the current
    folder first on ``sys.path`` (a checkout as cwd would shadow ``src``)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + ["-m", "canocaps", *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"bench_startup: error: {' '.join(args)} under {src}: exit {r.returncode}: "
                         f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
    return wall, r.stderr


def import_breakdown(stderr: str) -> dict[str, float]:
    """Cumulative seconds of each top-level heavy package, from ``-X importtime`` output."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (x.strip() for x in line[len("import time:"):].split("|"))
        if name in HEAVY and cum.isdigit():
            out[name] = out.get(name, 0.0) + int(cum) / 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs per command and tree")
    p.add_argument("--baseline", type=Path, default=None, help="another source tree holding canocaps/ (default: none)")
    p.add_argument("--only", default=None, help="comma-separated command names to run (default: all)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (default: none)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite --json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from canocaps._files import atomic_write_text, check_outputs

    check_outputs(args.force, args.json)
    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    demo = ROOT / "canocaps" / "resources" / "data" / "demo"
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(demo, Path(tmp))
        if args.only:
            cmds = {k: v for k, v in cmds.items() if k in {x.strip() for x in args.only.split(",")}}
        times: dict[str, dict[str, list[float]]] = {t: {c: [] for c in cmds} for t in trees}
        for c, cargs in cmds.items():
            for tree, src in trees.items():  # one untimed warm-up (file cache)
                run_once(src, cargs)
            for _ in range(args.repeat):
                for tree, src in trees.items():
                    times[tree][c].append(run_once(src, cargs)[0])
        imports = {tree: import_breakdown(run_once(src, cmds.get("register", next(iter(cmds.values()))), True)[1])
                   for tree, src in trees.items()}
    names = list(trees)
    print("| command | " + " | ".join(f"{t}: median wall (s)" for t in names) + " |")
    print("|---|" + "---|" * len(names))
    for c in cmds:
        print(f"| `canocaps {' '.join(cmds[c][:1])}`{'' if c == cmds[c][0] else ' (' + c + ')'} | "
              + " | ".join(f"{statistics.median(times[t][c]):.2f} (x{len(times[t][c])})" for t in names) + " |")
    print("\nimports of one `canocaps register` (cumulative s, -X importtime):")
    for t in names:
        print(f"  {t}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(imports[t].items(), key=lambda kv: -kv[1])))
    if args.json:
        atomic_write_text(args.json, json.dumps({"command": " ".join(sys.argv), "trees": {k: str(v) for k, v in trees.items()},
                                                 "times": times, "imports": imports}, indent=1) + "\n", force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
