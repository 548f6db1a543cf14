"""The shared trainer: convergence, exact resume, callbacks, schedules, DDP, bad configs."""
from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from canocaps.errors import CanocapsInputError
from canocaps.train import Callback, Trainer, TrainConfig, TrainingDivergedError, load_checkpoint


class LinearRegression(torch.nn.Module):
    def __init__(self, dim: int = 3):
        super().__init__()
        torch.manual_seed(123)
        self.lin = torch.nn.Linear(dim, 1)

    def training_step(self, batch, step):
        x, y = batch
        err = self.lin(x).squeeze(-1) - y
        return {"loss": (err ** 2).mean(), "mae": err.abs().mean()}


def regression_data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 3.0]) + 0.5
    return TensorDataset(x, y)


def config(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=8, lr=0.05, progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _head_and_tail(text: str, chars: int = 1500) -> str:
    """The workers' own messages come first in torchrun's stderr, its report of the failure last."""
    return text if len(text) <= 2 * chars else f"{text[:chars]}\n[...]\n{text[-chars:]}"


def params_of(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_fit_reduces_loss_and_writes_run_files(tmp_path):
    data = regression_data()
    trainer = Trainer(config(epochs=20), out_dir=tmp_path)
    result = trainer.fit(LinearRegression(), data, data)
    val = [row["val/loss"] for row in result.history if "val/loss" in row]
    assert val[-1] < 0.01 * val[0]
    assert result.global_step == 20 * 8
    assert result.best_score == pytest.approx(min(val))
    for name in ("last.pt", "best.pt", "metrics.csv", "train_config.yaml"):
        assert (tmp_path / name).is_file(), name
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "mae", "val/loss", "lr"} <= set(header)
    assert TrainConfig.from_yaml(tmp_path / "train_config.yaml") == trainer.config


def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path):
    data = regression_data()
    straight = LinearRegression()
    Trainer(config(), out_dir=tmp_path / "a").fit(straight, data)

    first = LinearRegression()
    Trainer(config(max_steps=5), out_dir=tmp_path / "b").fit(first, data)  # stops inside epoch 1
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert state["trainer"]["global_step"] == 5 and state["trainer"]["batch_in_epoch"] == 5
    resumed = LinearRegression()
    result = Trainer(config(), out_dir=tmp_path / "b").fit(resumed, data, resume=True)
    assert result.global_step == 3 * 8
    torch.testing.assert_close(params_of(resumed), params_of(straight), rtol=0, atol=0)


class InterruptAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, module, outputs):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_keyboard_interrupt_saves_position_and_resume_continues(tmp_path):
    data = regression_data()
    straight = LinearRegression()
    Trainer(config()).fit(straight, data)
    interrupted = LinearRegression()
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(), callbacks=[InterruptAt(11)], out_dir=tmp_path).fit(interrupted, data)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["trainer"]["global_step"] == 11
    resumed = LinearRegression()
    Trainer(config(), out_dir=tmp_path).fit(resumed, data, resume=True)
    torch.testing.assert_close(params_of(resumed), params_of(straight), rtol=0, atol=0)


class Recorder(Callback):
    def __init__(self):
        self.calls: list[str] = []
        self.before: torch.Tensor | None = None
        self.grad_seen = False
        self.updated = False

    def on_fit_start(self, trainer, module):
        self.calls.append("fit_start")

    def on_step_start(self, trainer, module, batch):
        self.calls.append("step_start")

    def on_before_optimizer_step(self, trainer, module):
        self.calls.append("before_opt")
        self.grad_seen = all(p.grad is not None for p in module.parameters())
        self.before = params_of(module).clone()

    def on_step_end(self, trainer, module, outputs):
        self.calls.append("step_end")
        self.updated = not torch.equal(self.before, params_of(module))
        assert set(outputs) >= {"loss", "mae", "step", "lr"}

    def on_epoch_end(self, trainer, module):
        self.calls.append("epoch_end")

    def on_eval_end(self, trainer, module, metrics):
        self.calls.append("eval_end")

    def on_fit_end(self, trainer, module):
        self.calls.append("fit_end")


def test_callback_hooks_order_and_state():
    rec = Recorder()
    data = regression_data(16)
    Trainer(config(epochs=1), callbacks=[rec]).fit(LinearRegression(), data, data)
    assert rec.calls[0] == "fit_start" and rec.calls[-1] == "fit_end"
    assert rec.calls[1:4] == ["step_start", "before_opt", "step_end"]
    assert rec.calls.count("step_end") == 2
    assert rec.calls[-3:] == ["eval_end", "epoch_end", "fit_end"]
    assert rec.grad_seen and rec.updated


