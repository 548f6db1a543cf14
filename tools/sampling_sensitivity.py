#!/usr/bin/env python
"""How much a model's capsules move when the *sampling* of a shape changes, and where.

A canonicaliser for scans must give the same keypoints for two samples of one surface.
This tool feeds validation shapes (no rotation) to a weights file in several perturbed
forms and prints

1. the capsule keypoint shift (mean over capsules, in shape radii) and the
   canonical-frame change (degrees) against the unperturbed cloud for: the same points
   permuted, the same points duplicated, small Gaussian jitter, the first half of the
   points, and an independent sample of the same surface;
2. layer by layer, the relative change of the per-point features of the shared points
   when the cloud is cut to its first half (``||f_half - f_full|| / ||f_full||``, mean over
   points), which shows which layers amplify a change of the point set.

    python tools/sampling_sensitivity.py --json runs/sampling_sensitivity.json
    python tools/sampling_sensitivity.py --weights runs/x/model.pt --shapes 64
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def _keypoints_and_frames(net: Any, points: Any) -> tuple[Any, Any]:
    import torch

    with torch.no_grad():
        out = net(points, decode=False)
    return out.keypoints, out.R


def _layer_changes(net: Any, points: Any) -> list[tuple[str, float]]:
    """Relative change of every per-point module output on the shared first half."""
    import torch

    n_half = points.shape[1] // 2
    outputs: dict[str, list[Any]] = {}
    hooks = []
    for name, module in net.named_modules():
        if not name or name.startswith(("decoder", "canonicalizer")):
            continue

        def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.ndim == 3:
                outputs.setdefault(name, []).append(out.detach())

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(points, decode=False)
            net(points[:, :n_half], decode=False)
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for name, outs in outputs.items():
        if len(outs) != 2 or outs[0].shape[1] != points.shape[1] or outs[1].shape[1] != n_half:
            continue
        full, half = outs[0][:, :n_half], outs[1]
        change = (half - full).norm(dim=-1).mean() / full.norm(dim=-1).mean().clamp_min(1e-12)
        rows.append((name, float(change)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="weights name or path (default: the shipped weights)")
    p.add_argument("--split", default="val")
    p.add_argument("--shapes", type=int, default=128, help="number of shapes (first of the split; default 128)")
    p.add_argument("--num-points", type=int, default=None, help="default: the model's training N")
    p.add_argument("--per-class", type=int, default=None, help="procedural shapes per class (default: the split's)")
    p.add_argument("--jitter", type=float, default=0.005, help="Gaussian jitter std (unit-sphere units)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--force", action="store_true", help="overwrite --json")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("sampling_sensitivity", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import torch

    from canocaps import load_pretrained
    from canocaps.commands._common import check_outputs, format_table, write_json_file
    from canocaps.data import build_dataset
    from canocaps.errors import CanocapsInputError
    from canocaps.geometry import rotation_error_deg

    if args.json:
        check_outputs(args.force, args.json)
    if args.shapes < 1:
        raise CanocapsInputError(f"--shapes must be >= 1, got {args.shapes}")
    model = load_pretrained(args.weights) if args.weights else load_pretrained()
    net = model.eval()
    n = args.num_points or net.config.num_points
    extra = {} if args.per_class is None else {"per_class": args.per_class}
    ds = build_dataset("procedural", args.split, n, seed=args.seed, resample_views=True, **extra)
    count = min(args.shapes, len(ds))
    batch = next(iter(torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(count)), batch_size=count)))
    pts, other = batch["points"], batch["points_b"]
    gen = torch.Generator().manual_seed(args.seed)
    radius = (pts - pts.mean(1, keepdim=True)).norm(dim=-1).amax(1)
    kp0, R0 = _keypoints_and_frames(net, pts)
    variants = {
        "permuted": pts[:, torch.randperm(n, generator=gen)],
        "duplicated": torch.cat([pts, pts], dim=1),
        f"jitter {args.jitter:g}": pts + args.jitter * torch.randn(pts.shape, generator=gen),
        "first half": pts[:, : n // 2],
        "independent sample": other,
    }
    rows = []
    for name, cloud in variants.items():
        kp, R = _keypoints_and_frames(net, cloud)
        shift = ((kp - kp0).norm(dim=-1).mean(dim=1) / radius).mean()
        angle = rotation_error_deg(R, R0)
        rows.append([name, float(shift), float(angle.mean()), float(angle.median())])
    print(f"{count} {args.split} shapes, {n} points, no rotation; change against the unperturbed cloud")
    print(format_table(["input", "keypoint shift (radii)", "frame change mean (deg)", "median (deg)"], rows))
    layers = _layer_changes(net, pts)
    print()
    print("per-point features of the shared points, first half vs the whole cloud")
    print(format_table(["module", "relative change"], [[name, value] for name, value in layers]))
    if args.json:
        write_json_file(args.json, {
            "weights": args.weights or "default", "split": args.split, "shapes": count, "num_points": n,
            "inputs": [dict(zip(("input", "keypoint_shift", "frame_change_deg_mean", "frame_change_deg_median"), r))
                       for r in rows],
            "layers": [{"module": name, "relative_change": value} for name, value in layers],
        }, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
