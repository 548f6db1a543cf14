"""The Canonical Capsules run recipe: model + data + the shared trainer.

:func:`run_training` builds data + :class:`canocaps.model.module.CapsulesTrainModule` +
:class:`canocaps.train.Trainer` from a run config with ``model:``, ``data:`` and
``train:`` sections (see ``canocaps/train/configs/capsules_*.yaml``);
:func:`evaluate` measures a network on SE(3) pairs of a dataset (``canocaps eval
equivariance``); :func:`export_weights` turns a trainer checkpoint into a standalone
weights file (``canocaps export``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from canocaps._files import read_text
from canocaps._yaml import load_yaml, load_yaml_mapping
from canocaps.errors import CanocapsInputError, CanocapsWeightsError
from canocaps.model.config import CapsulesConfig
from canocaps.model.module import (DEFAULT_PAIRS, CapsulesTrainModule, baseline_pair_metrics, compute_losses,
                                   pair_metrics)
from canocaps.model.network import CanonicalCapsules

__all__ = ["build_datasets", "load_run_config", "run_training", "export_weights", "evaluate", "evaluate_split",
           "DEFAULT_DATA"]

#: defaults of the ``data:`` section of a run config
DEFAULT_DATA: dict[str, Any] = {
    "name": "procedural",
    "num_points": 1024,
    "train_split": "train",
    "val_split": "val",
    "test_split": "test",
    "options": {},  # extra keyword arguments of canocaps.data.build_dataset
    "pairs": dict(DEFAULT_PAIRS),
}


def _class_names(dataset: Any) -> list[str] | None:
    while dataset is not None:
        names = getattr(dataset, "class_names", None)
        if names is not None:
            return list(names)
        dataset = getattr(dataset, "dataset", None)  # torch Subset
    return None


@torch.no_grad()
def evaluate(net: CanonicalCapsules, dataset: Any, batch_size: int = 16, pairs: Mapping[str, Any] | None = None,
             seed: int = 0, device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """Mean :func:`pair_metrics`, :func:`baseline_pair_metrics` and losses of ``net`` over ``dataset``.

    Eval mode; pairs come from a generator seeded with ``seed``: the same numbers every
    call. Returns floats (``equivariance_deg_median`` and ``pca_equivariance_deg_median``
    added beside the means) and, when the batches carry ``"label"``, ``"per_class"``:
    ``{class name (or label): {"num_shapes", "equivariance_deg", "equivariance_deg_median",
    "canonical_agreement", "pca_equivariance_deg", "pca_canonical_agreement"}}``.
    """
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    module = CapsulesTrainModule(net.config, pairs)
    module.net = net
    net.to(device)
    was = net.training
    net.eval()
    gen = torch.Generator().manual_seed(seed)  # CPU generator: the same pairs on every device
    sums: dict[str, float] = {}
    per_pair: dict[str, list[torch.Tensor]] = {}
    count = 0
    try:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            points, R12, t12 = module._views(batch, gen)
            out = net(points)
            b = points.shape[0] // 2
            losses = compute_losses(out, points, R12, t12)
            m = {**pair_metrics(out, points, R12, t12), **baseline_pair_metrics(points, R12, t12)}
            for k, v in m.items():
                per_pair.setdefault(k, []).append(v.cpu())
            if isinstance(batch, Mapping) and "label" in batch:
                per_pair.setdefault("label", []).append(torch.as_tensor(batch["label"]).flatten().cpu())
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            count += b
    finally:
        net.train(was)
    if count == 0:
        raise CanocapsInputError("evaluate: empty dataset")
    cat = {k: torch.cat(v).double() for k, v in per_pair.items()}
    labels = cat.pop("label", None)
    res: dict[str, Any] = {k: float(v.mean()) for k, v in cat.items()}
    res.update({k: v / count for k, v in sums.items()})
    res["equivariance_deg_median"] = float(cat["equivariance_deg"].median())
    res["pca_equivariance_deg_median"] = float(cat["pca_equivariance_deg"].median())
    res["num_shapes"] = float(count)
    if labels is not None:
        names = _class_names(dataset)
        res["per_class"] = {}
        for label in sorted(int(x) for x in labels.unique()):
            sel = labels == label
            key = names[label] if names is not None and 0 <= label < len(names) else str(label)
            row: dict[str, float] = {"num_shapes": float(sel.sum())}
            for k in ("equivariance_deg", "canonical_agreement", "pca_equivariance_deg", "pca_canonical_agreement"):
                row[k] = float(cat[k][sel].mean())
            row["equivariance_deg_median"] = float(cat["equivariance_deg"][sel].median())
            res["per_class"][key] = row
    return res


def evaluate_split(net: CanonicalCapsules, data: str = "procedural", split: str = "test",
                   num_points: int | None = None, limit: int | None = None, *, batch_size: int = 16,
                   seed: int = 0, max_angle_deg: float = 180.0, max_translation: float = 0.2,
                   resample_views: bool = False, progress: bool = True,
                   dataset_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`evaluate` on a data split named as on the command line (``canocaps eval equivariance``).

    ``data``: see :func:`canocaps.data.open_dataset`; ``num_points`` defaults to the
    network's; ``limit`` keeps that many shapes spread evenly over the split; ``seed``
    seeds the point selection and the pair poses.
    """
    from canocaps.data import open_dataset, pick

    ds = open_dataset(data, split, int(num_points or net.config.num_points), seed=seed,
                      resample_views=resample_views, **dict(dataset_kwargs or {}))
    if limit is not None:
        ds = torch.utils.data.Subset(ds, [int(i) for i in pick(len(ds), limit)])
    return evaluate(net, ds, batch_size=batch_size, seed=seed, progress=progress,
                    pairs={"max_angle_deg": max_angle_deg, "max_translation": max_translation, "noise_std": 0.0})


