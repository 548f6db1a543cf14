"""``canocaps extras trajectories {simulate,prepare-basketball,label,train,sample,plot,eval,summarize,diagnose}``.

Every command prints a JSON summary on stdout (``--json-out PATH`` also writes it,
atomically; ``--json PATH`` is the older spelling), shows progress on stderr
(``--no-progress`` or ``--quiet`` hides it), never overwrites an output without
``-f/--force``, and reports bad input as one line on stderr with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from canocaps._files import atomic_write_text, check_outputs
from canocaps._guard import guarded
from canocaps._options import finish, parse_args
from canocaps._yaml import load_yaml
from canocaps.errors import CanocapsInputError

PROG = "canocaps extras trajectories"


def _kv(items: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise CanocapsInputError(f"{flag} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = load_yaml(v)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Multi-agent trajectories with programmatic weak supervision "
                                "(Zhan et al., ICLR 2019).")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json-out", "--json", dest="json", type=Path, metavar="PATH",
                        help="also write the JSON summary here (default: stdout only)")
        sp.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
        sp.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                        help="no progress bars (default: shown)")

    s = sub.add_parser("simulate", help="simulate a boids data folder (train/val/test)")
    s.add_argument("-o", "--out", type=Path, required=True, help="data folder to write (required)")
    s.add_argument("--n-train", type=int, default=4096, help="training sequences")
    s.add_argument("--n-val", type=int, default=512, help="validation sequences")
    s.add_argument("--n-test", type=int, default=512, help="test sequences")
    s.add_argument("--seed", type=int, default=0, help="simulation seed")
    common(s)

    s = sub.add_parser("prepare-basketball", help="convert the authors' bball_{train,test}.npz into a data folder")
    s.add_argument("--train", type=Path, required=True, help="the authors' bball_train.npz (required)")
    s.add_argument("--test", type=Path, required=True, help="the authors' bball_test.npz (required)")
    s.add_argument("-o", "--out", type=Path, required=True, help="data folder to write (required)")
    s.add_argument("--group", default="offense", choices=["offense", "defense", "all"], help="which players")
    s.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of the training sequences held out for validation")
    s.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    common(s)

    s = sub.add_parser("label", help="apply a labeling function to every split")
    s.add_argument("data_dir", type=Path, help="a data folder (simulate / prepare-basketball)")
    s.add_argument("--lf", required=True, help="stationary | window | flock | any registered name (required)")
    s.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="LF parameter, e.g. window=10 (repeatable; default: the LF's own)")
    s.add_argument("--name", help="label set name (default: the LF name)")
    common(s)

    s = sub.add_parser("train", help="train a model through canocaps.train.Trainer")
    s.add_argument("data_dir", type=Path, help="a data folder (simulate / prepare-basketball)")
    s.add_argument("-o", "--out", type=Path, required=True, help="run folder (required)")
    s.add_argument("--model", required=True, choices=["rnn_gauss", "vrnn_single", "vrnn_indep", "macro_vrnn"],
                   help="the model (required)")
    s.add_argument("--macro", help="label set for macro_vrnn (written by 'label') (default: none)")
    s.add_argument("--size", default="small", choices=["small", "paper"], help="model size preset")
    s.add_argument("--hparam", action="append", metavar="KEY=VALUE",
                   help="override a model hyper-parameter (repeatable; default: the size preset's)")
    s.add_argument("--config", type=Path,
                   help="TrainConfig YAML (flags below override it) (default: 20 epochs, batch 64, lr 1e-3, "
                        "gradient clip 10)")
    s.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    s.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (default: the config's)")
    s.add_argument("--batch-size", type=int, help="mini-batch size (default: the config's)")
    s.add_argument("--lr", type=float, help="learning rate (default: the config's)")
    s.add_argument("--grad-clip", type=float, help="gradient-norm clip (default: the config's)")
    s.add_argument("--seed", type=int, help="run seed (default: the config's)")
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: the config's, auto)")
    s.add_argument("--limit", type=int, help="use only the first N sequences of each split (default: all)")
    s.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    s.add_argument("--select", default="loss", choices=["loss", "rollout"],
                   help="rollout (boids): also keep RUN/best_rollout.pt, the model whose validation rollouts score "
                        "best (speed, out-of-bounds, intents); eval/sample then load it (default: loss)")
    s.add_argument("--select-rollouts", type=int, default=128, help="validation sequences rolled out per check")
    common(s)

    s = sub.add_parser("sample", help="generate trajectories from a trained run")
    s.add_argument("run_dir", type=Path, help="a run folder of 'train'")
    s.add_argument("-o", "--out", type=Path, required=True, help="samples .npz (required)")
    s.add_argument("--split", default="test", help="split whose sequences seed the burn-in")
    s.add_argument("-n", type=int, default=16, help="sequences to generate")
    s.add_argument("--burn-in", type=int, default=1, help="true frames given before sampling")
    s.add_argument("--fix-macro", type=int, help="macro_vrnn: force this intent for every agent (default: sampled)")
    s.add_argument("--teacher-macro", action="store_true", help="macro_vrnn: use the labelled intents in the burn-in")
    s.add_argument("--seed", type=int, default=0, help="sampling seed")
    s.add_argument("--plot", type=Path, help="also write a PNG of the first 8 samples (default: none)")
    s.add_argument("--temperature", type=float, default=1.0, help="scale the sampling std (default 1: the model)")
    common(s)

    s = sub.add_parser("plot", help="plot real sequences of a data folder or samples written by 'sample'")
    s.add_argument("source", type=Path, help="a data folder or a samples .npz")
    s.add_argument("-o", "--out", type=Path, required=True, help="PNG (required)")
    s.add_argument("--split", default="test", help="split of a data folder")
    s.add_argument("-n", type=int, default=8, help="sequences to draw")
    s.add_argument("--arena", choices=["boids", "basketball"], help="default: from the data / run")
    common(s)

    s = sub.add_parser("eval", help="test bound + rollout statistics (+ boids friendliness)")
    s.add_argument("run_dir", type=Path, help="a run folder of 'train'")
    s.add_argument("--split", default="test", help="split to evaluate")
    s.add_argument("--n-rollouts", type=int, default=256, help="sampled rollouts for the statistics")
    s.add_argument("--burn-in", type=int, default=1, help="true frames given before each rollout")
    s.add_argument("--seed", type=int, default=0, help="sampling seed")
    s.add_argument("--iw-samples", type=int, default=0,
                   help="also report the K-sample importance-weighted bound (IWAE) beside the one-sample one "
                        "(default 0: off)")
    s.add_argument("--checkpoint", choices=["best", "last", "best_rollout"],
                   help="default: best_rollout for runs trained with --select rollout, else best")
    s.add_argument("--temperature", type=float, default=1.0, help="scale the sampling std (default 1: the model)")
    common(s)

    s = sub.add_parser("diagnose", help="boids: teacher-forced response to the wall pull and to neighbours, "
                       "real vs model (VRNN models)")
    s.add_argument("run_dir", type=Path, help="a boids run folder of 'train'")
    s.add_argument("--split", default="val", help="split of real sequences (default: val)")
    s.add_argument("-n", type=int, default=256, help="sequences (default: 256)")
    s.add_argument("--checkpoint", choices=["best", "last", "best_rollout"], help="default: as 'eval'")
    s.add_argument("--latent", choices=["prior", "posterior"], default="prior",
                   help="z at the prior's mean (the model's prediction; default) or the posterior's (it saw the frame)")
    common(s)

    s = sub.add_parser("summarize", help="mean +- std over seeds of 'eval' JSON files, as a Markdown table")
    s.add_argument("evals", type=Path, nargs="+", help="JSON files written by 'eval --json'")
    common(s)
    return finish(p)


def _train_config(args: argparse.Namespace):
    from canocaps.train import TrainConfig

    base = TrainConfig.from_yaml(args.config) if args.config else TrainConfig(
        epochs=20, batch_size=64, lr=1e-3, grad_clip_norm=10.0, monitor="val/loss", monitor_mode="min", log_every=5)
    changes = {k: v for k, v in {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
                                 "lr": args.lr, "grad_clip_norm": args.grad_clip, "seed": args.seed,
                                 "device": args.device}.items() if v is not None}
    changes["progress"] = not args.quiet
    changes.setdefault("monitor", "val/loss")
    return base.replace(**changes)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from canocaps.extras.trajectories import experiments as ex

    progress = not args.quiet
    if args.cmd == "simulate":
        return ex.simulate_dataset(args.out, args.n_train, args.n_val, args.n_test, args.seed, force=args.force,
                                   progress=progress)
    if args.cmd == "prepare-basketball":
        return ex.prepare_basketball(args.train, args.test, args.out, args.group, args.val_fraction, args.seed,
                                     force=args.force)
    if args.cmd == "label":
        return ex.label_dataset(args.data_dir, args.lf, _kv(args.param, "--param"), args.name, force=args.force,
                                progress=progress)
    if args.cmd == "train":
        cfg = _train_config(args)
        return ex.train_model(args.data_dir, args.out, args.model, cfg, macro_lf=args.macro,
                              hparams=_kv(args.hparam, "--hparam"), size=args.size, limit=args.limit,
                              resume=args.resume, force=args.force, select=args.select,
                              select_rollouts=args.select_rollouts)
    if args.cmd == "sample":
        from canocaps.extras.trajectories import datasets
        from canocaps.extras.trajectories.plots import plot_trajectories

        check_outputs(args.force, args.out)
        net, record = ex.load_run(args.run_dir)
        res = ex.generate(net, record, args.split, args.n, args.burn_in, args.fix_macro, args.teacher_macro,
                          args.seed, temperature=args.temperature)
        datasets.write_npz(args.out, force=args.force, **res)
        summary: dict[str, Any] = {"out": str(args.out), "shape": list(res["x"].shape), "model": record["model"]}
        if args.plot:
            k = min(8, len(res["x"]))
            plot_trajectories(args.plot, res["x"][:k], arena=record["dataset"], burn_in=args.burn_in,
                              force=args.force, suptitle=f"{record['model']} samples" + (
                                  f", intent fixed to {args.fix_macro}" if args.fix_macro is not None else ""))
            summary["plot"] = str(args.plot)
        return summary
    if args.cmd == "plot":
        return _plot(args)
    if args.cmd == "eval":
        return ex.evaluate_run(args.run_dir, args.split, args.n_rollouts, args.burn_in, args.seed, progress=progress,
                               iw_samples=args.iw_samples, checkpoint=args.checkpoint,
                               temperature=args.temperature)
    if args.cmd == "diagnose":
        from canocaps.extras.trajectories.diagnose import diagnose_run

        return diagnose_run(args.run_dir, args.split, args.n, args.checkpoint, args.latent)
    if args.cmd == "summarize":
        from canocaps.extras.trajectories.report import summarize_evals

        return summarize_evals(args.evals)
    raise CanocapsInputError(f"unknown command {args.cmd!r}")


def _plot(args: argparse.Namespace) -> dict[str, Any]:
    from canocaps.extras.trajectories import datasets
    from canocaps.extras.trajectories.plots import plot_trajectories

    if args.n < 1:
        raise CanocapsInputError(f"-n must be >= 1, got {args.n}")
    if args.source.is_dir():
        meta = datasets.read_meta(args.source)
        x, labels = datasets.read_split(args.source, args.split)
        arena, burn_in = args.arena or meta["dataset"], 1
    else:
        z = datasets.read_npz(args.source, ("x",))
        x, labels, burn_in = z["x"], z.get("label"), int(z.get("burn_in", 1))
        arena = args.arena or (str(z["arena"]) if "arena" in z else "boids")
    x = x[:args.n]
    titles = None
    if labels is not None and arena == "boids":
        titles = ["friendly" if v == 1 else "unfriendly" if v == 0 else "" for v in labels[:args.n]]
    plot_trajectories(args.out, x, titles=titles, arena=arena, burn_in=burn_in, force=args.force)
    return {"out": str(args.out), "n": int(len(x)), "arena": arena}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = _parser()
    try:
        args = parse_args(parser, list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code or 0)

    def body() -> int:
        check_outputs(args.force, args.json)
        summary = _run(args)
        text = json.dumps(summary, indent=2, default=str)
        print(text)
        if args.json is not None:
            atomic_write_text(args.json, text + "\n", force=args.force)
        return 0

    return guarded(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
