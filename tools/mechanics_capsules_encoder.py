"""Neural Mechanics on the Canonical Capsules network: symmetries of its encoder and capsule
layer, measured while the full model trains (all six losses) on the bundled procedural shapes.

The whole ``CanonicalCapsules.forward`` is not torch.fx-traceable (batched Procrustes checks
its inputs), so detection runs on the ``encoder``, ``capsules`` and ``canonicalizer.mlp`` sub-modules and the groups
are merged (:func:`canocaps.extras.mechanics.symmetry.detect_in_submodules`). Training goes
through the shared Trainer with torch's SGD (this extra measures SGD dynamics; the model's
own recipe is Adam).

    python tools/mechanics_capsules_encoder.py --out runs/mech_capsules --steps 30

Writes OUT/mechanics.json and OUT/mechanics.png (see docs/extras_mechanics.md).
"""
from __future__ import annotations

import argparse
import sys

import torch

from _cli import guarded  # tools/ is sys.path[0] when a tool runs as a script


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--num-points", type=int, default=128)
    p.add_argument("--shapes", type=int, default=64, help="procedural shapes in the training set")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    return guarded("mechanics_capsules_encoder", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from canocaps.data import build_dataset
    from canocaps.extras.mechanics.experiments import check_outputs, run_with_model
    from canocaps.extras.mechanics.symmetry import detect_in_submodules
    from canocaps.model import CapsulesConfig
    from canocaps.model.module import CapsulesTrainModule
    from canocaps.train import TrainConfig

    if not args.resume:
        check_outputs(args.out, args.force)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.manual_seed(args.seed)
    module = CapsulesTrainModule(CapsulesConfig.preset("cpu", num_points=args.num_points)).to(dtype)
    net = module.net
    x = torch.randn(2, args.num_points, 3, dtype=dtype)
    with torch.no_grad():
        net.eval()
        feats = net.encoder(x)
        net.train()
    cfg_m = net.config
    desc = torch.zeros(2, cfg_m.num_capsules * cfg_m.feat_dim, dtype=dtype)
    report = detect_in_submodules(net, {"encoder": x, "capsules": (x, feats), "canonicalizer.mlp": desc})
    data = build_dataset("procedural", "train", num_points=args.num_points)
    n = min(args.shapes, len(data))
    data = torch.utils.data.Subset(data, list(range(n)))
    per_epoch = -(-n // args.batch_size)
    cfg = TrainConfig(optimizer="sgd", lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                      batch_size=args.batch_size, max_steps=args.steps, epochs=-(-args.steps // per_epoch),
                      seed=args.seed, device="cpu", monitor=None, progress=not args.no_progress,
                      ckpt_every_steps=10, eval_every_epochs=10 ** 6, drop_last=True)
    payload = run_with_model(net, data, (x,), args.out, cfg, module=module, prefix="net.", report=report,
                             force=args.force, resume=args.resume,
                             extra={"tool": "mechanics_capsules_encoder", "args": vars(args)},
                             title="Canonical Capsules (encoder + capsule layer), procedural shapes")
    print(report.format())
    for name, s in payload["summary"].items():
        e = s["rel_error"]
        cells = "  ".join(f"{k}={v['max']:.2e}" for k, v in e.items() if v)
        print(f"{name:<60} {cells}")
    print(f"wrote {args.out}/mechanics.json and {args.out}/mechanics.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
