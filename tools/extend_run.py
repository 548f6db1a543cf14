#!/usr/bin/env python
"""Change a training run's model config and go on training: a new run folder that `canocaps train --resume` continues.

``canocaps train --resume RUN --set model.X=...`` restores the checkpoint into the model the new
config builds, so it refuses a config that adds parameters (the checkpoint lacks them). This tool
writes a copy of ``RUN`` whose ``run.yaml`` carries the overrides and whose ``last.pt`` holds the
old weights plus the new parameters at their initialisation; the optimizer state follows the
parameters by name (new ones start without Adam moments), the position, the generators and the
callbacks stay as they were. ``best.pt`` and ``model.pt`` are not copied: they belong to the old
model. Existing parameters must keep their shapes.

    python tools/extend_run.py pretrained/runs/equivariant_cpu RUN \\
        --set model.routing_iterations=5 model.routing_init=30
    canocaps train --resume RUN --set train.max_steps=3400

Session 13 added distance routing to the capsules this way (``docs/model.md``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

COPIED = ("train_config.yaml", "metrics.csv", "frame_weighting.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run folder holding run.yaml and last.pt")
    p.add_argument("out", help="new run folder (must not exist, unless --force)")
    p.add_argument("--set", dest="overrides", nargs="+", required=True, metavar="KEY=VALUE",
                   help="run config overrides, as for canocaps train (e.g. model.routing_iterations=5)")
    p.add_argument("--force", action="store_true", help="replace OUT")
    args = p.parse_args(argv)

    from _cli import guarded

    return guarded("extend_run", lambda: _run(args))


def extend_checkpoint(state: dict[str, Any], old_module: Any, new_module: Any) -> tuple[dict[str, Any], list[str]]:
    """``state`` (a trainer checkpoint of ``old_module``) for ``new_module``; returns it and the added names.

    Module entries of ``new_module`` missing from ``state["module"]`` are added at ``new_module``'s
    values; the optimizer's per-parameter state is re-indexed by parameter name (one param group).
    Raises :class:`canocaps.errors.CanocapsInputError` when an old entry is gone or changed shape.
    """
    from canocaps.errors import CanocapsInputError

    old_sd, new_sd = state["module"], new_module.state_dict()
    for name, t in old_sd.items():
        if name not in new_sd:
            raise CanocapsInputError(f"the new config drops {name}: only configs that add parameters extend a run")
        if tuple(new_sd[name].shape) != tuple(t.shape):
            raise CanocapsInputError(f"the new config changes {name} from {tuple(t.shape)} to "
                                     f"{tuple(new_sd[name].shape)}: only configs that add parameters extend a run")
    added = [n for n in new_sd if n not in old_sd]
    module = {n: (old_sd[n] if n in old_sd else new_sd[n].detach().clone()) for n in new_sd}
    out = dict(state, module=module)
    opt = state.get("optimizer")
    if opt:
        old_names = [n for n, _ in old_module.named_parameters()]
        new_names = [n for n, _ in new_module.named_parameters()]
        groups = opt["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(old_names):
            raise CanocapsInputError("the optimizer state has several parameter groups (or does not fit the old "
                                     "model): this tool re-indexes one group")
        index = {n: i for i, n in enumerate(old_names)}
        per_param = {j: opt["state"][index[n]] for j, n in enumerate(new_names)
                     if n in index and index[n] in opt["state"]}
        out["optimizer"] = dict(opt, state=per_param,
                                param_groups=[dict(groups[0], params=list(range(len(new_names))))])
    return out, added


def _run(args: argparse.Namespace) -> int:
    import yaml

    from canocaps._files import atomic_write_text
    from canocaps.errors import CanocapsInputError
    from canocaps.model.module import CapsulesTrainModule
    from canocaps.recipes.capsules import load_run_config
    from canocaps.train.checkpoint import read_trainer_checkpoint, save_checkpoint, seed_everything

    run, out = Path(args.run), Path(args.out)
    if not (run / "run.yaml").is_file() or not (run / "last.pt").is_file():
        raise CanocapsInputError(f"{run}: not a run folder (needs run.yaml and last.pt)")
    if out.resolve() == run.resolve():
        raise CanocapsInputError("OUT must be a new folder, not RUN")
    if out.exists() and not args.force:
        raise CanocapsInputError(f"{out} exists (use --force to replace it)")
    old_cfg = load_run_config(run / "run.yaml")
    new_cfg = load_run_config(run / "run.yaml", args.overrides)
    state = read_trainer_checkpoint(run / "last.pt")
    old_module = CapsulesTrainModule(old_cfg["model"], old_cfg["data"]["pairs"])
    seed_everything(new_cfg["train"].seed)  # the new parameters' initial values, reproducibly
    new_module = CapsulesTrainModule(new_cfg["model"], new_cfg["data"]["pairs"])
    extended, added = extend_checkpoint(state, old_module, new_module)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        if (run / name).is_file():
            shutil.copy2(run / name, out / name)
    spec = {"model": new_cfg["model"].to_dict(), "data": dict(new_cfg["data"]), "train": new_cfg["train"].to_dict()}
    atomic_write_text(out / "run.yaml", yaml.safe_dump(spec, sort_keys=False), force=True)
    save_checkpoint(extended, out / "last.pt")
    step = extended["trainer"]["global_step"]
    print(f"{out}: {run} at step {step} with {', '.join(args.overrides)}; "
          f"new: {', '.join(added) or 'no parameters'}; continue with: canocaps train --resume {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
