"""tools/extend_run.py: a run with a config that adds parameters, continued by canocaps train --resume."""
from __future__ import annotations

import pytest
import torch
import yaml

from canocaps.model import CanonicalCapsules, CapsulesConfig
from canocaps.recipes.capsules import export_weights, run_training
from tool_scripts import run_tool

TINY = dict(num_points=64, num_capsules=4, feat_dim=16, num_blocks=1, layers_per_block=1, canon_hidden=(32,),
            grid_dim=2, decoder_bottleneck=16, encoder="invariant", frame="moments")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = {"model": TINY, "data": {"name": "procedural", "num_points": 64, "options": {"per_class": 1}},
           "train": {"epochs": 1, "max_steps": 2, "batch_size": 4, "device": "cpu", "progress": False,
                     "log_every": 1, "ckpt_every_steps": 1}}
    out = tmp_path_factory.mktemp("runs") / "run"
    run_training(run, out)
    return out


def test_extended_run_starts_as_the_old_model_and_resumes(tiny_run, tmp_path):
    out = tmp_path / "routed"
    proc = run_tool("extend_run.py", str(tiny_run), str(out), "--set", "model.routing_iterations=2")
    assert proc.returncode == 0, proc.stderr
    assert "capsules.routing_scale" in proc.stdout and "step 2" in proc.stdout
    assert yaml.safe_load((out / "run.yaml").read_text())["model"]["routing_iterations"] == 2
    assert not (out / "best.pt").exists() and not (out / "model.pt").exists()
    export_weights(tiny_run / "last.pt", tmp_path / "old.pt")
    export_weights(out / "last.pt", tmp_path / "new.pt")
    old, new = CanonicalCapsules.load(tmp_path / "old.pt"), CanonicalCapsules.load(tmp_path / "new.pt")
    assert new.config.routing_iterations == 2 and old.config.routing_iterations == 0
    x = torch.randn(2, 64, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(new.canonicalize(x).keypoints, old.canonicalize(x).keypoints, atol=0, rtol=0)
    state = torch.load(out / "last.pt", weights_only=True)
    n_params = sum(1 for _ in new.parameters())
    assert state["optimizer"]["param_groups"][0]["params"] == list(range(n_params))
    assert len(state["optimizer"]["state"]) == n_params - 1  # the new scale starts without Adam moments
    run_training(None, out, resume=True, overrides={"train.max_steps": 3})  # canocaps train --resume
    resumed = torch.load(out / "last.pt", weights_only=True)
    assert resumed["trainer"]["global_step"] == 3
    assert not torch.equal(resumed["module"]["net.capsules.routing_scale"], torch.zeros(4))  # it trains


def test_extend_run_refuses_with_one_line(tiny_run, tmp_path):
    for args in ((str(tiny_run), str(tmp_path / "a"), "--set", "model.feat_dim=8"),  # changes shapes
                 (str(tmp_path / "nothing"), str(tmp_path / "b"), "--set", "model.routing_iterations=1"),
                 (str(tiny_run), str(tiny_run), "--set", "model.routing_iterations=1"),
                 (str(tiny_run), str(tmp_path / "c"), "--set", "model.routing_iterations=x")):
        proc = run_tool("extend_run.py", *args)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, (args, proc.stderr)
    (tmp_path / "d").mkdir()
    proc = run_tool("extend_run.py", str(tiny_run), str(tmp_path / "d"), "--set", "model.routing_iterations=1")
    assert proc.returncode == 2 and "--force" in proc.stderr
