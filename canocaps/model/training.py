"""Training the Canonical Capsules network with the shared :class:`canocaps.train.Trainer`.

:class:`CapsulesTrainModule` follows the trainer protocol (CONTRIBUTING.md): every
batch of shapes is seen twice under two random SE(3) transforms drawn on the batch's
device by :class:`canocaps.data.pairs.SE3PairSampler` (known relative pose T12), the
two views go through the network as one 2B batch, and the six losses are weighted by
``config.loss_weights``. Validation reports the losses and the metrics of
:func:`pair_metrics` with pairs drawn from a generator seeded by the dataset indices
(the same pairs at every evaluation).

:func:`run_training` builds data + module + trainer from a run config with ``model:``,
``data:`` and ``train:`` sections (see ``canocaps/train/configs/capsules_*.yaml``);
:func:`export_weights` turns a trainer checkpoint into a standalone weights file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import yaml
from torch import Tensor, nn

from canocaps._yaml import load_yaml
from canocaps.errors import CanocapsInputError, CanocapsWeightsError
from canocaps.model import losses as L
from canocaps.model.config import CapsulesConfig
from canocaps.model.network import CanonicalCapsules
from canocaps.model.results import CapsulesOutput

__all__ = [
    "CapsulesTrainModule", "compute_losses", "build_datasets", "pair_metrics", "load_run_config", "run_training",
    "export_weights", "evaluate", "canonical_agreement", "baseline_pair_metrics", "DEFAULT_DATA",
]

#: defaults of the ``data:`` section of a run config
DEFAULT_DATA: dict[str, Any] = {
    "name": "procedural",
    "num_points": 1024,
    "train_split": "train",
    "val_split": "val",
    "test_split": "test",
    "options": {},  # extra keyword arguments of canocaps.data.build_dataset
    "pairs": {"max_angle_deg": 180.0, "max_translation": 0.2, "noise_std": 0.0},
}


def _sampler(pairs: Mapping[str, Any] | None) -> Any:
    from canocaps.data.pairs import SE3PairSampler

    return SE3PairSampler(**dict(pairs or DEFAULT_DATA["pairs"]))


def _split(out: CapsulesOutput, b: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    keys = ("keypoints", "descriptors", "R", "t")
    return ({k: getattr(out, k)[:b] for k in keys}, {k: getattr(out, k)[b:] for k in keys})


def compute_losses(out: CapsulesOutput, points: Tensor, R12: Tensor, t12: Tensor,
                   reconstruction_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """The six losses of a 2B-batch forward ``out`` of ``points`` = cat(view1, view2) (2B, N, 3).

    ``reconstruction_fn`` replaces :func:`losses.reconstruction_loss` (benchmarks).
    """
    b = points.shape[0] // 2
    v1, v2 = _split(out, b)
    assert out.decoded is not None
    recon = reconstruction_fn or L.reconstruction_loss
    losses = {
        "reconstruction": recon(out.canonical_points, out.decoded),
        "localization": L.localization_loss(points, out.weights, out.keypoints),
        "equilibrium": L.equilibrium_loss(out.mass),
        "equivariance": L.equivariance_loss(v1["keypoints"], v2["keypoints"], R12, t12),
        "invariance": L.invariance_loss(v1["descriptors"], v2["descriptors"]),
        "canonical": L.canonical_loss(out.keypoints, out.canonical_keypoints, out.R, out.t),
    }
    if out.moments is not None:
        mo = out.moments
        v1m, v2m = (type(mo)(*(x[:b] for x in mo)), type(mo)(*(x[b:] for x in mo)))
        losses["frame_stability"] = L.frame_stability_loss(v1m, v2m, points[:b], points[b:], R12)
        losses["frame_conditioning"] = L.frame_conditioning_loss(mo.eigenvalues, mo.skew)
    return losses


@torch.no_grad()
def pair_metrics(out: CapsulesOutput, points: Tensor, R12: Tensor, t12: Tensor) -> dict[str, Tensor]:
    """Per-pair quality figures of a 2B-batch forward (each a (B,) tensor).

    - ``equivariance_deg``: angle (degrees) between the canonical frames of the two
      views once the known relative rotation is accounted for,
      ``RRE(R2 @ R12, R1)`` (0 for a perfectly consistent canonicaliser).
    - ``keypoint_error``: mean over capsules of ``||R12 mu1_k + t12 - mu2_k||``
      divided by the shape radius (max distance of view-1 points from their centroid).
    - ``keypoint_equivariance_deg``: the same error as an angle: the rotation (degrees)
      of the rigid fit (uniform Procrustes) of the moved view-1 keypoints
      ``R12 mu1 + t12`` onto view 2's keypoints (0 when they agree up to translation).
    - ``invariance_error``: ``||beta1 - beta2||_F / (0.5 (||beta1||_F + ||beta2||_F))``.
    - ``chamfer``: reconstruction Chamfer of view 1 (squared, mean per direction,
      directions summed), per shape.
    - ``canonical_agreement``: :func:`canonical_agreement` of the two canonical clouds
      (radius units; symmetry-blind where ``equivariance_deg`` is not).
    """
    from canocaps.geometry import rotation_error_deg, weighted_procrustes
    from canocaps.ops import chamfer

    b = points.shape[0] // 2
    v1, v2 = _split(out, b)
    rre = rotation_error_deg(v2["R"] @ R12, v1["R"])
    moved = v1["keypoints"] @ R12.transpose(-1, -2) + t12.unsqueeze(1)
    p1 = points[:b]
    radius = _radius(p1).clamp_min(1e-12)
    kp = (moved - v2["keypoints"]).norm(dim=-1).mean(dim=1) / radius
    R_fit, _ = weighted_procrustes(moved, v2["keypoints"])
    kp_deg = rotation_error_deg(R_fit, torch.eye(3, dtype=R_fit.dtype, device=R_fit.device).expand_as(R_fit))
    d1, d2 = v1["descriptors"].flatten(1), v2["descriptors"].flatten(1)
    inv = (d1 - d2).norm(dim=1) / (0.5 * (d1.norm(dim=1) + d2.norm(dim=1))).clamp_min(1e-12)
    assert out.decoded is not None
    cd, _ = chamfer(out.canonical_points[:b], out.decoded[:b], point_reduction="mean", batch_reduction=None,
                    squared=True)
    agree = canonical_agreement(out.canonical_points[:b], out.canonical_points[b:], radius)
    return {"equivariance_deg": rre, "keypoint_error": kp, "keypoint_equivariance_deg": kp_deg,
            "invariance_error": inv, "chamfer": cd, "canonical_agreement": agree}


class CapsulesTrainModule(nn.Module):
    """Trainer module wrapping :class:`CanonicalCapsules` (as ``self.net``).

    Args:
        config: the network's :class:`CapsulesConfig`.
        pairs: keyword arguments of ``SE3PairSampler`` (rotation limit in degrees,
            translation bound, noise); default full SO(3) and U(-0.2, 0.2)^3.
    Batches are dicts with ``"points"`` (B, N, 3) and optionally ``"points_b"`` (an
    independent sample of the same surfaces, used for view 2) and ``"index"``.
    """

    def __init__(self, config: CapsulesConfig | None = None, pairs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.net = CanonicalCapsules(config)
        self.pairs = dict(pairs or DEFAULT_DATA["pairs"])
        self.sampler = _sampler(self.pairs)
        #: Chamfer used by the reconstruction loss (swappable for benchmarks)
        self.reconstruction_fn: Callable[[Tensor, Tensor], Tensor] | None = None

    @property
    def config(self) -> CapsulesConfig:
        return self.net.config

    def _views(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        pts = batch["points"] if isinstance(batch, Mapping) else batch
        if not isinstance(pts, Tensor) or pts.ndim != 3 or pts.shape[-1] != 3:
            raise CanocapsInputError("training batch: 'points' must be a (B, N, 3) tensor")
        p = next(self.net.parameters())
        pts = pts.to(device=p.device, dtype=p.dtype)
        pts_b = batch.get("points_b") if isinstance(batch, Mapping) else None
        if pts_b is not None:
            pts_b = pts_b.to(device=p.device, dtype=p.dtype)
        pair = self.sampler(pts, pts_b, generator=generator)
        T12 = pair.T12.to(p.dtype)
        both = torch.cat([pair.view1, pair.view2], dim=0).to(p.dtype)
        return both, T12[:, :3, :3], T12[:, :3, 3]

    def _weighted(self, losses: dict[str, Tensor]) -> Tensor:
        w = self.config.loss_weights
        return sum(getattr(w, name) * value for name, value in losses.items())  # type: ignore[return-value]

    def training_step(self, batch: Mapping[str, Any], step: int) -> dict[str, Tensor]:
        """One step: two views, the six losses, ``"loss"`` = their weighted sum."""
        points, R12, t12 = self._views(batch)
        out = self.net(points)
        losses = compute_losses(out, points, R12, t12, self.reconstruction_fn)
        return {"loss": self._weighted(losses), **losses}

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor | float]:
        """Losses and :func:`pair_metrics` (batch means) on deterministic pairs."""
        index = batch.get("index") if isinstance(batch, Mapping) else None
        seed = int(torch.as_tensor(index).flatten()[0]) if index is not None else 0
        gen = torch.Generator().manual_seed(1_000_003 + seed)  # CPU: same pairs on every device
        points, R12, t12 = self._views(batch, gen)
        out = self.net(points)
        losses = compute_losses(out, points, R12, t12)
        metrics = {k: v.mean() for k, v in pair_metrics(out, points, R12, t12).items()}
        return {"loss": self._weighted(losses), **losses, **metrics}


def canonical_agreement(canon1: Tensor, canon2: Tensor, radius: Tensor) -> Tensor:
    """How well two canonicalised clouds of one shape coincide, blind to the shape's symmetries.

    Args:
        canon1: ``(B, N, 3)`` and canon2: ``(B, M, 3)``: the two views, each in its own
            canonical frame.
        radius: ``(B,)`` shape radius.
    Returns:
        ``(B,)``: Euclidean (not squared) Chamfer, mean nearest-neighbour distance per
        direction, the two directions averaged, divided by ``radius``. A frame that
        differs from the other only by a symmetry of the shape scores as well as the
        same frame; the floor is the sampling gap between the two views.
    """
    from canocaps.ops import chamfer

    cd, _ = chamfer(canon1, canon2, point_reduction="mean", batch_reduction=None, squared=False)
    return 0.5 * cd / radius.clamp_min(1e-12)


def _radius(points: Tensor) -> Tensor:
    return (points - points.mean(dim=1, keepdim=True)).norm(dim=-1).amax(dim=1)


@torch.no_grad()
def baseline_pair_metrics(points: Tensor, R12: Tensor, t12: Tensor) -> dict[str, Tensor]:
    """Reference figures for the pairs ``points`` = cat(view1, view2) (2B, N, 3), each (B,).

    - ``pca_equivariance_deg`` / ``pca_canonical_agreement``: the same two measures as
      :func:`pair_metrics` for the PCA frame (:func:`canocaps.geometry.pca_frame`).
    - ``floor_canonical_agreement``: :func:`canonical_agreement` of view 1 and view 2
      brought back by the true pose: the best any canonicaliser can score.
    """
    from canocaps.geometry import pca_frame, rotation_error_deg

    b = points.shape[0] // 2
    p1, p2 = points[:b], points[b:]
    radius = _radius(p1)
    R, t = pca_frame(points)
    canon = points @ R.transpose(-1, -2) + t.unsqueeze(1)
    back = (p2 - t12.unsqueeze(1)) @ R12  # view2 = view1 R12^T + t12
    return {"pca_equivariance_deg": rotation_error_deg(R[b:] @ R12, R[:b]),
            "pca_canonical_agreement": canonical_agreement(canon[:b], canon[b:], radius),
            "floor_canonical_agreement": canonical_agreement(p1, back, radius)}


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
    per_pair: dict[str, list[Tensor]] = {}
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
        try:
            raw = load_yaml(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CanocapsInputError(f"{p}: not valid YAML ({type(exc).__name__})") from None
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
    (e.g. ``[procedural, realmesh]``; labels are only meaningful within one source).

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
        parts = [build_dataset(name, split, int(data["num_points"]), **options) for name in names]
        out.append(parts[0] if len(parts) == 1 else ConcatDataset(parts))
    return out


def run_training(config_path_or_dict: str | os.PathLike | Mapping[str, Any], out_dir: str | os.PathLike,
                 resume: bool = False, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                 callbacks: Sequence[Any] = ()) -> Any:
    """Train Canonical Capsules as described by a run config; returns the trainer's ``FitResult``.

    Under ``torchrun`` every rank calls it and rank 0 writes the files; end the worker
    with :func:`canocaps.train.distributed.exit_worker` (``canocaps train`` does).
    ``out_dir`` receives the trainer's files (``config.yaml``, ``metrics.csv``,
    ``last.pt``, ``best.pt``), ``run.yaml`` (the full resolved run config) and, at the
    end, ``model.pt`` (standalone weights of the best checkpoint when there is one,
    else the last). ``resume=True`` continues from ``out_dir/last.pt`` with the run
    config stored in ``out_dir/run.yaml`` (``config_path_or_dict`` may then be None).
    """
    from canocaps._files import atomic_write_text
    from canocaps.train import Trainer
    from canocaps.train.distributed import barrier

    out = Path(out_dir)
    run_yaml = out / "run.yaml"
    if resume:
        if not (out / "last.pt").is_file():
            raise CanocapsInputError(f"{out}: nothing to resume (no last.pt)")
        source = config_path_or_dict if config_path_or_dict is not None else run_yaml
        if config_path_or_dict is None and not run_yaml.is_file():
            raise CanocapsInputError(f"{out}: no run.yaml to resume from")
        cfg = load_run_config(source, overrides)
    else:
        if config_path_or_dict is None:
            raise CanocapsInputError("run_training: a run config is needed (or resume=True)")
        if (out / "last.pt").exists():
            raise CanocapsInputError(f"{out}: holds a run already (resume it, or choose another --out)")
        cfg = load_run_config(config_path_or_dict, overrides)
    trainer = Trainer(cfg["train"], callbacks=tuple(callbacks), out_dir=out)
    out.mkdir(parents=True, exist_ok=True)
    if trainer.is_main_process:  # under torchrun, rank 0 alone writes the run's files
        atomic_write_text(run_yaml, yaml.safe_dump(_run_config_dict(cfg), sort_keys=False), force=True)

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
        model_config = CapsulesConfig.from_dict((load_yaml(run_yaml.read_text()) or {}).get("model"))
    state = read_checkpoint(ckpt)
    weights = state.get("module", state)
    net_state = {k[len("net."):]: v for k, v in weights.items() if isinstance(k, str) and k.startswith("net.")}
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
