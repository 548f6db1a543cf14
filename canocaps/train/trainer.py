"""The one training loop shared by every canocaps model, the extras included.

A *module* is any ``torch.nn.Module`` with ``training_step(batch, step) -> dict`` whose
``"loss"`` entry is back-propagated (see ``docs/CONTRIBUTING.md``). Behaviour beyond
the loop itself (logging, progress, measurements) is added through
:class:`canocaps.train.Callback` objects.

Checkpoints (``out_dir/last.pt``, ``best.pt``) hold the weights, optimizer, scheduler,
AMP scaler, random generators, callback states and the position inside the epoch, as
tensors and plain data (they load with ``torch.load(weights_only=True)``), so
``fit(..., resume=True)`` continues an interrupted run where it stopped, mid-epoch too.

Exact resume: the position only moves when a step is complete (``optimizer.step()`` and
the counters change together). Ctrl-C / SIGTERM during a step is deferred to the end of
that step (a second signal stops at once); an interruption before a step's update (a
callback raising ``KeyboardInterrupt``, a second signal) saves the position and random
state from *before* the step, so the resumed run redoes that batch. Evaluation and
``on_epoch_end`` after an epoch are owed work (``pending`` in the checkpoint): interrupted
there, the resumed run does them first. A resumed run therefore reproduces an
uninterrupted one bit for bit (weights and ``metrics.csv``) when its randomness lives in
the main process (``num_workers=0``, or workers seeded by sample index). Callbacks must
change their saved state only in ``on_step_end`` / ``on_eval_end`` / ``on_epoch_end``.
"""
from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from canocaps.errors import CanocapsError, CanocapsInputError, CanocapsWeightsError
from canocaps.train.batching import batch_size_of, move_to_device
from canocaps.train.callbacks import Callback, CallbackList, CSVLogger, ProgressBar, TensorBoardLogger
from canocaps.train.checkpoint import (FORMAT, capture_rng, read_trainer_checkpoint, rng_state, save_checkpoint,
                                       seed_everything, set_rng_state)
from canocaps.train.config import TrainConfig
from canocaps.train.distributed import DistInfo, all_reduce_sum, barrier, dist_info_from_env, init_distributed
from canocaps.train.optim import build_optimizer, build_scheduler
from canocaps.train.protocol import ConfiguresOptimizers, TrainModule, TransfersBatch, ValidationStep


class TrainingDivergedError(CanocapsError):
    """The loss stayed non-finite for ``config.max_nonfinite_steps`` steps in a row."""


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    global_step: int
    epochs_completed: int
    best_score: float | None
    best_path: Path | None
    last_path: Path | None
    history: list[dict[str, float]] = field(repr=False, default_factory=list)

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


class EpochSampler(Sampler[int]):
    """Shuffles with a generator seeded by ``(seed, epoch)`` and can start mid-epoch.

    The order of epoch ``e`` is the same in a resumed run as in an uninterrupted one.
    """

    def __init__(self, length: int, shuffle: bool, seed: int):
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        return iter(order[self.start:])

    def __len__(self) -> int:
        return self.length - self.start


