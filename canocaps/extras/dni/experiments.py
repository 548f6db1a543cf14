"""The four checkable claims of Czarnecki et al. (2017), each a function returning a JSON-able dict.

1. :func:`run_lstsq` — linear regression trained through a linear cDNI converges to the
   least-squares optimum (parameter distance and loss gap to the closed form).
2. :func:`run_deeplinear` — a deep linear network ``x W1 ... WL`` (MSE) trained with linear
   SGs reaches the global optimum (loss -> 0) on realisable data.
3. :func:`run_representations` — with log-loss, linear SGs learn different hidden
   representations than backprop (linear CKA; backprop vs backprop from another seed
   is the control).
4. :func:`run_classify` — accuracy of backprop, DNI, cDNI, DFA, FA and Kickback on digits /
   MNIST, selected on a validation split (10 % of the training split), reported on test;
   ``delay`` > 0 adds pipelined update-decoupled runs (:mod:`.decoupled`).

Every run is a :class:`DNIModule` trained by :class:`canocaps.train.Trainer` (through
:func:`canocaps.extras.dni.runs.fit_run`); ``out_dir`` (optional) holds one resumable run
folder per run. Experiments run on one device (default CPU: the models are tiny).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from canocaps.errors import CanocapsInputError
from canocaps.extras.dni.analysis import least_squares, linear_cka, mse
from canocaps.extras.dni.data import RepeatedBatch, load_dataset, regression_data
from canocaps.extras.dni.decoupled import MODES, DNIModule, cnn_layers, mlp_layers
from canocaps.extras.dni.runs import fit_run
from canocaps.extras.dni.synthetic import LinearSG
from canocaps.train import Callback, TrainConfig

__all__ = ["LstsqConfig", "DeepLinearConfig", "RepresentationsConfig", "ClassifyConfig",
           "run_lstsq", "run_deeplinear", "run_representations", "run_classify", "effective_rank"]


def _run_dir(out_dir: Path | None, *parts: str) -> Path | None:
    return None if out_dir is None else Path(out_dir).joinpath("runs", *parts)


def _full_batch_loader(x: torch.Tensor, y: torch.Tensor, steps: int) -> DataLoader:
    return DataLoader(RepeatedBatch({"x": x, "y": y}, steps), batch_size=None, shuffle=False)


def _check_modes(modes: Sequence[str], allowed: Sequence[str] = MODES) -> list[str]:
    modes = list(modes)
    bad = [m for m in modes if m not in allowed]
    if bad or not modes:
        raise CanocapsInputError(f"modes must be a non-empty list from {', '.join(allowed)}; got {modes}")
    return modes


def _check_steps(steps: int, lr: float) -> None:
    if steps < 1:
        raise CanocapsInputError(f"--steps must be >= 1, got {steps}")
    if not lr > 0:
        raise CanocapsInputError(f"--lr must be > 0, got {lr}")


# --------------------------------------------------------------------------------------
# 1. linear regression with a linear cDNI
@dataclass
class LstsqConfig:
    """Linear regression ``h = x W + b``, loss ``0.5 mean_n ||h_n - y_n||^2``, full-batch SGD.

    The SG sits on the prediction ``h``: ``SG(h, y) = h A + y B + C`` (cDNI) or ``h A + C`` (DNI).
    """

    n: int = 256
    d: int = 10
    k: int = 3
    noise: float = 0.5
    bias: float = 1.0
    steps: int = 3000
    lr: float = 0.01
    modes: list[str] = field(default_factory=lambda: ["backprop", "cdni", "dni"])
    seed: int = 0
    record_every: int = 10
    device: str = "cpu"
    delay: int = 0


def run_lstsq(cfg: LstsqConfig, out_dir: Path | None = None, force: bool = False,
              progress: bool = False) -> dict[str, Any]:
    """Claim 1. Returns per mode: final loss, optimum loss, loss gap, parameter distance
    (absolute, relative) to the closed form, the cDNI's learned ``A, B, C`` vs the exact
    gradient map (``A = I, B = -I, C = 0``), and curves."""
    modes = _check_modes(cfg.modes, ("backprop", "dni", "cdni"))
    _check_steps(cfg.steps, cfg.lr)
    x, y = regression_data(cfg.n, cfg.d, cfg.k, noise=cfg.noise, bias=cfg.bias, seed=cfg.seed)
    w_opt, b_opt = least_squares(x, y)
    opt_loss = mse(x, y, w_opt, b_opt)
    theta_opt = torch.cat([w_opt, b_opt[None]])
    results: dict[str, Any] = {}
    for mode in modes:
        torch.manual_seed(cfg.seed + 1)
        module = DNIModule([nn.Linear(cfg.d, cfg.k), nn.Identity()], x[:2], mode=mode, loss="mse", sg="linear",
                           target="bootstrap" if cfg.delay and mode != "backprop" else "true",
                           delay=cfg.delay if mode != "backprop" else 0)
        lin: nn.Linear = module.blocks[0]

        def probe(m: nn.Module, lin: nn.Linear = lin) -> dict[str, float]:
            theta = torch.cat([lin.weight.T, lin.bias[None]]).detach().double().cpu()
            return {"loss_gap": mse(x, y, lin.weight.T.cpu(), lin.bias.cpu()) - opt_loss,
                    "param_dist": float((theta - theta_opt).norm())}

        tcfg = TrainConfig(epochs=1, max_steps=cfg.steps, lr=cfg.lr, optimizer="sgd", seed=cfg.seed,
                           device=cfg.device, monitor=None, log_every=cfg.record_every,
                           ckpt_every_steps=max(1, cfg.steps // 5))
        t0 = time.perf_counter()
        rec = fit_run(module, _full_batch_loader(x, y, cfg.steps), tcfg, run_dir=_run_dir(out_dir, "lstsq", mode),
                      spec={"experiment": "lstsq", "mode": mode, **asdict(cfg)}, force=force,
                      every=cfg.record_every, probe=probe, progress=progress, desc=f"lstsq {mode}")
        module.cpu()
        final = probe(module)
        res = {"final_loss": final["loss_gap"] + opt_loss, "optimum_loss": opt_loss,
               "loss_gap": final["loss_gap"], "param_dist": final["param_dist"],
               "param_dist_rel": final["param_dist"] / float(theta_opt.norm()),
               "seconds": time.perf_counter() - t0,
               "curve": {"step": [r["step"] for r in rec.rows], "loss_gap": [r["loss_gap"] for r in rec.rows],
                         "param_dist": [r["param_dist"] for r in rec.rows]}}
        if mode in ("dni", "cdni"):
            sg: LinearSG = module.sgs[0]
            a, bm, c = (t.detach().double() for t in sg.matrices())
            res["sg_A_minus_I"] = float((a - torch.eye(cfg.k, dtype=torch.float64)).norm())
            res["sg_C"] = float(c.norm())
            if mode == "cdni":
                res["sg_B_plus_I"] = float((bm + torch.eye(cfg.k, dtype=torch.float64)).norm())
        results[mode] = res
    return {"experiment": "lstsq", "config": asdict(cfg), "optimum_loss": opt_loss, "results": results}


# --------------------------------------------------------------------------------------
# 2. deep linear network with linear SGs
@dataclass
class DeepLinearConfig:
    """Deep linear net ``x W1 W2 ... W_depth`` (no biases), realisable targets ``y = x M``,
    loss ``0.5 mean_n ||out_n - y_n||^2``, full-batch SGD, one block per layer, linear SGs."""

    n: int = 256
    d: int = 8
    hidden: int = 8
    k: int = 4
    depth: int = 2
    steps: int = 4000
    lr: float = 0.1
    modes: list[str] = field(default_factory=lambda: ["backprop", "dni", "cdni"])
    target: str = "true"
    seed: int = 0
    record_every: int = 10
    device: str = "cpu"
    delay: int = 0


def run_deeplinear(cfg: DeepLinearConfig, out_dir: Path | None = None, force: bool = False,
                   progress: bool = False) -> dict[str, Any]:
    """Claim 2. Returns per mode the final loss (float64, full data), the global optimum
    (closed-form least squares, ~0 on realisable data), and curves."""
    modes = _check_modes(cfg.modes, ("backprop", "dni", "cdni", "dfa", "fa", "kickback"))
    _check_steps(cfg.steps, cfg.lr)
    if cfg.delay and (cfg.target != "bootstrap" or set(modes) - {"backprop", "dni", "cdni"}):
        raise CanocapsInputError("--delay needs --target bootstrap and modes among backprop, dni, cdni")
    if cfg.depth < 2:
        raise CanocapsInputError(f"--depth must be >= 2, got {cfg.depth}")
    x, y = regression_data(cfg.n, cfg.d, cfg.k, noise=0.0, seed=cfg.seed)
    w_opt, b_opt = least_squares(x, y, bias=False)
    opt_loss = mse(x, y, w_opt, b_opt)
    sizes = [cfg.d] + [cfg.hidden] * (cfg.depth - 1) + [cfg.k]
    results: dict[str, Any] = {}
    for mode in modes:
        torch.manual_seed(cfg.seed + 1)
        module = DNIModule(mlp_layers(sizes, activation="linear", bias=False), x[:2], mode=mode, loss="mse",
                           sg="linear", target=cfg.target, delay=cfg.delay if mode != "backprop" else 0)

        def probe(m: nn.Module) -> dict[str, float]:
            out = m(x.to(next(m.parameters()).device)).detach().double().cpu()
            return {"full_loss": float(0.5 * (out - y.double()).pow(2).sum(1).mean())}

        tcfg = TrainConfig(epochs=1, max_steps=cfg.steps, lr=cfg.lr, optimizer="sgd", seed=cfg.seed,
                           device=cfg.device, monitor=None, log_every=cfg.record_every,
                           ckpt_every_steps=max(1, cfg.steps // 5))
        t0 = time.perf_counter()
        rec = fit_run(module, _full_batch_loader(x, y, cfg.steps), tcfg,
                      run_dir=_run_dir(out_dir, "deeplinear", mode),
                      spec={"experiment": "deeplinear", "mode": mode, **asdict(cfg)}, force=force,
                      every=cfg.record_every, probe=probe, progress=progress, desc=f"deeplinear {mode}")
        module.cpu()
        final = probe(module)["full_loss"]
        results[mode] = {"final_loss": final, "optimum_loss": opt_loss, "seconds": time.perf_counter() - t0,
                         "final_sg_cos": rec.rows[-1].get("sg_cos") if rec.rows else None,
                         "curve": {"step": [r["step"] for r in rec.rows],
                                   "loss": [r["full_loss"] for r in rec.rows]}}
    return {"experiment": "deeplinear", "config": asdict(cfg), "optimum_loss": opt_loss, "results": results}


# --------------------------------------------------------------------------------------
# shared by 3 and 4: one classifier run
class _TestEval(Callback):
    """Evaluates the test set after every validation (reported, never used for selection);
    its rows are checkpointed with the run."""

    def __init__(self, test_ds) -> None:
        self.test_ds, self.rows = test_ds, []

    def on_eval_end(self, trainer, module, metrics):
        m = trainer.evaluate(module, self.test_ds)
        self.rows.append({"epoch": trainer.epoch, **{k.replace("val/", "test/"): v for k, v in m.items()}})

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", []))


def _train_classifier(mode: str, seed: int, train_ds, test_ds, arch: str, hidden: Sequence[int], activation: str,
                      sg: str, sg_hidden: int, sg_hidden_layers: int, target: str, epochs: int, batch_size: int,
                      lr: float, optimizer: str, device: str, run_dir: Path | None, spec: dict[str, Any],
                      force: bool, progress: bool, val_ds=None, delay: int = 0,
                      callbacks: tuple[Callback, ...] = ()) -> tuple[DNIModule, dict[str, Any]]:
    """Train one classifier. With ``val_ds`` the trainer validates (and selects) on it and the
    test set is only evaluated alongside, for the report: ``selected_test_acc`` is the test
    accuracy at the epoch of best validation accuracy. Without it (the representation runs)
    the test set is the validation set, as before."""
    num_classes = test_ds.num_classes if len(test_ds) else 10
    num_classes = max(num_classes, train_ds.num_classes)
    x0 = train_ds.x[:2]
    torch.manual_seed(seed)
    if arch == "mlp":
        blocks = mlp_layers([x0[0].numel(), *hidden, num_classes], activation=activation)
    elif arch == "cnn":
        if x0.dim() != 4:
            raise CanocapsInputError("--arch cnn needs image inputs (B, 1, S, S)")
        blocks = cnn_layers(x0.shape[1], x0.shape[-1], num_classes)
    else:
        raise CanocapsInputError(f"unknown arch {arch!r} (expected mlp or cnn)")
    module = DNIModule(blocks, x0, mode=mode, loss="ce", sg=sg, target="bootstrap" if delay else target,
                       num_classes=num_classes, sg_hidden=sg_hidden, sg_hidden_layers=sg_hidden_layers,
                       feedback_seed=seed, delay=delay)
    tcfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, device=device,
                       monitor="val/acc", monitor_mode="max", log_every=10)
    t0 = time.perf_counter()
    probe = _TestEval(test_ds) if val_ds is not None else None
    rec = fit_run(module, train_ds, tcfg, val_data=test_ds if val_ds is None else val_ds, run_dir=run_dir, spec=spec,
                  force=force, every=10, progress=progress, desc=f"{mode}{f' delay {delay}' if delay else ''} seed {seed}",
                  callbacks=((probe,) if probe else ()) + tuple(callbacks))
    module.cpu().eval()
    evals = rec.evals
    if probe is None:
        res = {"test_acc": evals[-1]["val/acc"] if evals else float("nan"),
               "best_test_acc": max(e["val/acc"] for e in evals) if evals else float("nan"),
               "test_loss": evals[-1]["val/loss"] if evals else float("nan"),
               "curve": {"epoch": [e["epoch"] for e in evals], "test_acc": [e["val/acc"] for e in evals]}}
    else:
        tests = probe.rows
        best = int(np.argmax([e["val/acc"] for e in evals])) if evals else 0
        res = {"test_acc": tests[-1]["test/acc"] if tests else float("nan"),
               "selected_test_acc": tests[best]["test/acc"] if tests else float("nan"),
               "selected_epoch": evals[best]["epoch"] if evals else None,
               "best_val_acc": evals[best]["val/acc"] if evals else float("nan"),
               "test_loss": tests[-1]["test/loss"] if tests else float("nan"),
               "curve": {"epoch": [e["epoch"] for e in evals], "val_acc": [e["val/acc"] for e in evals],
                         "test_acc": [t["test/acc"] for t in tests]}}
    res.update({"train_acc_last": rec.rows[-1].get("acc") if rec.rows else None,
                "seconds": time.perf_counter() - t0})
    if rec.rows and "sg_cos" in rec.rows[-1]:
        res["sg_cos_last"] = rec.rows[-1]["sg_cos"]
    return module, res


# --------------------------------------------------------------------------------------
# 3. representations: CKA between backprop and SG-trained layers
@dataclass
class RepresentationsConfig:
    """Deep (by default linear) MLP with log-loss on digits/MNIST; backprop vs linear-SG
    training, one run of each per seed (an SG run starts from its seed's backprop weights);
    CKA of every hidden layer on the test set, at the end of training and at *matched
    accuracy* (the backprop epoch whose test accuracy is closest to the SG run's final one)."""

    data: str = "digits"
    mnist_dir: str | None = None
    hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    activation: str = "linear"
    sg_mode: str = "dni"
    sg: str = "linear"
    target: str = "true"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    device: str = "cpu"


def effective_rank(h: torch.Tensor) -> float:
    """Participation ratio ``(sum s_i^2)^2 / sum s_i^4`` of the centred features ``(N, D)``
    (singular values ``s_i``): between 1 (rank one) and D (isotropic)."""
    h = h.double().flatten(1)
    s2 = torch.linalg.svdvals(h - h.mean(0)).pow(2)
    return float(s2.sum() ** 2 / s2.pow(2).sum()) if s2.sum() > 0 else 0.0


class _FeatureSnapshots(Callback):
    """After every validation, the hidden features ``(N, D)`` of ``x`` per layer and the
    validation accuracy (checkpointed, so a reloaded run keeps them)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.feats, self.acc = x, [], []

    def on_eval_end(self, trainer, module, metrics):
        was = module.training
        module.eval()
        with torch.no_grad():
            self.feats.append([f.detach().float().cpu() for f in module.features(self.x.to(trainer.device))[:-1]])
        module.train(was)
        self.acc.append(float(metrics.get("val/acc", float("nan"))))

    def state_dict(self) -> dict[str, Any]:
        return {"feats": self.feats, "acc": self.acc}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.feats, self.acc = list(state.get("feats", [])), list(state.get("acc", []))


def _mean_std(rows: list[list[float]]) -> dict[str, list[float]]:
    a = np.asarray(rows, dtype=np.float64)
    return {"mean": a.mean(0).tolist(), "std": a.std(0).tolist(), "n": int(a.shape[0])}


def run_representations(cfg: RepresentationsConfig, out_dir: Path | None = None, force: bool = False,
                        progress: bool = False) -> dict[str, Any]:
    """Claim 3. Per run: accuracy and effective ranks. CKA per hidden layer, mean and std over
    seeds (pairs): ``bp/bp`` (control, seeds differ), ``bp/sg`` (same seed), ``sg/sg`` (seeds
    differ), at the end of training; and at matched accuracy: ``bp@matched/sg`` (same seed)
    against the control ``bp@matched/bp'@matched`` (seeds differ, both at that accuracy)."""
    if cfg.sg_mode not in ("dni", "cdni", "dfa", "fa", "kickback"):
        raise CanocapsInputError(f"--sg-mode must be dni, cdni, dfa, fa or kickback, got {cfg.sg_mode!r}")
    if len(cfg.seeds) < 2 or len(set(cfg.seeds)) != len(cfg.seeds):
        raise CanocapsInputError(f"representations needs at least two different seeds, got {cfg.seeds}")
    train_ds = load_dataset(cfg.data, "train", cfg.mnist_dir)
    test_ds = load_dataset(cfg.data, "test", cfg.mnist_dir)
    feats: dict[str, list[torch.Tensor]] = {}
    snaps: dict[int, _FeatureSnapshots] = {}
    runs: dict[str, Any] = {}
    for mode in ("backprop", cfg.sg_mode):
        for seed in cfg.seeds:
            name = f"{'bp' if mode == 'backprop' else 'sg'}{seed}"
            snap = _FeatureSnapshots(test_ds.x) if mode == "backprop" else None
            module, res = _train_classifier(
                mode, seed, train_ds, test_ds, "mlp", cfg.hidden, cfg.activation, cfg.sg, 256, 2, cfg.target,
                cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.device,
                _run_dir(out_dir, "representations", name),
                {"experiment": "representations", "mode": mode, "seed": seed, **asdict(cfg)}, force, progress,
                callbacks=(snap,) if snap else ())
            if snap is not None:
                snaps[seed] = snap
            with torch.no_grad():
                feats[name] = [f.detach() for f in module.features(test_ds.x)[:-1]]
            res["effective_rank"] = [effective_rank(f) for f in feats[name]]
            runs[name] = res
    pairs = [(a, b) for i, a in enumerate(cfg.seeds) for b in cfg.seeds[i + 1:]]

    def cka(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> list[float]:
        return [linear_cka(x, y) for x, y in zip(fa, fb)]

    def matched(seed: int, acc: float) -> tuple[int, float]:
        accs = snaps[seed].acc
        e = int(np.argmin([abs(a - acc) for a in accs]))
        return e, accs[e]

    final = {"bp/bp (control, seeds differ)": _mean_std([cka(feats[f"bp{a}"], feats[f"bp{b}"]) for a, b in pairs]),
             "bp/sg (same seed)": _mean_std([cka(feats[f"bp{s}"], feats[f"sg{s}"]) for s in cfg.seeds]),
             "sg/sg (seeds differ)": _mean_std([cka(feats[f"sg{a}"], feats[f"sg{b}"]) for a, b in pairs])}
    match_rows, control_rows, match_info = [], [], {}
    for s in cfg.seeds:
        target = runs[f"sg{s}"]["test_acc"]
        e, acc = matched(s, target)
        match_rows.append(cka(snaps[s].feats[e], feats[f"sg{s}"]))
        match_info[str(s)] = {"sg_acc": target, "bp_epoch": e + 1, "bp_acc": acc}
        for o in cfg.seeds:
            if o != s:
                eo, _ = matched(o, target)
                control_rows.append(cka(snaps[s].feats[e], snaps[o].feats[eo]))
    at_matched = {"bp@matched/bp'@matched (control, seeds differ)": _mean_std(control_rows),
                  "bp@matched/sg (same seed)": _mean_std(match_rows)}
    rank = {kind: _mean_std([runs[f"{kind}{s}"]["effective_rank"] for s in cfg.seeds]) for kind in ("bp", "sg")}
    rank["bp@matched"] = _mean_std([[effective_rank(f) for f in snaps[s].feats[match_info[str(s)]["bp_epoch"] - 1]]
                                    for s in cfg.seeds])
    acc = {kind: _mean_std([[runs[f"{kind}{s}"]["test_acc"]] for s in cfg.seeds]) for kind in ("bp", "sg")}
    return {"experiment": "representations", "config": asdict(cfg), "runs": runs, "cka": final,
            "cka_matched": at_matched, "matched": match_info, "effective_rank": rank, "accuracy": acc,
            "layers": [f"h{i + 1}" for i in range(len(cfg.hidden))]}


# --------------------------------------------------------------------------------------
# 4. classification accuracy
@dataclass
class ClassifyConfig:
    """Backprop vs DNI vs cDNI vs DFA vs FA vs Kickback on digits (or MNIST), one block per layer.

    Trained on 90 % of the training split, selected on the other 10 % (``val``), reported
    on test. ``delays`` (e.g. ``[1, 2]``) adds, for every SG mode in ``modes`` (dni / cdni),
    pipelined update-decoupled runs named ``cdni_delay1`` ... (bootstrapped SG targets)."""

    data: str = "digits"
    mnist_dir: str | None = None
    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    modes: list[str] = field(default_factory=lambda: ["backprop", "dni", "cdni", "dfa", "fa"])
    delays: list[int] = field(default_factory=list)
    sg: str = "mlp"
    sg_hidden: int = 256
    sg_hidden_layers: int = 1
    target: str = "true"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    device: str = "cpu"


def run_classify(cfg: ClassifyConfig, out_dir: Path | None = None, force: bool = False,
                 progress: bool = False) -> dict[str, Any]:
    """Claim 4. Returns per mode and seed the final / best test accuracy and curves, plus
    a summary (mean and std over seeds) per mode."""
    modes = _check_modes(cfg.modes)
    if not cfg.seeds:
        raise CanocapsInputError("--seeds needs at least one seed")
    if any(d < 1 for d in cfg.delays):
        raise CanocapsInputError(f"--delays must be >= 1, got {cfg.delays}")
    flatten = cfg.arch == "mlp"
    train_ds = load_dataset(cfg.data, "fit", cfg.mnist_dir, flatten=flatten)
    val_ds = load_dataset(cfg.data, "val", cfg.mnist_dir, flatten=flatten)
    test_ds = load_dataset(cfg.data, "test", cfg.mnist_dir, flatten=flatten)
    jobs = [(m, 0) for m in modes] + [(m, d) for d in cfg.delays for m in modes if m in ("dni", "cdni")]
    runs: dict[str, dict[str, Any]] = {}
    summary: dict[str, dict[str, float]] = {}
    for mode, delay in jobs:
        name = f"{mode}_delay{delay}" if delay else mode
        runs[name] = {}
        for seed in cfg.seeds:
            _, res = _train_classifier(
                mode, seed, train_ds, test_ds, cfg.arch, cfg.hidden, cfg.activation, cfg.sg, cfg.sg_hidden,
                cfg.sg_hidden_layers, cfg.target, cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer, cfg.device,
                _run_dir(out_dir, "classify", f"{name}_seed{seed}"),
                {"experiment": "classify", "mode": mode, "delay": delay, "seed": seed, **asdict(cfg)}, force,
                progress, val_ds=val_ds, delay=delay)
            runs[name][str(seed)] = res
        acc = np.array([r["test_acc"] for r in runs[name].values()])
        sel = np.array([r["selected_test_acc"] for r in runs[name].values()])
        secs = np.array([r["seconds"] for r in runs[name].values()])
        summary[name] = {"test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std()),
                         "selected_test_acc_mean": float(sel.mean()), "selected_test_acc_std": float(sel.std()),
                         "seconds_mean": float(secs.mean())}
    return {"experiment": "classify", "config": asdict(cfg), "n_train": len(train_ds), "n_val": len(val_ds),
            "n_test": len(test_ds), "runs": runs, "summary": summary}
