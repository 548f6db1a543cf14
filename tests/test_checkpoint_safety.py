"""Trainer checkpoints are data: a pickle payload planted in last.pt / best.pt never runs,
whichever reader meets it, and every wrong kind of file is one clean line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from canocaps.errors import CanocapsWeightsError
from canocaps.train import Trainer, TrainConfig, load_checkpoint, read_checkpoint
from canocaps.train.checkpoint import FORMAT, read_trainer_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_points=64, num_capsules=4, feat_dim=16, num_blocks=1, layers_per_block=1,
            canon_hidden=(32,), grid_dim=2, decoder_bottleneck=16)


class Payload:
    """Unpickling this creates ``marker``: the proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, step):
        x, y = batch
        return {"loss": ((self.lin(x).squeeze(-1) - y) ** 2).mean()}


def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=g)
    return torch.utils.data.TensorDataset(x, x.sum(1))


def tiny_run(out: Path) -> Trainer:
    trainer = Trainer(TrainConfig(epochs=1, batch_size=8, progress=False, monitor="val/loss"), out_dir=out)
    trainer.fit(Tiny(), tiny_data(), tiny_data())
    return trainer


def plant(ckpt: Path, marker: Path) -> None:
    """Rewrite ``ckpt`` as the same checkpoint with a payload inside, and check the payload is live."""
    state = torch.load(ckpt, weights_only=True)
    state["trainer"]["note"] = Payload(marker)
    torch.save(state, ckpt)
    probe = ckpt.with_name("probe.pt")
    shutil.copy(ckpt, probe)
    torch.load(probe, weights_only=False)  # the unsafe way: the payload runs
    assert marker.exists(), "payload is not live: the test would prove nothing"
    marker.unlink()
    probe.unlink()


def one_error_line(proc: subprocess.CompletedProcess, prefix: str = "canocaps") -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"{prefix}") and "error:" in lines[0], lines[0]
    return lines[0]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def in_process(capsys, module: str, *args: str) -> str:
    """Run a CLI's ``main`` here (no torch import to pay); return its one error line."""
    import importlib

    capsys.readouterr()
    code = importlib.import_module(module).main(list(args))
    err = capsys.readouterr().err
    return one_error_line(subprocess.CompletedProcess(args, code, "", err))


# -- what the trainer writes ----------------------------------------------------------
def test_trainer_checkpoints_load_weights_only(tmp_path):
    tiny_run(tmp_path)
    for name in ("last.pt", "best.pt"):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / name) == []
        state = torch.load(tmp_path / name, weights_only=True)
        assert state["format"] == FORMAT and isinstance(state["rng"]["numpy"]["key"], torch.Tensor)


