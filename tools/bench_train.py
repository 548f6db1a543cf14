#!/usr/bin/env python
"""Training-step benchmark of Canonical Capsules: ours vs the official approach.

Measures full optimisation steps (two SE(3) views, forward, the six losses, backward,
Adam step) per second and the peak memory, at the paper's configuration by default
(batch 16 x 2 views, 1024 points, K = 10, C = 128, decoder bottleneck 1280), for

- ``canocaps``: bounded-memory :func:`canocaps.ops.chamfer` + one batched SVD
  (:func:`canocaps.geometry.weighted_procrustes`);
- ``official-style``: the same network and losses with a dense ``torch.cdist``
  Chamfer and one SVD per sample in a Python loop
  (:func:`canocaps.geometry.weighted_procrustes_reference`), as the official code does.

Every variant runs in a fresh subprocess, so peak memory is that variant's own:
CPU = peak resident set size (``ru_maxrss``) minus the RSS after imports and data
creation; CUDA = ``torch.cuda.max_memory_allocated``. Both use the same seed and data.

    OMP_NUM_THREADS=1 python tools/bench_train.py --steps 5 --json runs/bench_train.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from typing import Any

VARIANTS = ("canocaps", "official-style")


def cdist_chamfer(x, y):
    """Dense Chamfer with torch.cdist (official style): :func:`canocaps.ops.reference.chamfer_cdist`."""
    from canocaps.ops.reference import chamfer_cdist

    return chamfer_cdist(x, y)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(args: dict[str, Any], queue: Any) -> None:
    try:
        queue.put(_run_variant(**args))
    except Exception as exc:  # report instead of hanging the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def _run_variant(variant: str, device: str, batch: int, points: int, capsules: int, feat_dim: int,
                 bottleneck: int, warmup: int, steps: int, threads: int, seed: int) -> dict[str, Any]:
    import torch

    from canocaps.geometry import weighted_procrustes_reference
    from canocaps.model import CapsulesConfig
    from canocaps.model.module import CapsulesTrainModule

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = CapsulesConfig(num_points=points, num_capsules=capsules, feat_dim=feat_dim, decoder_bottleneck=bottleneck)
    module = CapsulesTrainModule(cfg).to(device)
    if variant == "official-style":
        module.net.canonicalizer.procrustes = weighted_procrustes_reference
        module.reconstruction_fn = cdist_chamfer
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    data = [torch.nn.functional.normalize(torch.randn(batch, points, 3, generator=g), dim=-1)
            * torch.rand(batch, points, 1, generator=g) for _ in range(4)]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base_rss = _rss_mib()

    def step(i: int) -> float:
        out = module.training_step({"points": data[i % len(data)].to(device)}, i)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        return float(out["loss"].detach())

    for i in range(warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step(warmup + i)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    peak = (torch.cuda.max_memory_allocated() / 2**20) if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    return {"variant": variant, "device": device, "steps_per_s": 1.0 / median, "median_step_s": median,
            "min_step_s": times[0], "peak_mem_mib": peak, "last_loss": loss,
            "params": sum(p.numel() for p in module.parameters())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16, help="shapes per batch (each seen in 2 views)")
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--capsules", type=int, default=10)
    ap.add_argument("--feat-dim", type=int, default=128)
    ap.add_argument("--bottleneck", type=int, default=1280)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--devices", default="auto", help="comma list of cpu,cuda (auto: cpu + cuda if present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write results here (atomic, no overwrite without --force)")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)

    import torch

    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if a.devices == "auto" \
        else a.devices.split(",")
    ctx = mp.get_context("spawn")
    rows = []
    for device in devices:
        for variant in VARIANTS:
            args = dict(variant=variant, device=device, batch=a.batch, points=a.points, capsules=a.capsules,
                        feat_dim=a.feat_dim, bottleneck=a.bottleneck, warmup=a.warmup, steps=a.steps,
                        threads=a.threads, seed=a.seed)
            q = ctx.Queue()
            p = ctx.Process(target=_worker, args=(args, q))
            p.start()
            res = q.get()
            p.join()
            if "error" in res:
                print(f"{device}/{variant}: {res['error']}", file=sys.stderr)
                return 1
            rows.append(res)
            print(f"  {device:5s} {variant:15s} {res['steps_per_s']:.3f} steps/s", file=sys.stderr)

    hdr = f"{'device':6s} {'variant':15s} {'steps/s':>9s} {'median s':>9s} {'peak MiB':>9s} {'speed-up':>9s}"
    print(f"batch {a.batch} x 2 views, N={a.points}, K={a.capsules}, C={a.feat_dim}, "
          f"bottleneck {a.bottleneck}, threads {a.threads}, {a.steps} timed steps")
    print(hdr)
    for r in rows:
        base = next(b for b in rows if b["device"] == r["device"] and b["variant"] == "official-style")
        r["speedup_vs_official"] = r["steps_per_s"] / base["steps_per_s"]
        print(f"{r['device']:6s} {r['variant']:15s} {r['steps_per_s']:9.3f} {r['median_step_s']:9.3f} "
              f"{r['peak_mem_mib']:9.1f} {r['speedup_vs_official']:9.2f}")
    if a.json:
        from canocaps._files import atomic_write_text

        meta = {"args": vars(a), "torch": torch.__version__, "python": platform.python_version(),
                "cpu": platform.processor() or platform.machine(), "rows": rows}
        atomic_write_text(a.json, json.dumps(meta, indent=2), force=a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