class _StepRunner(torch.nn.Module):
    """Routes ``forward`` to ``training_step`` so DDP sees (and syncs) the step."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        return self.module.training_step(batch, step)


class Trainer:
    """Runs optimisation of a module: ``Trainer(config, callbacks, out_dir).fit(module, data)``.

    Args:
        config: a :class:`TrainConfig`.
        callbacks: extra :class:`Callback` objects (a CSV logger and a progress bar are
            always added; a TensorBoard logger when ``config.tensorboard``).
        out_dir: where ``config.yaml``, ``metrics.csv``, ``last.pt`` and ``best.pt`` go.
            ``None`` keeps everything in memory (no checkpoints, no resume).
    """

    def __init__(self, config: TrainConfig | None = None, callbacks: Sequence[Callback] = (),
                 out_dir: str | Path | None = None):
        self.config = config or TrainConfig()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        builtins: list[Callback] = [CSVLogger()]
        if self.config.progress:
            builtins.append(ProgressBar())
        if self.config.tensorboard:
            builtins.append(TensorBoardLogger())
        self.callbacks = CallbackList([*builtins, *callbacks])
        self.dist: DistInfo = dist_info_from_env()
        self.device = self._select_device()
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.steps_per_epoch: int | None = None
        self.best_score: float | None = None
        self.history: list[dict[str, float]] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        self.scaler: torch.amp.GradScaler | None = None
        self._nonfinite_in_a_row = 0
        self.pending: str | None = None  # "epoch_end" / "final_eval": owed after the current position
        self._open: dict[str, Any] | None = None  # state to save if interrupted inside a step or a pending phase
        self._resume_rng: dict[str, Any] | None = None  # applied just before the first batch after a resume
        self._stop_signal: int | None = None
        self._in_update = False

    # -- set-up ------------------------------------------------------------------------
    @property
    def is_main_process(self) -> bool:
        return self.dist.is_main

    @property
    def last_path(self) -> Path | None:
        return self.out_dir / "last.pt" if self.out_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.out_dir / "best.pt" if self.out_dir else None

    def _select_device(self) -> torch.device:
        want = self.config.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda"):
            if not torch.cuda.is_available():
                raise CanocapsInputError("device 'cuda' requested but no CUDA GPU is available")
            if self.dist.enabled:
                return torch.device("cuda", self.dist.local_rank)
        return torch.device(want)

    def _loader(self, data: Dataset | DataLoader | Iterable | None, train: bool):
        if data is None or isinstance(data, DataLoader) or not isinstance(data, Dataset):
            return data
        cfg = self.config
        if self.dist.enabled:
            sampler = DistributedSampler(data, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                         shuffle=train and cfg.shuffle, seed=cfg.seed, drop_last=train and cfg.drop_last)
        else:
            sampler = EpochSampler(len(data), shuffle=train and cfg.shuffle, seed=cfg.seed)
        return DataLoader(data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                          drop_last=train and cfg.drop_last, pin_memory=self.device.type == "cuda",
                          persistent_workers=cfg.num_workers > 0)

    def _set_epoch(self, loader, epoch: int, start_batch: int) -> int:
        """Position the loader's sampler; return how many batches still need skipping."""
        sampler = getattr(loader, "sampler", None)
        if isinstance(sampler, EpochSampler) and getattr(loader, "batch_size", None):
            sampler.set_epoch(epoch, start_batch * loader.batch_size)
            return 0
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        return start_batch

    # -- checkpoints -------------------------------------------------------------------
    def _checkpoint_state(self, module: torch.nn.Module) -> dict[str, Any]:
        """Everything :meth:`fit` needs to continue. Inside an open step or pending phase the
        random state and callback states are those from before it began (the weights,
        optimizer and counters have not changed since; a better score found by the pending
        evaluation is kept: redoing it finds the same score, which is then not better)."""
        opened = self._open or {}
        return {
            "format": FORMAT,
            "module": module.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "trainer": {"global_step": self.global_step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                        "best_score": None if self.best_score is None else float(self.best_score), "pending": self.pending},
            "callbacks": opened.get("callbacks") or self.callbacks.state_dicts(),
            "config": self.config.to_dict(),
            "rng": rng_state(opened.get("rng")),
        }

    def save(self, module: torch.nn.Module, path: Path | None = None) -> Path | None:
        """Write a checkpoint (default ``out_dir/last.pt``) from the main process."""
        path = path or self.last_path
        if path is None:
            return None
        if self.is_main_process:
            save_checkpoint(self._checkpoint_state(module), path)
            self.callbacks.on_checkpoint(self, path)
        return path

    def _read_resume_state(self, path: Path) -> dict[str, Any]:
        """The checkpoint at ``path``; when it is ``last.pt`` and unusable while ``best.pt`` is
        fine, the one-line error says so and how to resume from ``best.pt``."""
        try:
            return read_trainer_checkpoint(path, map_location=self.device)
        except CanocapsError as exc:
            best = self.best_path
            if path != self.last_path or best is None or not best.is_file():
                raise
            try:
                step = read_trainer_checkpoint(best, map_location="cpu")["trainer"]["global_step"]
            except CanocapsError:
                raise exc from None
            raise type(exc)(f"{exc}; {best} (step {step}) is fine: to resume from it, copy it to {path}") from None

    def _restore(self, module: torch.nn.Module, resume: bool | str | Path) -> None:
        path = Path(resume) if isinstance(resume, (str, Path)) else self.last_path
        if path is None:
            raise CanocapsInputError("resume needs out_dir (or a checkpoint path)")
        if not path.is_file():
            raise CanocapsInputError(f"nothing to resume: {path} does not exist")
        state = self._read_resume_state(path)
        try:
            module.load_state_dict(state["module"])
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CanocapsWeightsError(f"{path} does not fit this model: {first}") from None
        if state.get("optimizer") and self.optimizer:
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise CanocapsWeightsError(f"{path}: optimizer state does not fit this model: {first}") from None
            saved_lr = state.get("config", {}).get("lr")
            if saved_lr and saved_lr != self.config.lr:  # a new lr in the config takes effect on resume
                for group in self.optimizer.param_groups:
                    for key in ("lr", "initial_lr"):
                        if key in group:
                            group[key] = group[key] * self.config.lr / saved_lr
        if state.get("scheduler") and self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.scaler:
            self.scaler.load_state_dict(state["scaler"])
        t = state["trainer"]
        self.global_step, self.epoch = t["global_step"], t["epoch"]
        self.batch_in_epoch, self.best_score = t["batch_in_epoch"], t["best_score"]
        self.pending = t.get("pending")
        saved = state.get("config", {})
        if (saved.get("monitor"), saved.get("monitor_mode")) != (self.config.monitor, self.config.monitor_mode):
            self.best_score = None  # a score of another metric (or direction) says nothing about this one
        self.callbacks.load_state_dicts(state.get("callbacks", []))
        self._resume_rng = state.get("rng")

    # -- the loop ----------------------------------------------------------------------
    def fit(self, module: torch.nn.Module, train_data: Dataset | DataLoader | Iterable,
            val_data: Dataset | DataLoader | Iterable | None = None,
            resume: bool | str | Path = False) -> FitResult:
        """Train ``module`` on ``train_data``; evaluate on ``val_data`` every ``eval_every_epochs``.

        ``resume=True`` continues from ``out_dir/last.pt``; a path resumes from that file.
        On Ctrl-C or SIGTERM the current step is finished, the position saved to ``last.pt``
        and ``KeyboardInterrupt`` propagates (a second signal stops at once, saving the
        position from before the unfinished step).

        Seeding: ``fit`` seeds every generator with ``config.seed`` (+ rank) before training;
        seed before *building* the module too (:func:`canocaps.train.seed_everything`) for
        identical initial weights.
        """
        cfg = self.config
        if not isinstance(module, TrainModule):
            raise CanocapsInputError(f"{type(module).__name__} has no training_step(batch, step)")
        init_distributed(self.dist, self.device)
        seed_everything(cfg.seed + self.dist.rank)
        module.to(self.device)
        self.optimizer = (module.configure_optimizers(cfg) if isinstance(module, ConfiguresOptimizers)
                          else build_optimizer(module.parameters(), cfg))
        self.scheduler = build_scheduler(self.optimizer, cfg)
        use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp) if use_amp else None
        runner: torch.nn.Module = _StepRunner(module)
        if self.dist.enabled:
            runner = torch.nn.parallel.DistributedDataParallel(
                runner, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        train_loader = self._loader(train_data, train=True)
        val_loader = self._loader(val_data, train=False)
        try:
            self.steps_per_epoch = len(train_loader)
        except TypeError:
            self.steps_per_epoch = None

        self.pending, self._open, self._resume_rng, self._stop_signal = None, None, None, None
        if resume:
            self._restore(module, resume)
        if self.out_dir is not None and self.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            from canocaps._files import atomic_write_text
            atomic_write_text(self.out_dir / "train_config.yaml", cfg.to_yaml(), force=True)

        self.callbacks.on_fit_start(self, module)
        try:
            with self._signals_deferred():
                self._run_epochs(module, runner, train_loader, val_loader, use_amp)
        except KeyboardInterrupt:
            self.save(module)
            if self.is_main_process:
                print(f"interrupted at step {self.global_step}; resume from {self.last_path}", file=sys.stderr)
            raise
        finally:
            self._open = None
        self.callbacks.on_fit_end(self, module)
        barrier()
        return FitResult(global_step=self.global_step, epochs_completed=self.epoch, best_score=self.best_score,
                         best_path=self.best_path if self.best_path and self.best_path.exists() else None,
                         last_path=self.last_path if self.last_path and self.last_path.exists() else None,
                         history=self.history)

    # -- interruptions -----------------------------------------------------------------
    @contextmanager
    def _signals_deferred(self):
        """While training, SIGINT / SIGTERM (Ctrl-C, ``kill``, cluster pre-emption) ask to stop
        at the end of the current step; a second signal stops at once (not inside the
        parameter update). No-op outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_signal is None or self._in_update:
                if self._stop_signal is None and self.is_main_process:
                    print(f"canocaps: {signal.Signals(signum).name}: stopping after this step "
                          "(send it again to stop at once)", file=sys.stderr)
                self._stop_signal = signum
                return
            raise KeyboardInterrupt(f"signal {signum}")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _check_stop(self, collective: bool = True) -> None:
        """Raise ``KeyboardInterrupt`` if a stop was asked (on any rank, under ``torchrun``)."""
        stop = self._stop_signal is not None
        if self.dist.enabled:
            if not collective:
                return
            flag = torch.tensor([float(stop)], device=self.device)
            stop = bool(all_reduce_sum(flag).item() > 0)
        if stop:
            raise KeyboardInterrupt(f"signal {self._stop_signal}" if self._stop_signal else "stop asked by another rank")

    def _open_phase(self, with_callbacks: bool) -> None:
        """Remember what to save if interrupted before the current step / pending phase ends."""
        self._open = {"rng": capture_rng(),
                      "callbacks": copy.deepcopy(self.callbacks.state_dicts()) if with_callbacks else None}

    def _apply_resume_rng(self) -> None:
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None

    # -- epochs and steps --------------------------------------------------------------
    def _done(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def _run_epochs(self, module, runner, train_loader, val_loader, use_amp: bool) -> None:
        cfg = self.config
        if self.pending:
            self._apply_resume_rng()
            self._finish_pending(module, val_loader)
            if self._done() and self.steps_per_epoch and 0 < self.batch_in_epoch < self.steps_per_epoch:
                return
        while self.epoch < cfg.epochs and not self._done():
            skip = self._set_epoch(train_loader, self.epoch, self.batch_in_epoch)
            # The random state saved for "before batch k" is the one before batch k is drawn, and
            # for k = 0 the one before iter(): a loader draws its base seed from the global generator.
            epoch_start_rng = None
            if self.batch_in_epoch == 0:
                self._apply_resume_rng()
                epoch_start_rng = capture_rng()
            batches = iter(train_loader)
            for _ in range(skip):
                next(batches, None)
            self._apply_resume_rng()  # mid-epoch: after iter(), just before this batch is drawn
            while True:
                self._open_phase(with_callbacks=False)
                if epoch_start_rng is not None:
                    self._open["rng"], epoch_start_rng = epoch_start_rng, None
                self._check_stop()
                try:
                    batch = next(batches)
                except StopIteration:
                    self._open = None
                    break
                self._train_step(module, runner, batch, use_amp)  # closes the phase at its update
                if cfg.ckpt_every_steps and self.global_step % cfg.ckpt_every_steps == 0:
                    self.save(module)
                if self._done():
                    break
            self._check_stop()
            if self._done() and self.steps_per_epoch and self.batch_in_epoch < self.steps_per_epoch:
                # stopped mid-epoch by max_steps: evaluate and keep the position
                self.pending = "final_eval"
                self._finish_pending(module, val_loader)
                return
            # the epoch is over: counters and schedule move together, then the owed work
            self.epoch += 1
            self.batch_in_epoch = 0
            if self.scheduler is not None:
                self.scheduler.step()
            self.pending = "epoch_end"
            self._finish_pending(module, val_loader)

    def _finish_pending(self, module, val_loader) -> None:
        """Evaluation (and ``on_epoch_end``) owed at the current position, then ``last.pt``."""
        cfg = self.config
        self._open_phase(with_callbacks=True)
        if self.pending == "epoch_end":
            if self.epoch % cfg.eval_every_epochs == 0 or self.epoch == cfg.epochs or self._done():
                self._evaluate_and_track(module, val_loader)
            self.callbacks.on_epoch_end(self, module)
        else:
            self._evaluate_and_track(module, val_loader)
        self.pending, self._open = None, None
        self.save(module)

    def _transfer(self, module: torch.nn.Module, batch: Any) -> Any:
        """``batch`` on the device: the module's ``transfer_batch`` hook, else :func:`move_to_device`."""
        if isinstance(module, TransfersBatch):
            return module.transfer_batch(batch, self.device)
        return move_to_device(batch, self.device)

    def _train_step(self, module, runner, batch, use_amp: bool) -> None:
        cfg = self.config
        module.train()
        batch = self._transfer(module, batch)
        self.callbacks.on_step_start(self, module, batch)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=use_amp):
            outputs = runner(batch, self.global_step)
        if not isinstance(outputs, dict) or "loss" not in outputs:
            raise CanocapsInputError(f"{type(module).__name__}.training_step must return a dict with 'loss'")
        loss = outputs["loss"]
        if not torch.isfinite(loss.detach()).all():
            self._nonfinite_in_a_row += 1
            self.batch_in_epoch += 1  # the batch is consumed without an update
            self._open = None
            warnings.warn(f"non-finite loss at step {self.global_step}; step skipped", RuntimeWarning, stacklevel=2)
            if self._nonfinite_in_a_row >= cfg.max_nonfinite_steps:
                raise TrainingDivergedError(
                    f"training diverged: loss non-finite for {self._nonfinite_in_a_row} steps in a row "
                    f"(step {self.global_step}); lower lr or enable grad_clip_norm")
            return
        self._nonfinite_in_a_row = 0
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if cfg.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip_norm)
        self.callbacks.on_before_optimizer_step(self, module)
        # the update and the position move together: signals wait until both are done
        self._in_update = True
        try:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.global_step += 1
            self.batch_in_epoch += 1
            self._open = None
        finally:
            self._in_update = False
        logged = {k: float(v.detach().float().mean()) if isinstance(v, torch.Tensor) else float(v)
                  for k, v in outputs.items()}
        logged.update(step=self.global_step, epoch=self.epoch, lr=self.optimizer.param_groups[0]["lr"])
        if self.global_step % cfg.log_every == 0:
            self.history.append(logged)
        self.callbacks.on_step_end(self, module, logged)

    # -- evaluation --------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, data: Dataset | DataLoader | Iterable) -> dict[str, float]:
        """Mean of ``validation_step`` outputs over ``data`` (weighted by batch size), keys
        prefixed ``val/``. Modules without ``validation_step`` report their training-step
        outputs computed in eval mode without gradients."""
        loader = self._loader(data, train=False) if isinstance(data, Dataset) else data
        module.eval()
        step_fn = module.validation_step if isinstance(module, ValidationStep) else None
        sums: dict[str, torch.Tensor] = {}
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        for batch in loader:
            if self._open is not None:  # inside fit: a stop asked during evaluation ends it here
                self._check_stop(collective=False)
            batch = self._transfer(module, batch)
            out = step_fn(batch) if step_fn else module.training_step(batch, self.global_step)
            n = batch_size_of(batch)
            for k, v in out.items():
                v = torch.as_tensor(v, dtype=torch.float64, device=self.device).detach().mean()
                sums[k] = sums.get(k, torch.zeros((), dtype=torch.float64, device=self.device)) + v * n
            count += n
        module.train()
        all_reduce_sum(count)
        metrics = {}
        for k in sorted(sums):
            metrics[f"val/{k}"] = float(all_reduce_sum(sums[k]) / count.clamp_min(1))
        return metrics

    def _evaluate_and_track(self, module, val_loader) -> None:
        if val_loader is None:
            return
        metrics = self.evaluate(module, val_loader)
        self.history.append({"step": self.global_step, "epoch": self.epoch, **metrics})
        cfg = self.config
        if cfg.monitor and cfg.monitor in metrics and math.isfinite(metrics[cfg.monitor]):
            score = metrics[cfg.monitor]
            better = (self.best_score is None or (score < self.best_score if cfg.monitor_mode == "min"
                                                  else score > self.best_score))
            if better:
                self.best_score = score
                if self.best_path is not None:
                    self.save(module, self.best_path)
        self.callbacks.on_eval_end(self, module, metrics)