def test_lr_milestones_in_epochs_and_sgd_options():
    seen: dict[int, float] = {}

    class LR(Callback):
        def on_step_end(self, trainer, module, outputs):
            seen[trainer.epoch] = outputs["lr"]

    cfg = config(epochs=4, optimizer="sgd", momentum=0.9, dampening=0.1, weight_decay=1e-3,
                 lr=0.01, lr_milestones=[1, 3], lr_gamma=0.5)
    trainer = Trainer(cfg, callbacks=[LR()])
    trainer.fit(LinearRegression(), regression_data(16))
    assert seen == pytest.approx({0: 0.01, 1: 0.005, 2: 0.005, 3: 0.0025})
    group = trainer.optimizer.param_groups[0]
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert (group["momentum"], group["dampening"], group["weight_decay"]) == (0.9, 0.1, 1e-3)


def test_grad_clip_bounds_the_update():
    norms = []

    class GradNorm(Callback):
        def on_before_optimizer_step(self, trainer, module):
            norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in module.parameters()))))

    x = torch.randn(32, 3) * 100
    data = TensorDataset(x, x.sum(-1) * 100)
    Trainer(config(epochs=1, grad_clip_norm=0.5, optimizer="sgd"), callbacks=[GradNorm()]).fit(LinearRegression(), data)
    assert max(norms) <= 0.5 + 1e-5


class NaNAfter(LinearRegression):
    def __init__(self, bad_from: int):
        super().__init__()
        self.bad_from = bad_from

    def training_step(self, batch, step):
        out = super().training_step(batch, step)
        if step >= self.bad_from:
            out["loss"] = out["loss"] * float("nan")
        return out


def test_nonfinite_steps_are_skipped_then_reported():
    module = NaNAfter(bad_from=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDivergedError, match="non-finite for 3 steps"):
            Trainer(config(epochs=5, max_nonfinite_steps=3)).fit(module, regression_data())
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_best_checkpoint_and_load_checkpoint(tmp_path):
    data = regression_data()
    trainer = Trainer(config(epochs=5), out_dir=tmp_path)
    result = trainer.fit(LinearRegression(), data, data)
    fresh = LinearRegression()
    state = load_checkpoint(result.best_path, fresh)
    assert state["trainer"]["best_score"] == pytest.approx(result.best_score)
    assert Trainer(config()).evaluate(fresh, DataLoader(data, batch_size=64))["val/loss"] == pytest.approx(
        result.best_score, rel=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(optimizer="lbfgs"), "optimizer must be one of"),
    (dict(epochs=0), "epochs must be"),
    (dict(lr=-1.0), "lr must be"),
    (dict(monitor_mode="up"), "monitor_mode"),
    (dict(device="tpu"), "device must be"),
])
def test_bad_config_is_one_clear_error(bad, match):
    with pytest.raises(CanocapsInputError, match=match):
        TrainConfig(**bad)


def test_config_yaml_round_trip_and_unknown_keys(tmp_path):
    cfg = TrainConfig(epochs=450, lr_milestones=[200, 400], betas=(0.8, 0.9), grad_clip_norm=1.0)
    path = tmp_path / "c.yaml"
    path.write_text("model: {k: 10}\ntrain:\n" + "".join(f"  {line}\n" for line in cfg.to_yaml().splitlines()))
    assert TrainConfig.from_yaml(path) == cfg
    with pytest.raises(CanocapsInputError, match="unknown key"):
        TrainConfig.from_dict({"epochz": 3})


def test_resume_without_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(CanocapsInputError, match="nothing to resume"):
        Trainer(config(), out_dir=tmp_path).fit(LinearRegression(), regression_data(), resume=True)


def test_module_without_training_step_is_rejected():
    with pytest.raises(CanocapsInputError, match="training_step"):
        Trainer(config()).fit(torch.nn.Linear(3, 1), regression_data())


