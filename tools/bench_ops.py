#!/usr/bin/env python
"""Benchmark canocaps.ops (kNN k=1 and k=16, Chamfer) against torch.cdist + topk/min.

For every case (op, batch B, N = M points, 3-D) both implementations run in the same
invocation; each row reports the median wall time and the peak memory:

- CUDA: ``torch.cuda.max_memory_allocated`` growth over the inputs.
- CPU: tracemalloc cannot see torch's allocations, so each implementation of each
  case runs once more in a fresh subprocess and we report the growth of its peak
  resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the inputs.

Timing: when both implementations run, one fresh process times them with runs
alternating between the two (medians), so that load on a shared machine hits both
alike. When only ours runs (the baseline is guarded), its memory run is also its
(single) timed run.

Baselines whose dense ``B x N x M`` float32 matrix would exceed ``--mem-cap-gb`` are
not run and print ``OOM-guard (needs X GB)``. Cases whose estimated time (from the
previous size, scaled by the number of point pairs) exceeds ``--max-case-s`` print
``time-guard (est. X s)``. Results stream to ``--json`` after every case, so an
interrupted run continues with ``--resume``.

``--cases op:B:N[xM],...`` runs only the named cases (``chamfer_fb`` = Chamfer forward +
backward, not in the default plan); ``--update`` replaces them in an existing ``--json``
file and keeps the other cases, each tagged with the run that measured it.

Usage::

    OMP_NUM_THREADS=1 python tools/bench_ops.py --device cpu --threads 1 --json docs/bench_ops_cpu.json
    OMP_NUM_THREADS=1 python tools/bench_ops.py --device cpu --threads 1 --update --json docs/bench_ops_cpu.json \
        --cases chamfer:1:1000,chamfer:32:1024x1020,chamfer_fb:32:1024x1020
    python tools/bench_ops.py --device cuda --json bench_cuda.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

SIZES = (1_000, 10_000, 100_000)
BATCHES = (1, 16)
OPS = ("knn1", "knn16", "chamfer")
#: ops that can be named with --ops/--cases but are not in the default plan
EXTRA_OPS = ("chamfer_fb",)  # Chamfer forward + backward (x and y require grad)


# ----------------------------------------------------------------------------- the ops

def _ours(op: str, x: torch.Tensor, y: torch.Tensor) -> Any:
    from canocaps.ops import chamfer, knn

    if op == "chamfer_fb":
        with torch.enable_grad():
            x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
            loss = chamfer(x, y)[0]
            loss.backward()
        return loss.detach()
    if op == "chamfer":
        return chamfer(x, y)[0]
    return knn(x, y, int(op[3:])).dists


def _cdist_chamfer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from canocaps.ops.reference import chamfer_cdist  # the dense official-style baseline

    return chamfer_cdist(x, y)


def _baseline(op: str, x: torch.Tensor, y: torch.Tensor) -> Any:
    if op == "chamfer_fb":
        with torch.enable_grad():
            x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
            loss = _cdist_chamfer(x, y)
            loss.backward()
        return loss.detach()
    if op == "chamfer":
        return _cdist_chamfer(x, y)
    d = torch.cdist(x, y)  # (B, N, M) Euclidean, the dense matrix
    vals, _ = torch.topk(d, int(op[3:]), dim=2, largest=False)
    return vals.square()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _inputs(B: int, N: int, M: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, N, 3, generator=g) - 0.5
    y = torch.rand(B, M, 3, generator=g) - 0.5
    return x.to(device), y.to(device)


def _time_interleaved(fns: dict[str, Any], device: str, repeats: int, slow_s: float) -> dict[str, dict]:
    """Median seconds per implementation, runs alternating between them (robust to load drift).

    One warm-up run each; when any warm-up took longer than ``slow_s`` every
    implementation gets a single timed run, else ``repeats`` runs each.
    """
    first = {}
    for name, fn in fns.items():
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        first[name] = time.perf_counter() - t0
    reps = 1 if max(first.values()) > slow_s else repeats
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: {"seconds": statistics.median(v), "repeats": reps} for name, v in times.items()}


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One worker job in this process: ``spec["mode"]`` is ``"time"`` (interleaved timing of
    ``spec["impls"]``) or ``"mem"`` (one run of ``spec["impls"][0]``, peak-memory growth)."""
    import resource

    device, op = spec["device"], spec["op"]
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    impls = {"ours": _ours, "baseline": _baseline}
    xs, ys = _inputs(1, 64, 64, device)  # warm-up: imports, kernels, allocator
    with torch.no_grad():
        for name in spec["impls"]:
            impls[name](op, xs, ys)
    x, y = _inputs(spec["B"], spec["N"], spec["M"], device)
    _sync(device)
    with torch.no_grad():
        if spec["mode"] == "time":
            fns = {name: (lambda f=impls[name]: f(op, x, y)) for name in spec["impls"]}
            return _time_interleaved(fns, device, spec["repeats"], spec["slow_s"])
        fn = impls[spec["impls"][0]]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn(op, x, y)
            torch.cuda.synchronize()
            return {"peak_bytes": int(torch.cuda.max_memory_allocated() - base)}
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        fn(op, x, y)
        sec = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
        return {"peak_bytes": int(peak), "seconds_single": sec}