# ---------------------------------------------------------------------- run configs
def _parse_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise CanocapsInputError(f"override {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = load_yaml(value)
    return out


def _set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in ("model", "data", "train"):
        raise CanocapsInputError(f"override {key!r}: must start with model., data. or train.")
    node = cfg
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise CanocapsInputError(f"override {key!r}: {p} is not a section")
    node[parts[-1]] = value


def load_run_config(config: str | os.PathLike | Mapping[str, Any],
                    overrides: Mapping[str, Any] | Sequence[str] | None = None) -> dict[str, Any]:
    """Read a run config (path, YAML text or dict), apply ``overrides`` and validate.

    ``overrides``: ``{"train.max_steps": 100}`` or ``["train.max_steps=100"]``.
    A ``model.preset`` key (``paper`` / ``cpu``) starts from that preset.
    Returns ``{"model": CapsulesConfig, "data": dict, "train": TrainConfig}``.
    """
    from canocaps.train import TrainConfig

    if isinstance(config, Mapping):
        raw = dict(config)
    else:
        p = Path(config)
        if not p.is_file():
            raise CanocapsInputError(f"{p}: run config not found")
        raw = load_yaml_mapping(read_text(p, "run config"), "run config", source=str(p))
    if not isinstance(raw, dict):
        raise CanocapsInputError("run config: expected a mapping with model/data/train sections")
    unknown = sorted(set(raw) - {"model", "data", "train"})
    if unknown:
        raise CanocapsInputError(f"run config: unknown section(s) {', '.join(unknown)}")
    raw = {k: dict(raw.get(k) or {}) for k in ("model", "data", "train")}
    for key, value in _parse_overrides(overrides).items():
        _set_dotted(raw, key, value)
    model_raw = dict(raw["model"])
    preset = model_raw.pop("preset", None)
    model = CapsulesConfig.preset(preset, **model_raw) if preset else CapsulesConfig.from_dict(model_raw)
    data = {**DEFAULT_DATA, **raw["data"]}
    data["pairs"] = {**DEFAULT_DATA["pairs"], **dict(raw["data"].get("pairs") or {})}
    unknown = sorted(set(data) - set(DEFAULT_DATA))
    if unknown:
        raise CanocapsInputError(f"run config: unknown data key(s) {', '.join(unknown)}")
    if int(data["num_points"]) < model.num_capsules:
        raise CanocapsInputError("run config: data.num_points must be >= model.num_capsules")
    return {"model": model, "data": data, "train": TrainConfig.from_dict(raw["train"])}


def _run_config_dict(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {"model": cfg["model"].to_dict(), "data": dict(cfg["data"]), "train": cfg["train"].to_dict()}


def build_datasets(data: Mapping[str, Any], splits: Sequence[str] = ("train_split", "val_split")) -> list[Any]:
    """Datasets for the requested ``data`` section splits (``None`` where a split is null).

    ``data.name`` may be a list of dataset names: each split is then their concatenation
    (e.g. ``[procedural, realmesh]``; labels are only meaningful within one source). A name
    listed k times is seen k times as often in training; evaluation splits use it once.

    ``data.options`` go to every split. The evaluation splits (all but ``train_split``)
    select their points with ``seed`` 0 unless the options set one, so every validation
    pass scores the same inputs and ``best.pt`` is chosen on a fixed set.
    """
    from torch.utils.data import ConcatDataset

    from canocaps.data import build_dataset

    names = data["name"] if isinstance(data["name"], (list, tuple)) else [data["name"]]
    out = []
    for key in splits:
        split = data.get(key)
        options = dict(data.get("options") or {})
        if key != "train_split":
            options.setdefault("seed", 0)
        if split is None:
            out.append(None)
            continue
        # a name listed twice weighs that source double in training; evaluation splits take each once
        use = names if key == "train_split" else list(dict.fromkeys(names))
        parts = [build_dataset(name, split, int(data["num_points"]), **options) for name in use]
        out.append(parts[0] if len(parts) == 1 else ConcatDataset(parts))
    return out


def run_training(config_path_or_dict: str | os.PathLike | Mapping[str, Any], out_dir: str | os.PathLike,
                 resume: bool = False, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                 callbacks: Sequence[Any] = (), force: bool = False) -> Any:
    """Train Canonical Capsules as described by a run config; returns the trainer's ``FitResult``.

    Under ``torchrun`` every rank calls it and rank 0 writes the files; end the worker
    with :func:`canocaps.train.distributed.exit_worker` (``canocaps train`` does).
    ``out_dir`` receives the trainer's files (``config.yaml``, ``metrics.csv``,
    ``last.pt``, ``best.pt``), ``run.yaml`` (the full resolved run config) and, at the
    end, ``model.pt`` (standalone weights of the best checkpoint when there is one,
    else the last). ``resume=True`` continues from ``out_dir/last.pt`` with the run
    config stored in ``out_dir/run.yaml`` (``config_path_or_dict`` may then be None).
    The run folder follows the one policy of :func:`canocaps.train.runs.prepare_run`: a
    folder holding a run is refused unless ``resume`` or ``force`` (restart).
    """
    from canocaps.train import Trainer, seed_everything
    from canocaps.train.distributed import barrier
    from canocaps.train.runs import prepare_run

    out = Path(out_dir)
    run_yaml = out / "run.yaml"
    if config_path_or_dict is None:
        if not resume:
            raise CanocapsInputError("run_training: a run config is needed (or resume=True)")
        if not run_yaml.is_file():
            raise CanocapsInputError(f"{out}: no run.yaml to resume from")
    cfg = load_run_config(config_path_or_dict if config_path_or_dict is not None else run_yaml, overrides)
    trainer = Trainer(cfg["train"], callbacks=tuple(callbacks), out_dir=out)
    # the one run-folder policy; under torchrun, rank 0 alone writes the run's files
    resume = prepare_run(out, _run_config_dict(cfg), spec_name="run.yaml", resume=resume, force=force,
                         write=trainer.is_main_process)

    seed_everything(cfg["train"].seed)  # before the model is built: same seed, same initial weights
    train_ds, val_ds = build_datasets(cfg["data"])
    module = CapsulesTrainModule(cfg["model"], cfg["data"]["pairs"])
    result = trainer.fit(module, train_ds, val_ds, resume=resume)
    if trainer.is_main_process:
        best = out / "best.pt"
        export_weights(best if best.is_file() else out / "last.pt", out / "model.pt", force=True)
    barrier()  # model.pt is written before any rank goes on
    return result


def export_weights(checkpoint: str | os.PathLike, out_path: str | os.PathLike, force: bool = False,
                   model_config: CapsulesConfig | None = None, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the network of a trainer checkpoint as a standalone weights file.

    The architecture comes from ``model_config`` or from ``run.yaml`` beside the
    checkpoint. The result loads with :meth:`CanonicalCapsules.load`.
    """
    from canocaps.train.checkpoint import read_checkpoint

    ckpt = Path(checkpoint)
    if model_config is None:
        run_yaml = ckpt.parent / "run.yaml"
        if not run_yaml.is_file():
            raise CanocapsWeightsError(f"{ckpt}: no run.yaml beside it to read the model config from")
        run = load_yaml_mapping(read_text(run_yaml, "run config"), "run config", source=str(run_yaml))
        model_config = CapsulesConfig.from_dict(run.get("model"))
    state = read_checkpoint(ckpt)
    weights = state.get("module", state)
    if not isinstance(weights, dict):
        raise CanocapsWeightsError(f"{ckpt}: no Canonical Capsules weights inside")
    net_state = {k[len("net."):]: v for k, v in weights.items()
                 if isinstance(k, str) and k.startswith("net.") and isinstance(v, torch.Tensor)}
    if not net_state:
        raise CanocapsWeightsError(f"{ckpt}: no Canonical Capsules weights inside")
    net = CanonicalCapsules(model_config)
    try:
        net.load_state_dict(net_state)
    except RuntimeError as exc:
        raise CanocapsWeightsError(f"{ckpt}: weights do not match the model config "
                                   f"({str(exc).strip().splitlines()[0]})") from None
    trainer_state = state.get("trainer", {}) if isinstance(state.get("trainer"), dict) else {}
    meta = {"source": str(ckpt), **{k: trainer_state[k] for k in ("global_step", "epoch") if k in trainer_state},
            **dict(metadata or {})}
    net.save(out_path, force=force, metadata=meta)
    return Path(out_path)
