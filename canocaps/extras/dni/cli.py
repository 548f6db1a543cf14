"""``canocaps extras dni {lstsq,deeplinear,representations,classify} --out DIR ...``

Each sub-command runs one experiment (see :mod:`canocaps.extras.dni.experiments`), prints
a Markdown table, and writes ``DIR/<experiment>.json`` and ``DIR/<experiment>.png``
(atomically; an existing file is only replaced with ``--force``). Individual training
runs live in ``DIR/runs/...`` and resume when the same command is run again.
Errors print one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from canocaps._files import check_outputs
from canocaps._guard import guarded
from canocaps._options import finish, parse_args

__all__ = ["main", "build_parser"]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _strs(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canocaps extras dni",
                                description="Synthetic gradients / decoupled neural interfaces (Czarnecki et al. 2017).")
    sub = p.add_subparsers(dest="experiment", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-o", "--out", required=True, type=Path, help="output folder (JSON, PNG, resumable runs) (required)")
        sp.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs and restart runs")
        sp.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu: the models are tiny)")
        sp.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bars (default: shown)")
        sp.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG (default: written)")

    sp = sub.add_parser("lstsq", help="claim 1: linear regression + linear cDNI reaches least squares")
    sp.add_argument("--n", type=int, default=256, help="samples")
    sp.add_argument("--d", type=int, default=10, help="input dimension")
    sp.add_argument("--k", type=int, default=3, help="output dimension")
    sp.add_argument("--noise", type=float, default=0.5, help="std of the target noise")
    sp.add_argument("--steps", type=int, default=3000, help="full-batch SGD steps")
    sp.add_argument("--lr", type=float, default=0.01, help="learning rate")
    sp.add_argument("--modes", type=_strs, default=["backprop", "cdni", "dni"],
                    help="comma-separated training modes: backprop, cdni, dni")
    sp.add_argument("--seed", type=int, default=0, help="seed of the data and the initialisation")
    sp.add_argument("--delay", type=int, default=0,
                    help="pipelined update-decoupled SG training: the upper block reads activations this many "
                         "steps old (0 = synchronous; > 0 uses bootstrapped SG targets)")
    common(sp)

    sp = sub.add_parser("deeplinear", help="claim 2: deep linear net + linear SG reaches the global optimum")
    sp.add_argument("--n", type=int, default=256, help="samples")
    sp.add_argument("--d", type=int, default=8, help="input dimension")
    sp.add_argument("--hidden", type=int, default=8, help="width of the hidden layers")
    sp.add_argument("--k", type=int, default=4, help="output dimension")
    sp.add_argument("--depth", type=int, default=2, help="linear layers")
    sp.add_argument("--steps", type=int, default=4000, help="full-batch SGD steps")
    sp.add_argument("--lr", type=float, default=0.1, help="learning rate")
    sp.add_argument("--modes", type=_strs, default=["backprop", "dni", "cdni"],
                    help="comma-separated training modes: backprop, dni, cdni, dfa, fa")
    sp.add_argument("--target", choices=["true", "bootstrap"], default="true",
                    help="regression target of the synthetic gradients: the true per-sample gradient, or "
                             "the next SG's prediction pulled back through the next block (bootstrap)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the data and the initialisation")
    sp.add_argument("--delay", type=int, default=0,
                    help="pipelined update-decoupled SG training: block i reads block i-1's activation from this "
                         "many steps earlier (0 = synchronous; > 0 needs --target bootstrap)")
    common(sp)

    for name, help_ in (("representations", "claim 3: linear SG + log-loss learns other representations (CKA)"),
                        ("classify", "claim 4: accuracy of backprop / DNI / cDNI / DFA / FA")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--data", choices=["digits", "mnist"], default="digits",
                        help="digits: scikit-learn's bundled 8x8 digits; mnist: needs --mnist-dir")
        sp.add_argument("--mnist-dir", default=None,
                        help="folder with the four MNIST IDX files (no download) (default: none)")
        sp.add_argument("--epochs", type=int, default=30, help="training epochs")
        sp.add_argument("--batch-size", type=int, default=64, help="mini-batch size")
        sp.add_argument("--lr", type=float, default=1e-3, help="learning rate")
        sp.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam", help="optimiser")
        sp.add_argument("--target", choices=["true", "bootstrap"], default="true",
                        help="regression target of the synthetic gradients: the true per-sample gradient, or "
                             "the next SG's prediction pulled back through the next block (bootstrap)")
        if name == "representations":
            sp.add_argument("--hidden", type=_ints, default=[64, 64, 64], help="comma-separated hidden widths")
            sp.add_argument("--activation", choices=["linear", "relu", "tanh"], default="linear",
                            help="hidden activation")
            sp.add_argument("--sg-mode", choices=["dni", "cdni", "dfa", "fa"], default="dni",
                            help="the mode compared with backprop")
            sp.add_argument("--sg", choices=["linear", "mlp"], default="linear", help="synthetic-gradient module")
            sp.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="comma-separated seeds, at least two")
        else:
            sp.add_argument("--arch", choices=["mlp", "cnn"], default="mlp", help="network")
            sp.add_argument("--hidden", type=_ints, default=[256, 256], help="comma-separated hidden widths")
            sp.add_argument("--activation", choices=["linear", "relu", "tanh"], default="relu",
                            help="hidden activation")
            sp.add_argument("--modes", type=_strs, default=["backprop", "dni", "cdni", "dfa", "fa"],
                            help="comma-separated training modes from backprop, dni, cdni, dfa, fa, kickback")
            sp.add_argument("--delays", type=_ints, default=[],
                            help="also run dni/cdni pipelined with these delays (e.g. 1,2; bootstrapped targets)")
            sp.add_argument("--sg", choices=["linear", "mlp"], default="mlp", help="synthetic-gradient module")
            sp.add_argument("--sg-hidden", type=int, default=256, help="width of an MLP synthetic-gradient module")
            sp.add_argument("--sg-hidden-layers", type=int, default=1,
                            help="hidden layers of an MLP synthetic-gradient module")
            sp.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="comma-separated seeds, one run each")
        common(sp)
    return finish(p)


def _config(cls, args: argparse.Namespace):
    values = vars(args)
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment named by ``args.experiment``; write JSON (+ PNG); return the result."""
    from canocaps.extras.dni import experiments as ex
    from canocaps.extras.dni.report import format_table, json_safe
    from canocaps._files import atomic_write_text

    exp = args.experiment
    out: Path = args.out
    json_path, png_path = out / f"{exp}.json", out / f"{exp}.png"
    check_outputs(args.force, json_path, png_path if args.plot else None)
    cls, fn = {"lstsq": (ex.LstsqConfig, ex.run_lstsq), "deeplinear": (ex.DeepLinearConfig, ex.run_deeplinear),
               "representations": (ex.RepresentationsConfig, ex.run_representations),
               "classify": (ex.ClassifyConfig, ex.run_classify)}[exp]
    result = fn(_config(cls, args), out_dir=out, force=args.force, progress=args.progress)
    if argv is not None:
        result["command"] = "canocaps extras dni " + " ".join(argv)
    atomic_write_text(json_path, json.dumps(json_safe(result), indent=1), force=args.force)
    if args.plot:
        from canocaps.extras.dni.plots import plot_result

        plot_result(result, png_path, force=args.force)
    print(format_table(result))
    print(f"wrote {json_path}" + (f" and {png_path}" if args.plot else ""), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input / existing output,
    1 I/O failure, 130 interrupted — the runs resume when the command is repeated)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except SystemExit as e:  # argparse already printed its one-line usage error
        return int(e.code or 0) if e.code in (0, None) else 2
    return guarded(parser.prog, lambda: run(args, argv) and 0,
                   interrupted="interrupted; run the same command again to resume")
