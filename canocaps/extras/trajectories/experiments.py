"""The pipeline behind the CLI: simulate -> label -> train -> sample -> eval.

Every step is a function here (the CLI only parses arguments). Training goes through
:class:`canocaps.train.Trainer` and nothing else: one optimizer built once, model
selection on the *validation* split (``monitor="val/loss"``, the negative ELBO per
sequence), ``best.pt`` / ``last.pt`` in the run folder, ``resume=True`` continues.

A run folder holds ``run.json`` (model name, hyper-parameters, data folder, macro LF),
the trainer's files, and what ``sample`` / ``eval`` write.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories import basketball, datasets
from canocaps.extras.trajectories.boids import BoidsConfig, simulate
from canocaps.extras.trajectories.labeling import get_labeling_function
from canocaps.extras.trajectories.metrics import ARENAS, FriendlinessClassifier, evaluate_bound, rollout_stats
from canocaps.extras.trajectories.models import TrajectoryModel, build_model

CHUNK = 256


def _tqdm(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def simulate_dataset(out_dir: str | Path, n_train: int = 4096, n_val: int = 512, n_test: int = 512, seed: int = 0,
                     config: BoidsConfig | None = None, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write a boids data folder (``meta.json``, ``train/val/test.npz``).

    Sequences are simulated in chunks of 256, chunk k of split s seeded with
    ``SeedSequence([seed, s, k])``: the output does not depend on chunking or resuming.
    Resumable: without ``force``, splits already present with the same ``meta.json`` are kept.
    """
    cfg = config or BoidsConfig()
    out = Path(out_dir)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    if min(sizes.values()) < 1:
        raise CanocapsInputError(f"split sizes must be >= 1, got {sizes}")
    meta = {"dataset": "boids", "n_agents": cfg.n_agents, "seq_len": cfg.seq_len, "units": "simulator units",
            "seed": seed, "sizes": sizes, "simulator": cfg.to_dict()}
    meta_file = out / "meta.json"
    resume = False
    if meta_file.exists() and not force:
        old = json.loads(meta_file.read_text())
        if old != meta:
            raise CanocapsInputError(f"{out} holds a different data set (use --force to overwrite)")
        resume = True
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for s_idx, (split, n) in enumerate(sizes.items()):
        path = datasets.split_path(out, split)
        if resume and path.exists():
            continue
        chunks, labels = [], []
        with _tqdm(n, f"simulate {split}", progress) as bar:
            for k, start in enumerate(range(0, n, CHUNK)):
                m = min(CHUNK, n - start)
                x, lab = simulate(m, seed=np.random.SeedSequence([seed, s_idx, k]), config=cfg)
                chunks.append(x)
                labels.append(lab)
                bar.update(m)
        datasets.write_npz(path, force=True if resume else force, data=np.concatenate(chunks),
                           label=np.concatenate(labels))
        written.append(str(path))
    if not resume:
        datasets.write_meta(out, meta, force=force)
    return {"data_dir": str(out), "written": written, **meta}


def prepare_basketball(train_file: str | Path, test_file: str | Path, out_dir: str | Path,
                       group: str = "offense", val_fraction: float = 0.1, seed: int = 0,
                       force: bool = False) -> dict[str, Any]:
    """Convert the authors' ``bball_train.npz`` / ``bball_test.npz`` into a data folder.

    The validation split is a random ``val_fraction`` of the training file (the authors
    had none and selected on the test set). ``group`` picks the agents (default the five
    offensive players, as the paper).
    """
    if not 0.0 < val_fraction < 1.0:
        raise CanocapsInputError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train = basketball.select(basketball.load_basketball(train_file), group)
    test = basketball.select(basketball.load_basketball(test_file), group)
    perm = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, int(round(val_fraction * len(train))))
    if n_val >= len(train):
        raise CanocapsInputError(f"{train_file}: too few sequences for a validation split")
    out = Path(out_dir)
    splits = {"train": train[np.sort(perm[n_val:])], "val": train[np.sort(perm[:n_val])], "test": test}
    for split, arr in splits.items():
        datasets.write_npz(datasets.split_path(out, split), force=force, data=arr)
    meta = {"dataset": "basketball", "n_agents": train.shape[-1] // 2, "seq_len": train.shape[1], "units": "feet",
            "group": group, "seed": seed, "sizes": {k: len(v) for k, v in splits.items()},
            "normalisation": "(v - 25) / [94, 50] per (x, y)"}
    datasets.write_meta(out, meta, force=force)
    return {"data_dir": str(out), **meta}


