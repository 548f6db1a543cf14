#!/usr/bin/env python
"""Thread settings for inference on small clouds: registration and the demo, same run.

Three settings, each in its own process (thread pools are per process), alternated over
``--rounds`` so machine load hits all alike:

* ``torch default``: torch's own thread count (``CANOCAPS_INFERENCE_THREADS=0``);
* ``chosen``: what canocaps ships (:func:`canocaps.heads.frames.inference_threads`: one torch
  thread for small inputs);
* ``OMP_NUM_THREADS=1``: every library on one thread (torch, Open3D's ICP, BLAS).

Measured per setting: the network part of a registration (``canonicalize_in_input_units``
on the pair), a whole ``canocaps.register`` (network + hypotheses + ICP) for the demo pair
subsampled to each ``--sizes``, the network alone on batches of ``--batch-points`` points
(where the one-thread choice stops paying), and the ``canocaps demo`` command in-process
(after its imports; picture included). Median seconds over rounds x repeats.

    python tools/bench_threads.py --rounds 3 --repeat 5 --json threads.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "torch default": {"CANOCAPS_INFERENCE_THREADS": "0"},
    "chosen": {},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}


def worker(sizes: list[int], repeat: int, batch_points: list[int]) -> dict[str, list[float]]:
    """In the child process: the timings of one setting, one round."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    import canocaps
    from canocaps.cli import main as cli_main
    from canocaps.heads.frames import canonicalize_in_input_units
    from canocaps.io import subsample

    demo = ROOT / "canocaps" / "resources" / "data" / "demo"
    model = canocaps.load_pretrained(device="cpu")
    a0, b0 = canocaps.read_points(demo / "a.ply"), canocaps.read_points(demo / "b.ply")
    out: dict[str, list[float]] = {"torch_threads": [float(torch.get_num_threads())]}

    def timed(key: str, fn) -> None:
        fn()  # warm-up
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            out.setdefault(key, []).append(time.perf_counter() - t0)

    for n in sizes:
        a, b = subsample(a0, n, 1), subsample(b0, n, 2)
        timed(f"network {n}", lambda: canonicalize_in_input_units(model, [a, b]))
        timed(f"register {n}", lambda: canocaps.register(a, b, model=model))
    from canocaps.heads.frames import inference_threads

    n_model = int(model.config.num_points)
    for total in batch_points:  # the network alone on a batch of B clouds of the model's N points
        x = torch.as_tensor(np.random.default_rng(0).normal(size=(max(1, total // n_model), n_model, 3)),
                            dtype=torch.float32)

        def net() -> None:
            with inference_threads(int(x.shape[0] * x.shape[1])):
                model.canonicalize(x)
        timed(f"network batch {x.shape[0]}x{n_model}", net)
    with tempfile.TemporaryDirectory() as tmp:
        def demo_cmd() -> None:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert cli_main(["demo", "--out-dir", tmp, "--force"]) == 0
        timed("demo command", demo_cmd)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs every setting once, in turn")
    p.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement and round")
    p.add_argument("--sizes", default="512,1024,2048", help="points per cloud (the demo pair subsampled)")
    p.add_argument("--batch-points", default="2048,8192,32768",
                   help="points in a batch of clouds fed to the network alone (the threshold's range)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (default: none)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite --json")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.worker:
        print(json.dumps(worker(sizes, args.repeat, [int(s) for s in args.batch_points.split(",") if s.strip()])))
        return 0
    sys.path.insert(0, str(ROOT))
    from canocaps._files import atomic_write_text, check_outputs

    check_outputs(args.force, args.json)
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CANOCAPS_INFERENCE_THREADS")}
    base["PYTHONPATH"] = str(ROOT)
    times: dict[str, dict[str, list[float]]] = {s: {} for s in SETTINGS}
    for r in range(args.rounds):
        for name, extra in SETTINGS.items():
            cmd = [sys.executable, __file__, "--worker", name, "--repeat", str(args.repeat), "--sizes", args.sizes,
                   "--batch-points", args.batch_points]
            res = subprocess.run(cmd, env={**base, **extra}, capture_output=True, text=True, cwd=tempfile.gettempdir())
            if res.returncode != 0:
                raise SystemExit(f"bench_threads: error: setting {name!r}: {res.stderr.strip()[-500:]}")
            for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items():
                times[name].setdefault(k, []).extend(v)
            print(f"round {r + 1}/{args.rounds}: {name} done", file=sys.stderr)
    keys = [k for k in times["chosen"] if k != "torch_threads"]
    names = list(SETTINGS)
    cpu = os.cpu_count()
    print(f"{cpu} CPUs; torch threads by default: {int(times['torch default']['torch_threads'][0])}; "
          f"median seconds over {args.rounds} rounds x {args.repeat} repeats\n")
    print("| measurement | " + " | ".join(names) + " | default / chosen |")
    print("|---|" + "---|" * (len(names) + 1))
    for k in keys:
        med = {n: statistics.median(times[n][k]) for n in names}
        print(f"| {k} | " + " | ".join(f"{med[n]:.4f}" for n in names) + f" | {med['torch default'] / med['chosen']:.2f}x |")
    if args.json:
        atomic_write_text(args.json, json.dumps({"command": " ".join(sys.argv), "cpus": cpu, "times": times}, indent=1)
                          + "\n", force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