DDP_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from test_train import LinearRegression, regression_data, config
    from canocaps.train import Trainer
    from canocaps.train.distributed import exit_worker
    module = LinearRegression()
    Trainer(config(epochs=2, batch_size=4, shuffle=False)).fit(module, regression_data(32))
    flat = torch.cat([p.detach().flatten() for p in module.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    if dist.get_rank() == 0:
        torch.save(torch.stack(gathered), {out!r})
    exit_worker(0)
""")


def run_torchrun(args: list[str], nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node NPROC ARGS`` on a free port, Gloo threads at 1."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port: a fixed one can still be held by an earlier run
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--master_port", str(port), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_ddp_two_cpu_processes_match_single_process_full_batch(tmp_path):
    """torchrun with 2 Gloo processes x batch 4 = one process x batch 8 (mean losses)."""
    out = tmp_path / "params.pt"
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    proc = run_torchrun([str(script)])
    assert proc.returncode == 0, _head_and_tail(proc.stderr)
    per_rank = torch.load(out)
    torch.testing.assert_close(per_rank[0], per_rank[1], rtol=0, atol=0)
    single = LinearRegression()
    Trainer(config(epochs=2, batch_size=8, shuffle=False)).fit(single, regression_data(32))
    torch.testing.assert_close(per_rank[0], params_of(single), rtol=1e-5, atol=1e-6)
    assert not math.isclose(float(per_rank[0][0]), float(LinearRegression().lin.weight[0, 0].detach()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_on_cuda_trains():
    data = regression_data()
    result = Trainer(config(epochs=10, amp=True, device="cuda")).fit(LinearRegression(), data, data)
    val = [row["val/loss"] for row in result.history if "val/loss" in row]
    assert val[-1] < 0.1 * val[0]


class Counter(Callback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, trainer, module, outputs):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def test_callback_state_survives_resume_with_other_builtin_callbacks(tmp_path):
    data = regression_data()
    first = Counter()
    Trainer(config(max_steps=5, progress=False), callbacks=[first], out_dir=tmp_path).fit(LinearRegression(), data)
    second = Counter()  # progress bar now on: the callback list differs, states must still match by class
    Trainer(config(progress=True), callbacks=[second], out_dir=tmp_path).fit(LinearRegression(), data, resume=True)
    assert first.steps == 5 and second.steps == 3 * 8


SIGTERM_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_train import LinearRegression, regression_data, config
    from canocaps.train import Callback, Trainer

    class TermAt(Callback):
        def on_step_end(self, trainer, module, outputs):
            if trainer.global_step == 7:
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        Trainer(config(), callbacks=[TermAt()], out_dir={out!r}).fit(LinearRegression(), regression_data())
    except KeyboardInterrupt:
        sys.exit(3)
""")


def test_sigterm_saves_position_like_ctrl_c(tmp_path):
    script = tmp_path / "term.py"
    script.write_text(SIGTERM_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "run")))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 3, proc.stderr[-1000:]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["trainer"]["global_step"] == 7


def test_build_optimizer_accepts_parameter_groups():
    from canocaps.train.optim import build_optimizer

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.bias.requires_grad_(False)
    opt = build_optimizer([{"params": list(a.parameters())}, {"params": list(b.parameters()), "lr": 0.5}],
                          config(optimizer="sgd", momentum=0.9, lr=0.1))
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)


def test_changed_lr_takes_effect_on_resume(tmp_path):
    data = regression_data()
    Trainer(config(max_steps=5, optimizer="sgd", lr=0.05), out_dir=tmp_path).fit(LinearRegression(), data)
    trainer = Trainer(config(optimizer="sgd", lr=0.005), out_dir=tmp_path)
    trainer.fit(LinearRegression(), data, resume=True)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)


def test_changed_monitor_resets_best_score_on_resume(tmp_path):
    data = regression_data()
    first = Trainer(config(max_steps=4, monitor="val/loss"), out_dir=tmp_path)
    first.fit(LinearRegression(), data, val_data=data)
    assert first.best_score is not None
    same = Trainer(config(max_steps=6, monitor="val/loss"), out_dir=tmp_path)
    same._restore(LinearRegression(), True)
    assert same.best_score == first.best_score
    other = Trainer(config(max_steps=6, monitor="val/loss", monitor_mode="max"), out_dir=tmp_path)
    other._restore(LinearRegression(), True)
    assert other.best_score is None


def test_progress_bar_counts_to_max_steps_not_to_the_epochs():
    """Issue 15: with max_steps the bar says where the run really ends (not 'epoch 1/1000')."""
    from types import SimpleNamespace as NS

    from canocaps.train.callbacks import ProgressBar

    def at(step: int, batch: int, epoch: int, max_steps: int | None) -> tuple:
        return ProgressBar.extent(NS(steps_per_epoch=100, config=NS(epochs=1000, max_steps=max_steps),
                                     global_step=step, batch_in_epoch=batch, epoch=epoch))

    assert at(0, 0, 0, 20) == (20, 1)  # 20 steps of the first epoch, and that epoch is the last
    assert at(230, 30, 2, 250) == (50, 3)  # resumed mid-epoch: 20 steps left, bar ends at batch 50
    assert at(0, 0, 0, 350) == (100, 4)
    assert at(230, 30, 2, None) == (100, 1000)  # no max_steps: whole epochs, all of them
