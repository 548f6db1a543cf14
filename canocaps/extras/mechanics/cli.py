"""``canocaps extras mechanics {detect,run} ...`` (also ``python -m canocaps.extras.mechanics``).

- ``detect --model mlp_bn`` prints the symmetry groups found (``--json-out PATH`` or ``--json``
  for JSON on stdout; ``--json PATH`` / ``--json -``, the older spelling, still work).
- ``run --model mlp --out DIR [--lr ... --momentum ... --weight-decay ...]`` trains on the
  digits through the shared Trainer and writes ``DIR/mechanics.json`` and ``DIR/mechanics.png``.
- ``plot DIR/mechanics.json -o FILE.png`` re-draws the plots without training.

Errors caused by the input give one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from canocaps._guard import guarded
from canocaps._options import finish, parse_args
from canocaps.errors import CanocapsInputError

__all__ = ["main", "build_parser"]


def _milestones(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr-milestones wants comma-separated epochs, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from canocaps.extras.mechanics.models import MODEL_KINDS

    p = argparse.ArgumentParser(prog="canocaps extras mechanics",
                                description="Neural Mechanics: symmetries, conservation laws and their dynamics.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="find the symmetry groups of a model")
    d.add_argument("--model", choices=MODEL_KINDS, default="mlp", help="a bundled model")
    d.add_argument("--hidden", type=int, default=None, help="MLP width / conv channels (default: the model's own)")
    d.add_argument("--module", metavar="PKG.MOD:NAME",
                   help="any model instead of --model: an nn.Module class/factory called without arguments "
                        "(default: none)")
    d.add_argument("--input-shape", metavar="B,...",
                   help="example input shape for --module, e.g. 2,1024,3 (default: none; required with --module)")
    d.add_argument("--output-softmax", action="store_true",
                   help="--module returns logits that the loss feeds to a softmax over the last axis")
    d.add_argument("--json-out", "--json", dest="json", metavar="PATH", nargs="?", const="-",
                   help="write the report as JSON to PATH; '-' or no PATH: to stdout (default: a table)")
    d.add_argument("-f", "--force", action="store_true", help="overwrite --json-out PATH")
    h = sub.add_parser("hessian", help="check each symmetry's Hessian constraint with Hessian-vector products")
    h.add_argument("--model", choices=MODEL_KINDS, default="mlp", help="model to check")
    h.add_argument("--hidden", type=int, default=None, help="hidden width (default: the model's)")
    h.add_argument("--bn-eps", type=float, default=1e-5, help="batch-norm eps (scale is exact only as eps -> 0)")
    h.add_argument("--batch", type=int, default=64, help="training images in the loss")
    h.add_argument("--slots", default="all",
                   help="'all' (one random combination of every slot) or K (first K, one by one)")
    h.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="precision of the check")
    h.add_argument("--seed", type=int, default=0, help="initialisation seed (the constraints hold at any parameters)")
    h.add_argument("--json-out", "--json", dest="json", metavar="PATH",
                   help="also write the result as JSON (default: none)")
    h.add_argument("-f", "--force", action="store_true", help="overwrite --json-out PATH")
    r = sub.add_parser("run", help="train on the 8x8 digits and measure the conserved quantities")
    r.add_argument("--model", choices=MODEL_KINDS, default="mlp", help="a bundled model")
    r.add_argument("-o", "--out", required=True,
                   help="output folder (mechanics.json, mechanics.png, train/) (required)")
    r.add_argument("--steps", type=int, default=200, help="SGD steps")
    r.add_argument("--batch-size", type=int, default=64, help="mini-batch size")
    r.add_argument("--lr", type=float, default=0.1, help="learning rate")
    r.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    r.add_argument("--dampening", type=float, default=0.0, help="SGD dampening")
    r.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    r.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay")
    r.add_argument("--lr-milestones", type=_milestones, default=[],
                   help="epochs at which the learning rate is multiplied by --lr-gamma, e.g. 3,6")
    r.add_argument("--lr-gamma", type=float, default=0.1, help="learning-rate factor at each milestone")
    r.add_argument("--hidden", type=int, default=None, help="MLP width / conv channels (default: the model's own)")
    r.add_argument("--bn-eps", type=float, default=1e-5, help="batch-norm epsilon")
    r.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="training dtype (float64 makes the exact per-step identities visible)")
    r.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batches")
    r.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    r.add_argument("--resume", action="store_true", help="continue from OUT/train/last.pt")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    pl = sub.add_parser("plot", help="re-draw the plots of a run from its mechanics.json")
    pl.add_argument("json_path", metavar="JSON", help="a run's mechanics.json")
    pl.add_argument("-o", "--output", required=True, help="PNG path (required)")
    pl.add_argument("-f", "--force", action="store_true", help="overwrite the PNG")
    return finish(p)


def _plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from canocaps.errors import CanocapsInputError
    from canocaps.extras.mechanics.plots import plot_experiment

    path = Path(args.json_path)
    try:
        payload = json.loads(path.read_text())
        payload["series"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CanocapsInputError(f"{path}: not a readable mechanics.json") from None
    plot_experiment(payload, args.output, force=args.force)
    print(f"wrote {args.output}")
    return 0


def _user_model(spec: str, shape_text: str | None) -> "tuple[torch.nn.Module, torch.Tensor]":
    """Import ``pkg.mod:Name``, call it without arguments; a zero input of ``shape_text``."""
    import importlib

    import torch

    from canocaps.errors import CanocapsInputError

    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise CanocapsInputError(f"--module wants PKG.MOD:NAME, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CanocapsInputError(f"--module {spec}: cannot import ({exc})") from None
    net = factory() if not isinstance(factory, torch.nn.Module) else factory
    if not isinstance(net, torch.nn.Module):
        raise CanocapsInputError(f"--module {spec} did not give a torch.nn.Module")
    if not shape_text:
        raise CanocapsInputError("--module needs --input-shape (e.g. 2,1024,3)")
    try:
        shape = tuple(int(v) for v in shape_text.split(","))
    except ValueError:
        raise CanocapsInputError(f"--input-shape wants comma-separated integers, got {shape_text!r}") from None
    if not shape or min(shape) < 1:
        raise CanocapsInputError(f"--input-shape must be positive sizes, got {shape_text!r}")
    dtype = next((p.dtype for p in net.parameters()), torch.float32)
    return net, torch.zeros(shape, dtype=dtype)


def _hessian(args: argparse.Namespace) -> int:
    import torch

    from canocaps._files import atomic_write_text
    from canocaps.extras.mechanics.hessian import check_hessian_constraints
    from canocaps.extras.digits import load_digits
    from canocaps.extras.mechanics.models import IMAGE_SIZE, build_model, example_input
    from canocaps.extras.mechanics.symmetry import detect_symmetries

    slots: str | int = args.slots
    if slots != "all":
        try:
            slots = int(slots)
        except ValueError:
            raise CanocapsInputError(f"--slots must be 'all' or a positive integer, got {args.slots!r}") from None
    if args.batch < 2:
        raise CanocapsInputError(f"--batch must be >= 2 (batch norm needs a batch), got {args.batch}")
    if args.json and Path(args.json).exists() and not args.force:
        raise CanocapsInputError(f"{args.json} exists (use --force to overwrite)")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    net = build_model(args.model, args.hidden, bn_eps=args.bn_eps).to(dtype)
    report = detect_symmetries(net, example_input(args.model, dtype=dtype), output_softmax=True)
    side = IMAGE_SIZE.get(args.model)
    data = load_digits("train", flatten=side is None, dtype=dtype, method="rng_permutation",
                       upsample=(side or 8) // 8)
    x, y = data.x[:args.batch], data.y[:args.batch]
    net.train()
    result = check_hessian_constraints(report, net, lambda: torch.nn.functional.cross_entropy(net(x), y),
                                       slots=slots, seed=args.seed)
    result.update(model=args.model, bn_eps=args.bn_eps, batch=args.batch, dtype=args.dtype, slots=args.slots)
    print(f"Hessian constraints of {args.model} ({args.dtype}, batch {args.batch}, bn eps {args.bn_eps:g}): "
          f"|H v - target| / |H u| (u random, |u| = |v|)")
    for name, r in result["groups"].items():
        print(f"  {name:<36} slots {r['slots_checked']:>4}  residual {r['residual']:.2e}  scale {r['scale']:.2e}"
              f"  rel {r['rel_error']:.2e}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n", force=args.force)
        print(f"wrote {args.json}")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from canocaps._files import atomic_write_text
    from canocaps.extras.mechanics.models import build_model, example_input
    from canocaps.extras.mechanics.symmetry import detect_symmetries

    if args.module:
        net, example = _user_model(args.module, args.input_shape)
        report = detect_symmetries(net, example, output_softmax=args.output_softmax)
    else:
        report = detect_symmetries(build_model(args.model, args.hidden), example_input(args.model),
                                   output_softmax=True)
    if args.json == "-":
        print(report.to_json())
        return 0
    print(report.format())
    if args.json:
        atomic_write_text(args.json, report.to_json() + "\n", force=args.force)
        print(f"wrote {args.json}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from canocaps.extras.mechanics.experiments import ExperimentConfig, run_experiment

    cfg = ExperimentConfig(model=args.model, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           momentum=args.momentum, dampening=args.dampening, nesterov=args.nesterov,
                           weight_decay=args.weight_decay, lr_milestones=args.lr_milestones,
                           lr_gamma=args.lr_gamma, hidden=args.hidden, bn_eps=args.bn_eps, dtype=args.dtype,
                           seed=args.seed)
    payload = run_experiment(cfg, args.out, force=args.force, resume=args.resume, progress=not args.no_progress)
    print(f"{payload['title']}: {payload['steps']} steps; max relative error over steps and groups "
          f"(|measured - predicted| / magnitude)")
    cols = ("sgd_step", "discrete", "gradient_flow", "modified", "paper")
    print(f"  {'group':<28} {'regime':<8} " + " ".join(f"{c:>13}" for c in cols) + f" {'violation':>10}")
    for name, s in payload["summary"].items():
        errs = [s["rel_error"].get(c) for c in cols]
        cells = " ".join(f"{e['max']:13.3e}" if e else f"{'-':>13}" for e in errs)
        v = s["symmetry_violation_max"]
        print(f"  {name:<28} {str(s['regime']):<8} {cells} {v if v is None else format(v, '10.2e')}")
    print(f"wrote {args.out}/mechanics.json and {args.out}/mechanics.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on bad input, one line on stderr)."""
    parser = build_parser()
    args = parse_args(parser, list(sys.argv[1:] if argv is None else argv))
    return guarded(parser.prog, lambda: {"detect": _detect, "run": _run, "plot": _plot,
                                         "hessian": _hessian}[args.command](args))
