"""canocaps extras trajectories: the CLI pipeline end to end on a tiny data set, and its errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from canocaps.extras.trajectories.cli import main


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """simulate -> label -> train (two models) in one folder, shared by the tests below."""
    root = tmp_path_factory.mktemp("traj")
    data = root / "data"
    assert main(["simulate", "-o", str(data), "--n-train", "32", "--n-val", "8", "--n-test", "8", "--seed", "1",
                 "--quiet"]) == 0
    assert main(["label", str(data), "--lf", "flock", "--quiet"]) == 0
    assert main(["label", str(data), "--lf", "window", "--param", "window=10", "--quiet"]) == 0
    for model, extra in (("rnn_gauss", []), ("macro_vrnn", ["--macro", "flock", "--select", "rollout"])):
        assert main(["train", str(data), "-o", str(root / model), "--model", model, "--epochs", "1",
                     "--batch-size", "16", "--hparam", "rnn_dim=16", "--hparam", "h_dim=16", "--quiet", *extra]) == 0
    return root


def test_simulate_and_label_outputs(pipeline):
    data = pipeline / "data"
    meta = json.loads((data / "meta.json").read_text())
    assert meta["dataset"] == "boids" and meta["sizes"] == {"train": 32, "val": 8, "test": 8}
    with np.load(data / "train.npz") as z:
        assert z["data"].shape == (32, 50, 16) and z["label"].shape == (32,)
    with np.load(data / "test_macro_window.npz") as z:
        assert z["macro"].shape == (8, 50, 8) and int(z["num_classes"]) == 100


def test_simulate_resumes_and_refuses_to_clobber(pipeline, capsys):
    data = pipeline / "data"
    before = (data / "train.npz").stat().st_mtime_ns
    assert main(["simulate", "-o", str(data), "--n-train", "32", "--n-val", "8", "--n-test", "8", "--seed", "1",
                 "--quiet"]) == 0  # same request: nothing to redo
    assert _json(capsys)["written"] == []
    assert (data / "train.npz").stat().st_mtime_ns == before
    assert main(["simulate", "-o", str(data), "--n-train", "16", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("canocaps extras trajectories: error:") and "--force" in err and "\n" not in err


def test_train_writes_run_and_refuses_second_run(pipeline, capsys):
    run = pipeline / "macro_vrnn"
    for name in ("run.json", "best.pt", "last.pt", "metrics.csv", "best_rollout.pt", "rollout_selection.json"):
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    assert record["macro_lf"] == "flock" and record["hparams"]["n_macro"] == 2 and record["select"] == "rollout"
    sel = json.loads((run / "rollout_selection.json").read_text())
    (check,) = sel["checks"]  # one epoch: one validation rollout check
    assert sel["best_score"] == check["val/rollout_score"] and 0.0 <= check["val/rollout_intent1_acc"] <= 1.0
    assert main(["train", str(pipeline / "data"), "-o", str(run), "--model", "macro_vrnn", "--macro", "flock",
                 "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", str(pipeline / "data"), "-o", str(pipeline / "x"), "--model", "macro_vrnn",
                 "--quiet"]) == 2
    assert "--macro" in capsys.readouterr().err


def test_resume_continues_training(pipeline, capsys):
    run = pipeline / "rnn_gauss"
    assert main(["train", str(pipeline / "data"), "-o", str(run), "--model", "rnn_gauss", "--epochs", "2",
                 "--batch-size", "16", "--hparam", "rnn_dim=16", "--hparam", "h_dim=16", "--resume", "--quiet"]) == 0
    out = _json(capsys)
    assert out["epochs"] == 2 and out["global_step"] == 4  # 2 steps per epoch, the first epoch kept


def test_sample_and_plot(pipeline, capsys):
    out = pipeline / "samples.npz"
    png = pipeline / "samples.png"
    args = ["sample", str(pipeline / "macro_vrnn"), "-o", str(out), "-n", "4", "--burn-in", "5", "--fix-macro", "1",
            "--plot", str(png)]
    assert main(args) == 0
    summary = _json(capsys)
    assert summary["shape"] == [4, 50, 16]
    with np.load(out) as z:
        assert z["x"].shape == (4, 50, 16) and z["macro"].shape == (4, 50, 8)
        np.testing.assert_allclose(z["x"][:, :5], z["truth"][:, :5], atol=1e-6)
        assert (z["macro"][:, 4:] == 1).all()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 2  # exists, no --force
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "-o", str(pipeline / "again.png"), "-n", "2"]) == 0
    assert _json(capsys) == {"out": str(pipeline / "again.png"), "n": 2, "arena": "boids"}
    assert main(["plot", str(pipeline / "data"), "-o", str(pipeline / "real.png"), "--split", "val"]) == 0
    assert _json(capsys)["n"] == 8 and (pipeline / "real.png").stat().st_size > 1000


def test_eval_report(pipeline, capsys):
    js = pipeline / "eval.json"
    assert main(["eval", str(pipeline / "macro_vrnn"), "--n-rollouts", "4", "--json", str(js), "--quiet",
                 "--iw-samples", "3"]) == 0
    rep = json.loads(js.read_text())
    assert rep == _json(capsys)
    assert rep["checkpoint"] == "best_rollout"  # the run was trained with --select rollout
    b = rep["bound"]
    assert b["iw_samples"] == 3 and b["iw_loss"] < b["loss"] + 50.0
    assert b["loss"] == pytest.approx(b["nll"] + b["kl"] + b["ce"], rel=1e-6) and b["n_sequences"] == 8
    assert set(rep["rollouts"]["generated"]) == {"avg_speed", "path_length", "oob_rate", "n_sequences"}
    fr = rep["friendliness"]
    for k in ("conditioned_friendly_classified_as_intended", "conditioned_unfriendly_classified_as_intended"):
        assert 0.0 <= fr[k] <= 1.0
    js2 = pipeline / "eval_last.json"
    assert main(["eval", str(pipeline / "macro_vrnn"), "--n-rollouts", "4", "--json", str(js2), "--quiet",
                 "--checkpoint", "last", "--temperature", "0.5"]) == 0
    capsys.readouterr()
    assert json.loads(js2.read_text())["temperature"] == 0.5
    assert main(["summarize", str(js), str(js2)]) == 0
    summary = _json(capsys)
    stats = summary["groups"]["macro_vrnn (flock LF)"]
    assert stats["OOB rate"]["n"] == 2 and "± " in summary["table"] and "| real data |" in summary["table"]
    assert main(["summarize", str(pipeline / "data" / "meta.json")]) == 2


def test_diagnose_report(pipeline, capsys):
    assert main(["diagnose", str(pipeline / "macro_vrnn"), "-n", "4"]) == 0
    rep = _json(capsys)
    assert rep["split"] == "val" and rep["n_sequences"] == 4 and rep["checkpoint"] == "best_rollout"
    assert [w["radius"][0] for w in rep["wall"]] == [0.0, 1.5, 2.0]
    assert [b["behaviour"] for b in rep["neighbours"]] == ["unfriendly", "friendly"]
    inner = rep["wall"][0]
    assert inner["n"] > 0 and np.isfinite(inner["real"]) and np.isfinite(inner["model"])
    assert rep["latent"] == "prior"
    assert main(["diagnose", str(pipeline / "macro_vrnn"), "-n", "4", "--latent", "posterior"]) == 0
    post = _json(capsys)
    assert post["latent"] == "posterior" and post["wall"][0]["real"] == inner["real"]


@pytest.mark.parametrize("argv,match", [
    (["label", "{root}/nowhere", "--lf", "flock"], "meta.json"),
    (["label", "{root}/data", "--lf", "nope"], "unknown labeling function"),
    (["label", "{root}/data", "--lf", "window", "--param", "window"], "KEY=VALUE"),
    (["sample", "{root}/data", "-o", "{root}/s.npz"], "run.json"),
    (["train", "{root}/data", "-o", "{root}/y", "--model", "rnn_gauss", "--hparam", "bogus=1"], "hyper-parameters"),
    (["diagnose", "{root}/rnn_gauss"], "no VRNN core"),
])
def test_cli_errors_are_one_line(pipeline, capsys, argv, match):
    assert main([a.format(root=pipeline) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and "Traceback" not in err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "canocaps.extras.trajectories", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "simulate" in proc.stdout and "eval" in proc.stdout


def test_top_level_canocaps_cli_dispatches(pipeline, capsys):
    from canocaps.cli import main as canocaps_main

    assert canocaps_main(["extras", "trajectories", "plot", str(pipeline / "data"), "-o", str(pipeline / "top.png"),
                          "-n", "2", "--quiet"]) == 0
    assert _json(capsys)["n"] == 2
    assert canocaps_main(["extras", "trajectories", "label", str(pipeline / "nowhere"), "--lf", "flock"]) == 2