def _run_isolated(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run a worker job in a fresh subprocess on CPU (in-process on CUDA)."""
    if spec["device"] == "cuda":
        try:
            return run_case(spec)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {"status": "OOM"}
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        return {"status": f"failed: {err[-1] if err else proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- planning

def _dense_bytes(B: int, N: int, M: int, op: str) -> int:
    """Bytes the baseline needs: the float32 (B, N, M) matrix (+ topk's sorted copy for k-NN)."""
    per = 4 * B * N * M
    if op == "chamfer_fb":
        return 3 * per  # the matrix, its gradient and a mask/scratch copy
    return per if op == "chamfer" else per + B * N * int(op[3:]) * 12


def _fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    return f"{b / 2**30:.2f} GB" if b >= 2**30 else f"{b / 2**20:.1f} MB"


def _fmt_cell(r: dict[str, Any] | None) -> tuple[str, str]:
    if r is None:
        return "-", "-"
    if r.get("status", "ok") != "ok":
        return r["status"], "-"
    t = r["seconds"]
    ts = f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"
    return f"{ts} (x{r['repeats']})", _fmt_bytes(r["peak_bytes"])


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table: one row per case, ours beside the baseline."""
    rows = ["| op | B | N = M | ours: median time (runs) | ours: peak mem | cdist baseline: median time (runs) "
            "| baseline: peak mem | speed-up |",
            "|---|---|---|---|---|---|---|---|"]
    for c in results:
        o, b = c.get("ours"), c.get("baseline")
        ot, om = _fmt_cell(o)
        bt, bm = _fmt_cell(b)
        sp = "-"
        if o and b and o.get("status", "ok") == "ok" and b.get("status", "ok") == "ok":
            sp = f"{b['seconds'] / o['seconds']:.2f}x"
        nm = f"{c['N']:,}" if c["N"] == c["M"] else f"{c['N']:,} vs {c['M']:,}"
        rows.append(f"| {c['op']} | {c['B']} | {nm} | {ot} | {om} | {bt} | {bm} | {sp} |")
    return "\n".join(rows)


def _parse_cases(text: str) -> list[dict[str, Any]]:
    """``op:B:N`` or ``op:B:NxM`` entries, comma-separated (e.g. ``chamfer:32:1024x1020``)."""
    cases = []
    for item in text.split(","):
        op, B, NM = item.strip().split(":")
        N, _, M = NM.partition("x")
        case = {"op": op, "B": int(B), "N": int(float(N)), "M": int(float(M or N))}
        if case["op"] in ("chamfer", "chamfer_fb") and (case["B"], case["N"], case["M"]) == (32, 1024, 1020):
            case["note"] = "training loss shape"
        cases.append(case)
    return cases


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.cases:
        return _parse_cases(args.cases)
    sizes = args.sizes or (SIZES[:2] if args.quick else SIZES)
    cases = []
    if "chamfer" in args.ops and not args.no_training_case:
        cases.append({"op": "chamfer", "B": 32, "N": 1024, "M": 1020, "note": "training loss shape"})
    for op in args.ops:
        for N in sizes:
            for B in args.batches:
                cases.append({"op": op, "B": B, "N": N, "M": N})
    return cases


def _merged(previous: dict[str, Any] | None, meta: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: this run alone, or (``--update``) the previous file with this run's
    cases replaced or appended; kept cases say which run measured them."""
    if previous is None:
        return {"meta": meta, "cases": results}
    old_meta = previous.get("meta", {})
    runs = list(previous.get("runs", [old_meta]))
    earlier = old_meta.get("run", "earlier run: " + old_meta.get("command", "?"))
    new = {(c["op"], c["B"], c["N"], c["M"]): c for c in results}
    cases = []
    for c in previous["cases"]:
        key = (c["op"], c["B"], c["N"], c["M"])
        cases.append(new.pop(key) if key in new else {**c, "measured": c.get("measured", earlier)})
    cases.extend(new.values())
    return {"meta": meta, "runs": runs + [meta], "cases": cases}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", help="write results here (streamed after every case)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.add_argument("--resume", action="store_true", help="keep the cases already in --json, run the rest")
    p.add_argument("--quick", action="store_true", help="N in {1k, 10k} only, 3 runs per case")
    p.add_argument("--repeats", type=int, default=None, help="runs per case after warm-up (default 5; quick 3)")
    p.add_argument("--slow-s", type=float, default=2.0, help="a case whose first run takes longer is run once")
    p.add_argument("--mem-cap-gb", type=float, default=None,
                   help="baselines needing more are skipped (default: 4 on CPU, 80%% of GPU memory)")
    p.add_argument("--max-case-s", type=float, default=None,
                   help="skip a case whose estimated time exceeds this (default: 150 on CPU, 600 on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in every worker")
    ints = lambda v: tuple(int(float(t)) for t in v.split(","))  # noqa: E731
    p.add_argument("--ops", type=lambda v: tuple(v.split(",")), default=OPS, help="comma list of " + ",".join(OPS))
    p.add_argument("--sizes", type=ints, default=None, help="comma list of N = M (default 1000,10000,100000)")
    p.add_argument("--batches", type=ints, default=BATCHES, help="comma list of B (default 1,16)")
    p.add_argument("--no-training-case", action="store_true", help="leave out the (32, 1024) vs (32, 1020) case")
    p.add_argument("--cases", help="run only these cases: comma list of op:B:N or op:B:NxM "
                   "(e.g. chamfer:1:1000,chamfer:32:1024x1020,chamfer_fb:32:1024x1020); overrides --ops/--sizes")
    p.add_argument("--update", action="store_true",
                   help="with --json: re-run the planned cases and replace them in the existing file, keeping "
                        "every other case (marked with the run it came from)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0

    from tqdm import tqdm

    from canocaps._files import atomic_write_text, check_output_path
    from canocaps.errors import CanocapsError

    if any(op not in OPS + EXTRA_OPS for op in args.ops):
        print(f"error: --ops must be among {','.join(OPS + EXTRA_OPS)}", file=sys.stderr)
        return 2
    if args.cases:
        try:
            bad = [c["op"] for c in _parse_cases(args.cases) if c["op"] not in OPS + EXTRA_OPS]
        except ValueError:
            bad = [args.cases]
        if bad:
            print(f"error: bad --cases entry {bad[0]!r} (op:B:N or op:B:NxM, op among "
                  f"{','.join(OPS + EXTRA_OPS)})", file=sys.stderr)
            return 2
    if args.update and not (args.json and os.path.exists(args.json)):
        print("error: --update needs an existing --json file", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    repeats = args.repeats or (3 if args.quick else 5)
    if args.mem_cap_gb is not None:
        cap = args.mem_cap_gb * 2**30
    elif args.device == "cuda":
        cap = 0.8 * torch.cuda.get_device_properties(0).total_memory
    else:
        cap = 4 * 2**30
    max_case_s = args.max_case_s or (150.0 if args.device == "cpu" else 600.0)

    done: dict[tuple, dict[str, Any]] = {}
    previous: dict[str, Any] | None = None
    if args.update:
        with open(args.json) as fh:
            previous = json.load(fh)
    elif args.json:
        try:
            if args.resume and os.path.exists(args.json):
                with open(args.json) as fh:
                    for c in json.load(fh)["cases"]:
                        done[(c["op"], c["B"], c["N"], c["M"])] = c
            elif not args.force:
                check_output_path(args.json, force=False)
        except CanocapsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    meta = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or
        platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads or torch.get_num_threads(),
        "repeats": repeats,
        "mem_cap_bytes": int(cap),
        "max_case_s": max_case_s,
        "memory_method": ("torch.cuda.max_memory_allocated growth over the inputs" if args.device == "cuda" else
                          "peak RSS (ru_maxrss) growth over the inputs, fresh subprocess per implementation and case"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    results: list[dict[str, Any]] = []
    last_time: dict[tuple, tuple[int, float]] = {}  # (op, B, impl) -> (pairs, seconds) of the last run size
    for case in tqdm(plan(args), desc="bench_ops", file=sys.stderr, unit="case"):
        key = (case["op"], case["B"], case["N"], case["M"])
        if key in done:
            results.append(done[key])
            continue
        pairs = case["B"] * case["N"] * case["M"]
        row = dict(case)
        runnable = []
        for impl in ("ours", "baseline"):
            if args.device == "cpu" and case["B"] >= 16 and case["N"] >= 100_000:
                row[impl] = {"status": "skipped (CPU: 1.6e11 point pairs, hours on 1 core)"}
                continue
            need = _dense_bytes(case["B"], case["N"], case["M"], case["op"])
            if impl == "baseline" and need > cap:
                row[impl] = {"status": f"OOM-guard (needs {need / 1e9:.1f} GB)"}
                continue
            prev = last_time.get((case["op"], case["B"], impl))
            if prev is not None and prev[1] * pairs / prev[0] > max_case_s:
                row[impl] = {"status": f"time-guard (est. {prev[1] * pairs / prev[0]:.0f} s)"}
                continue
            runnable.append(impl)
        spec = {"device": args.device, "op": case["op"], "B": case["B"], "N": case["N"], "M": case["M"],
                "repeats": repeats, "slow_s": args.slow_s, "threads": args.threads}
        timeout = max(120.0, 6 * max_case_s)
        if len(runnable) == 2:  # both: interleaved timing, then one memory run each
            timing = _run_isolated({**spec, "mode": "time", "impls": runnable}, timeout)
            for impl in runnable:
                if "status" in timing:
                    row[impl] = dict(timing)
                    continue
                mem = _run_isolated({**spec, "mode": "mem", "impls": [impl]}, timeout)
                row[impl] = {"status": "ok", **timing[impl], **mem} if "status" not in mem else mem
        elif runnable:  # one alone (the baseline is guarded): a single run gives time and memory
            impl = runnable[0]
            mem = _run_isolated({**spec, "mode": "mem", "impls": [impl]}, timeout)
            row[impl] = mem if "status" in mem else {"status": "ok", "seconds": mem["seconds_single"],
                                                     "repeats": 1, "peak_bytes": mem["peak_bytes"]}
        for impl in runnable:
            if row[impl].get("status") == "ok" and "note" not in case:
                last_time[(case["op"], case["B"], impl)] = (pairs, row[impl]["seconds"])
        if previous is not None:
            row["measured"] = meta["run"]
        results.append(row)
        if args.json:
            atomic_write_text(args.json, json.dumps(_merged(previous, meta, results), indent=1) + "\n", force=True)
    print(table(results))
    print(f"\nmemory: {meta['memory_method']}; threads: {meta['threads']}; device: {meta['device_name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