def test_save_refuses_state_that_would_not_load_safely(tmp_path):
    import numpy as np

    with pytest.raises(TypeError, match=r"state\['callbacks'\]\[0\]\['state'\]\['arr'\] is a numpy.ndarray"):
        save_checkpoint({"callbacks": [{"state": {"arr": np.zeros(3)}}]}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


# -- payloads: nothing runs, one line --------------------------------------------------
def test_payload_in_last_pt_python_readers(tmp_path):
    tiny_run(tmp_path)
    marker = tmp_path / "PWNED"
    for name in ("last.pt", "best.pt"):
        plant(tmp_path / name, marker)
    for reader in (lambda: read_checkpoint(tmp_path / "last.pt"),
                   lambda: load_checkpoint(tmp_path / "best.pt", Tiny()),
                   lambda: Trainer(TrainConfig(epochs=2, batch_size=8, progress=False), out_dir=tmp_path).fit(
                       Tiny(), tiny_data(), resume=True)):
        with pytest.raises(CanocapsWeightsError) as info:
            reader()
        msg = str(info.value)
        assert "\n" not in msg and "refused" in msg and "io.open" in msg, msg
        assert not marker.exists()


@pytest.fixture(scope="module")
def capsules_run(tmp_path_factory) -> Path:
    from canocaps.recipes.capsules import run_training

    out = tmp_path_factory.mktemp("caps") / "run"
    run = {"model": TINY, "data": {"name": "procedural", "num_points": 64, "options": {"per_class": 1}},
           "train": {"epochs": 1, "max_steps": 1, "batch_size": 4, "device": "cpu", "progress": False}}
    run_training(run, out)
    return out


def test_payload_train_resume_and_export_cli(capsules_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(capsules_run, run)
    marker = tmp_path / "PWNED"
    plant(run / "last.pt", marker)
    line = one_error_line(cli("-m", "canocaps", "train", "--resume", str(run), cwd=tmp_path))
    assert "last.pt: refused" in line and not marker.exists()
    line = in_process(capsys, "canocaps.cli", "export", str(run / "last.pt"), str(tmp_path / "w.pt"))
    assert "refused" in line and not marker.exists() and not (tmp_path / "w.pt").exists()


def test_payload_trajectories_sample_cli(tmp_path):
    from canocaps.extras.trajectories.models import build_model

    run = tmp_path / "traj"
    run.mkdir()
    hp = {"n_agents": 2, "rnn_dim": 8, "h_dim": 8}
    (run / "run.json").write_text(json.dumps({"model": "rnn_gauss", "hparams": hp, "data_dir": str(tmp_path),
                                              "macro_lf": None, "dataset": "boids", "limit": None}))
    net = build_model("rnn_gauss", **hp)
    torch.save({"format": FORMAT, "module": net.state_dict(), "trainer": {"global_step": 1, "epoch": 1,
                                                                          "batch_in_epoch": 0}}, run / "best.pt")
    marker = tmp_path / "PWNED"
    plant(run / "best.pt", marker)
    proc = cli("-m", "canocaps", "extras", "trajectories", "sample", str(run), "-o", str(tmp_path / "s.npz"),
               cwd=tmp_path)
    line = one_error_line(proc, prefix="")  # the extras' own prefix is issue 18's
    assert "refused" in line and not marker.exists() and not (tmp_path / "s.npz").exists()


# -- wrong kinds of file -------------------------------------------------------------
def wrong_kinds(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    from canocaps.model import CanonicalCapsules, CapsulesConfig

    kinds = {}
    p = tmp_path / "weights.pt"
    CanonicalCapsules(CapsulesConfig(**TINY)).save(p)
    kinds["weights"] = (p, "standalone weights file")
    p = tmp_path / "bare.pt"
    torch.save(Tiny().state_dict(), p)
    kinds["bare"] = (p, "bare state dict")
    p = tmp_path / "other.pt"
    torch.save({"epoch": 3, "model": {"w": torch.ones(2)}}, p)
    kinds["other"] = (p, "not a canocaps trainer checkpoint")
    p = tmp_path / "garbage.pt"
    p.write_bytes(os.urandom(4096))
    kinds["garbage"] = (p, "not a readable checkpoint")
    p = tmp_path / "list.pt"
    torch.save([1, 2], p)
    kinds["list"] = (p, "holds a list")
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    kinds["empty"] = (p, "not a readable checkpoint")
    return kinds


def test_wrong_kinds_are_one_line(tmp_path):
    for name, (path, expected) in wrong_kinds(tmp_path).items():
        with pytest.raises(CanocapsWeightsError) as info:
            read_trainer_checkpoint(path)
        msg = str(info.value)
        assert expected in msg and str(path) in msg and "\n" not in msg, (name, msg)


def test_wrong_kind_last_pt_cli_and_best_pt_hint(capsules_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(capsules_run, run)
    (tmp_path / "kinds").mkdir()
    kinds = wrong_kinds(tmp_path / "kinds")
    shutil.copy(kinds["weights"][0], run / "last.pt")
    line = in_process(capsys, "canocaps.cli", "train", "--resume", str(run))
    assert "last.pt: a standalone weights file" in line
    assert f"{run / 'best.pt'} (step 1) is fine: to resume from it, copy it to {run / 'last.pt'}" in line

    # an unreadable last.pt beside a good best.pt: say so, and how to resume from it
    trainer_run = tmp_path / "t"
    tiny_run(trainer_run)
    (trainer_run / "last.pt").write_bytes((trainer_run / "last.pt").read_bytes()[:500])
    with pytest.raises(CanocapsWeightsError) as info:
        Trainer(TrainConfig(epochs=2, batch_size=8, progress=False), out_dir=trainer_run).fit(
            Tiny(), tiny_data(), resume=True)
    msg = str(info.value)
    assert "\n" not in msg and "last.pt: not a readable checkpoint" in msg
    assert f"{trainer_run / 'best.pt'} (step 2) is fine: to resume from it, copy it to {trainer_run / 'last.pt'}" in msg
    shutil.copy(trainer_run / "best.pt", trainer_run / "last.pt")  # the advice works
    result = Trainer(TrainConfig(epochs=2, batch_size=8, progress=False), out_dir=trainer_run).fit(
        Tiny(), tiny_data(), resume=True)
    assert result.global_step == 4