def _default_lf_params(meta: dict[str, Any], lf: str, params: dict[str, Any]) -> dict[str, Any]:
    if lf in ("window", "stationary") and "arena" not in params:
        return {**params, "arena": meta["dataset"]}
    return params


def label_dataset(data_dir: str | Path, lf: str, params: dict[str, Any] | None = None, name: str | None = None,
                  force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Apply labeling function ``lf`` to every split; writes ``{split}_macro_{name}.npz`` (name defaults to lf)."""
    meta = datasets.read_meta(data_dir)
    params = _default_lf_params(meta, lf, dict(params or {}))
    fn = get_labeling_function(lf, **params)
    name = name or lf
    report: dict[str, Any] = {"lf": lf, "name": name, "params": params, "num_classes": fn.num_classes, "splits": {}}
    for split in datasets.SPLITS:
        data, labels = datasets.read_split(data_dir, split)
        with _tqdm(len(data), f"label {split}", progress) as bar:
            parts = []
            for start in range(0, len(data), 4096):
                parts.append(fn(data[start:start + 4096]))
                bar.update(len(parts[-1]))
        macro = np.concatenate(parts)
        datasets.write_npz(datasets.macro_path(data_dir, split, name), force=force, macro=macro,
                           num_classes=np.int64(fn.num_classes))
        info: dict[str, Any] = {"classes_used": int(len(np.unique(macro))),
                                "changes_per_agent": float((np.diff(macro, axis=1) != 0).sum(1).mean())}
        if lf == "flock" and labels is not None:
            info["agreement_with_simulator_label"] = float((macro[:, 0, 0] == labels).mean())
        report["splits"][split] = info
    return report


BOIDS_MAX_STEP = 0.2  # simulator units per frame; the boids never exceed 0.14 (tested)
VELOCITY_SCALE = 10.0  # displacement features ~ 1 (boids: <= 0.14 per frame)
POSITION_GRID = 11  # per-agent models: own position on an 11 x 11 grid over the arena (boids: every 0.5 units)


def arena_in_model_units(meta: dict[str, Any]) -> list[float]:
    """The dataset's arena (:data:`~.metrics.ARENAS`) as ``[xmin, xmax, ymin, ymax]`` in model units."""
    xmin, xmax, ymin, ymax = ARENAS[meta["dataset"]]
    lo, hi = datasets.normalize(meta, np.array([[xmin, ymin], [xmax, ymax]], dtype=np.float64))
    return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


def default_hparams(model: str, meta: dict[str, Any], n_macro: int | None, size: str = "small") -> dict[str, Any]:
    """Model sizes: ``small`` (the README table; minutes on one CPU core) or ``paper``.

    Every model gets the same step parameterisation: the previous displacement as input
    (``velocity_scale``) and, on boids, displacements bounded by ``max_step`` (0.2 units);
    the per-agent models (``vrnn_indep``, ``macro_vrnn``) see the others relative to themselves,
    plus a neighbour summary (``interaction``) and a grid encoding of their own absolute
    position over the arena (``position_grid``, ``arena``)."""
    width = {"small": 32, "paper": 200}[size]
    h_dim = {"small": 32, "paper": 64}[size]
    hp: dict[str, Any] = {"n_agents": meta["n_agents"], "velocity_scale": VELOCITY_SCALE}
    if meta["dataset"] == "boids":
        hp["max_step"] = BOIDS_MAX_STEP
    if model == "rnn_gauss":
        hp.update(rnn_dim=width, h_dim=h_dim)
    elif model == "vrnn_single":
        hp.update(rnn_dim=width, h_dim=h_dim, z_dim={"small": 8, "paper": 16}[size])
    elif model == "vrnn_indep":
        hp.update(rnn_dim=width, h_dim=h_dim, z_dim={"small": 4, "paper": 16}[size], relative=True,
                  interaction=h_dim, position_grid=POSITION_GRID, arena=arena_in_model_units(meta))
    elif model == "macro_vrnn":
        hp.update(rnn_dim=width, h_dim=h_dim, z_dim={"small": 4, "paper": 16}[size], macro_rnn_dim=width,
                  n_macro=n_macro, relative=True, interaction=h_dim, position_grid=POSITION_GRID,
                  arena=arena_in_model_units(meta))
    return hp


def train_model(data_dir: str | Path, run_dir: str | Path, model: str, train_config: Any,
                macro_lf: str | None = None, hparams: dict[str, Any] | None = None, size: str = "small",
                limit: int | None = None, resume: bool = False, force: bool = False, select: str = "loss",
                select_rollouts: int = 128) -> dict[str, Any]:
    """Train one model through :class:`canocaps.train.Trainer`; returns the fit summary.

    ``select="rollout"`` (boids) adds :class:`~.selection.RolloutSelection`: at every
    validation ``select_rollouts`` validation sequences are rolled out from their first
    frame and the best-scoring model is kept as ``best_rollout.pt`` (what ``eval`` and
    ``sample`` then load); ``best.pt`` stays selected on ``val/loss``."""
    from canocaps.train import Trainer
    from canocaps.train.runs import prepare_run

    meta = datasets.read_meta(data_dir)
    if model == "macro_vrnn" and not macro_lf:
        raise CanocapsInputError("macro_vrnn needs --macro LF (the labels written by 'label')")
    if model != "macro_vrnn":
        macro_lf = None
    train, n_macro = datasets.load_dataset(data_dir, "train", macro_lf, limit)
    val, _ = datasets.load_dataset(data_dir, "val", macro_lf, limit)
    hp = default_hparams(model, meta, n_macro, size)
    hp.update(hparams or {})
    run = Path(run_dir)
    if select not in ("loss", "rollout"):
        raise CanocapsInputError(f"select must be 'loss' or 'rollout', got {select!r}")
    if select == "rollout" and meta["dataset"] != "boids":
        raise CanocapsInputError("--select rollout needs boids data (its score uses the friendliness classifier)")
    if select_rollouts < 1:
        raise CanocapsInputError(f"--select-rollouts must be >= 1, got {select_rollouts}")
    record = {"model": model, "hparams": hp, "data_dir": str(Path(data_dir).resolve()), "macro_lf": macro_lf,
              "dataset": meta["dataset"], "limit": limit, "select": select}
    resume = prepare_run(run, record, spec_name="run.json", resume=resume, force=force,
                         compare=("model", "hparams", "macro_lf"))
    torch.manual_seed(train_config.seed)
    net = build_model(model, **hp)
    callbacks = [_rollout_selection(run, meta, data_dir, val, model, macro_lf, n_macro, select_rollouts,
                                    train_config.seed)] if select == "rollout" else []
    trainer = Trainer(train_config, out_dir=run, callbacks=callbacks)
    result = trainer.fit(net, train, val, resume=resume)
    summary = {"model": model, "run_dir": str(run), "global_step": result.global_step,
               "epochs": result.epochs_completed, "best_val_loss": result.best_score,
               "n_params": sum(p.numel() for p in net.parameters()),
               "best": str(result.best_path) if result.best_path else None}
    if callbacks:
        summary.update(best_rollout=str(callbacks[0].path), best_rollout_score=callbacks[0].best,
                       best_rollout_step=callbacks[0].best_step)
    return summary


def _rollout_selection(run: Path, meta: dict[str, Any], data_dir: str | Path, val: datasets.TrajectoryDataset,
                       model: str, macro_lf: str | None, n_macro: int | None, n: int, seed: int):
    from canocaps.extras.trajectories.selection import RolloutSelection

    train_x, train_y = datasets.read_split(data_dir, "train")
    clf = FriendlinessClassifier.fit(train_x, train_y) if train_y is not None else None
    n = min(n, len(val))
    fix = list(range(n_macro)) if model == "macro_vrnn" and macro_lf == "flock" and n_macro else None
    return RolloutSelection(run / "best_rollout.pt", val.x[:n, :1], val.x.shape[1], meta["dataset"],
                            datasets.unnormalize(meta, val.x[:n].numpy()), lambda a: datasets.unnormalize(meta, a),
                            classifier=clf, real_labels=val.labels[:n].numpy() if clf else None,
                            fix_intents=fix, seed=seed)


def load_run(run_dir: str | Path, which: str | None = None) -> tuple[TrajectoryModel, dict[str, Any]]:
    """Rebuild a trained model from ``run.json`` and a checkpoint: ``which`` = ``best``,
    ``last`` or ``best_rollout``; by default ``best_rollout`` for runs trained with
    ``select="rollout"``, else ``best``."""
    from canocaps.errors import CanocapsWeightsError
    from canocaps.train import load_checkpoint

    run = Path(run_dir)
    if not (run / "run.json").is_file():
        raise CanocapsInputError(f"{run}: not a trajectory run (no run.json)")
    record = json.loads((run / "run.json").read_text())
    if which is None:
        which = "best_rollout" if record.get("select") == "rollout" else "best"
    if which not in ("best", "last", "best_rollout"):
        raise CanocapsInputError(f"checkpoint must be best, last or best_rollout, got {which!r}")
    net = build_model(record["model"], **record["hparams"])
    ckpt = run / f"{which}.pt"
    if not ckpt.is_file():
        raise CanocapsWeightsError(f"{ckpt}: no such checkpoint (train first)")
    load_checkpoint(ckpt, net)
    net.eval()
    record["checkpoint"] = which
    return net, record


def generate(net: TrajectoryModel, record: dict[str, Any], split: str = "test", n: int = 16, burn_in: int = 1,
             fix_macro: int | None = None, teacher_macro: bool = False, seed: int = 0,
             batch_size: int = 256, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """Roll out ``n`` sequences from the first ``burn_in`` frames of the first ``n`` sequences
    of ``split``. Returns raw-unit ``x (n, T, 2A)``, ``truth`` (the real sequences),
    ``label`` (their labels, -1 if none) and, for the macro model, ``macro (n, T, A)``.
    ``temperature`` scales the sampling standard deviations (1 = the model's distribution)."""
    net.set_temperature(temperature)
    data_dir = record["data_dir"]
    meta = datasets.read_meta(data_dir)
    ds, _ = datasets.load_dataset(data_dir, split, record.get("macro_lf"), limit=n)
    T = ds.x.shape[1]
    if not 1 <= burn_in <= T:
        raise CanocapsInputError(f"burn_in must be in [1, {T}], got {burn_in}")
    gen = torch.Generator().manual_seed(seed)
    xs, ms = [], []
    for start in range(0, len(ds), batch_size):
        prefix = ds.x[start:start + batch_size, :burn_in]
        macro = None
        if teacher_macro and ds.macro is not None:
            macro = ds.macro[start:start + batch_size, :max(burn_in - 1, 0)]
        out = net.sample(prefix, T, macro=macro, fix_macro=fix_macro, generator=gen)
        xs.append(out["x"].numpy())
        if "macro" in out:
            ms.append(out["macro"].numpy())
    res = {"x": datasets.unnormalize(meta, np.concatenate(xs)), "truth": datasets.unnormalize(meta, ds.x.numpy()),
           "label": ds.labels.numpy(), "burn_in": np.int64(burn_in),
           "arena": np.array(meta["dataset"])}
    if ms:
        res["macro"] = np.concatenate(ms)
    return res


def evaluate_run(run_dir: str | Path, split: str = "test", n_rollouts: int = 256, burn_in: int = 1, seed: int = 0,
                 progress: bool = True, iw_samples: int = 0, checkpoint: str | None = None,
                 temperature: float = 1.0) -> dict[str, Any]:
    """Test bound (nats per sequence; with ``iw_samples`` = k > 0 also the k-sample
    importance-weighted bound) + rollout statistics (+ boids friendliness); rollouts
    sampled at ``temperature``."""
    net, record = load_run(run_dir, checkpoint)
    data_dir = record["data_dir"]
    meta = datasets.read_meta(data_dir)
    ds, _ = datasets.load_dataset(data_dir, split, record.get("macro_lf"))
    report: dict[str, Any] = {"model": record["model"], "split": split, "run_dir": str(run_dir),
                              "checkpoint": record["checkpoint"], "temperature": temperature,
                              "bound": evaluate_bound(net, ds, seed=seed, progress=progress, iw_samples=iw_samples)}
    report["bound"]["per_step"] = report["bound"]["loss"] / (ds.x.shape[1] - 1)
    gen = generate(net, record, split, n=n_rollouts, burn_in=burn_in, seed=seed, temperature=temperature)
    arena = meta["dataset"]
    report["rollouts"] = {"burn_in": burn_in, "generated": rollout_stats(gen["x"], arena),
                          "ground_truth": rollout_stats(gen["truth"], arena)}
    if meta["dataset"] == "boids":
        train_x, train_y = datasets.read_split(data_dir, "train")
        clf = FriendlinessClassifier.fit(train_x, train_y)
        fr: dict[str, Any] = {
            "classifier_accuracy_on_real": float((clf.predict(gen["truth"]) == gen["label"]).mean()),
            "generated_friendly_fraction": float(clf.predict(gen["x"]).mean()),
            "real_friendly_fraction": float(gen["label"].mean()),
            "generated_matches_source_label": float((clf.predict(gen["x"]) == gen["label"]).mean()),
        }
        if record["model"] == "macro_vrnn" and record.get("macro_lf") == "flock":
            for want, name in ((1, "friendly"), (0, "unfriendly")):
                g = generate(net, record, split, n=n_rollouts, burn_in=burn_in, fix_macro=want, seed=seed + 1 + want,
                             temperature=temperature)
                st = rollout_stats(g["x"], arena)
                fr[f"conditioned_{name}_stats"] = st
                fr[f"conditioned_{name}_classified_as_intended"] = float((clf.predict(g["x"]) == want).mean())
        report["friendliness"] = fr
    return report
