"""Neural Mechanics through real Trainer runs on the digits: exact per-step identities,
momentum closed forms, LR schedules, resume and the CLI."""
from __future__ import annotations

import json

import pytest

from canocaps.extras.mechanics.cli import main
from canocaps.extras.mechanics.experiments import ExperimentConfig, run_experiment


def _run(**kw):
    cfg = ExperimentConfig(**{"batch_size": 128, "hidden": 6, **kw})
    return run_experiment(cfg, None, progress=False)


def _err(payload, name):
    return {g: s["rel_error"][name]["max"] for g, s in payload["summary"].items() if s["rel_error"][name]}


@pytest.mark.parametrize("model", ["mlp_bn", "conv"])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_exact_sgd_identities_float64(model, wd):
    """Q_{k+1} = (1 - lr wd) Q_k (translation) and (1 - lr wd)^2 Q_k + lr^2 G_k (scale, rescale)
    hold to 1e-6 relative at every step, one-step and iterated from Q_0 (bn eps 1e-14 so the
    scale symmetry is exact up to rounding)."""
    p = _run(model=model, steps=8, lr=0.2, weight_decay=wd, bn_eps=1e-14)
    kinds = {s["kind"] for s in p["summary"].values()}
    assert kinds == {"translation", "scale", "rescale"}
    for name in ("sgd_step", "discrete"):
        errs = _err(p, name)
        assert len(errs) == len(p["summary"])
        assert max(errs.values()) < 1e-6, (name, errs)
    # conservation is broken by the discrete steps for scale: gradient flow misses it
    flow = _err(p, "gradient_flow")
    assert all(v > 1e-6 for g, v in flow.items() if g.startswith("scale"))
    if wd == 0.0:  # translation is exactly conserved without weight decay
        assert all(v < 1e-12 for g, v in flow.items() if g.startswith("translation"))
    else:  # ... and decays exactly geometrically with it (measured, not assumed)
        meas = [row[0] for row in next(s for s in p["series"] if s["kind"] == "translation")["measured"]]
        assert abs(meas[-1] / meas[0] - (1 - 0.2 * wd) ** 8) < 1e-9


def test_default_bn_eps_breaks_scale_identity_by_the_measured_violation():
    """With eps = 1e-5 the scale residual is exactly the dropped term 2 lr (1 - lr wd) <g, theta>."""
    p = _run(model="mlp_bn", steps=6, lr=0.2, weight_decay=0.01, bn_eps=1e-5)
    for g, s in p["summary"].items():
        err, viol = s["rel_error"]["sgd_step"]["max"], s["symmetry_violation_max"]
        if s["kind"] == "scale":
            assert viol > 1e-8 and 0.9 * viol <= err <= 1.1 * viol + 1e-14, (g, err, viol)
        else:
            assert err < 1e-9 and viol < 1e-12


def test_momentum_closed_forms_mlp_bn():
    """SGD momentum 0.9, dampening 0, lr 0.01, wd 0.05, 30 steps: the exact translation recursion
    matches to 1e-9; the modified-equation closed form within 1e-3 relative (translation) and
    3e-2 (scale / rescale, forced by the measured velocity)."""
    p = _run(model="mlp_bn", steps=30, lr=0.01, momentum=0.9, weight_decay=0.05)
    s = p["summary"]
    assert all(v["regime"] == "over" for v in s.values())
    assert max(_err(p, "discrete").values()) < 1e-9  # only translation has an exact discrete form
    assert set(_err(p, "discrete")) == {g for g in s if g.startswith("translation")}
    mod = _err(p, "modified")
    assert max(v for g, v in mod.items() if g.startswith("translation")) < 1e-3
    assert max(mod.values()) < 3e-2
    # momentum changes the quantities much more than the ODE misses them
    flow = _err(p, "gradient_flow")
    assert max(flow.values()) > 5 * max(mod.values())


def test_momentum_dampening_nesterov_translation_exact():
    for kw in ({"dampening": 0.5}, {"nesterov": True}):
        p = _run(model="logreg", steps=10, lr=0.3, momentum=0.8, weight_decay=0.1, **kw)
        assert max(_err(p, "discrete").values()) < 1e-10, kw


def test_underdamped_regime_in_training():
    """lr 0.05, momentum 0.9, wd 0.5: b^2 = 0.01 < 4 a k = 0.095 -> under-damped: the translation
    quantity oscillates through zero; the exact recursion follows it to rounding and the ODE
    closed form within 6 % (measured 4.2 %)."""
    p = _run(model="logreg", steps=100, lr=0.05, momentum=0.9, weight_decay=0.5)
    s = next(iter(p["summary"].values()))
    assert s["regime"] == "under"
    meas = [row[0] for row in p["series"][0]["measured"]]
    assert sum(a * b < 0 for a, b in zip(meas, meas[1:])) >= 2
    assert s["rel_error"]["discrete"]["max"] < 1e-12
    assert s["rel_error"]["modified"]["max"] < 0.06


def test_lr_schedule_read_per_step():
    """MultiStepLR at epoch 1 (6 steps per epoch at batch 256): the recorded lr drops and the
    exact identities still hold across the change."""
    p = _run(model="mlp", steps=10, lr=0.2, weight_decay=0.05, batch_size=256, lr_milestones=[1],
             lr_gamma=0.25)
    lrs = p["series"][0]["lr"]
    assert lrs[:6] == [0.2] * 6 and lrs[6:] == [0.05] * 4
    assert max(_err(p, "sgd_step").values()) < 1e-6
    assert max(_err(p, "discrete").values()) < 1e-6


def test_resume_gives_the_same_series(tmp_path):
    cfg = dict(model="mlp", steps=4, lr=0.1, weight_decay=0.01, batch_size=256, hidden=6)
    run_experiment(ExperimentConfig(**cfg), tmp_path / "a", progress=False)
    cfg["steps"] = 8
    resumed = run_experiment(ExperimentConfig(**cfg), tmp_path / "a", progress=False, resume=True)
    straight = run_experiment(ExperimentConfig(**cfg), None, progress=False)
    assert resumed["steps"] == straight["steps"] == 8
    for ra, rb in zip(resumed["series"], straight["series"]):
        assert len(ra["measured"]) == 9
        for name in ("measured", "discrete", "modified"):
            for x, y in zip(ra[name], rb[name]):
                assert x == pytest.approx(y, rel=1e-12, abs=1e-15)


def test_cli_detect_and_run(tmp_path, capsys):
    assert main(["detect", "--model", "mlp_bn", "--json", "-"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["summary"] == {"translation": 1, "scale": 2, "rescale": 2}
    out = tmp_path / "run"
    args = ["run", "--model", "logreg", "--out", str(out), "--steps", "3", "--no-progress"]
    assert main(args) == 0
    assert (out / "mechanics.json").is_file() and (out / "mechanics.png").stat().st_size > 1000
    data = json.loads((out / "mechanics.json").read_text())
    assert data["steps"] == 3 and data["symmetries"]["summary"]["translation"] == 1
    capsys.readouterr()
    assert main(args) == 2  # refuses to overwrite
    err = capsys.readouterr().err
    assert "exists" in err and err.count("\n") == 1
    assert main(args + ["--force"]) == 0
    assert main(["run", "--model", "mlp", "--out", str(tmp_path / "x"), "--momentum", "1.5"]) == 2


def test_non_sgd_optimizer_measures_without_predictions():
    """With Adam the quantities are still measured, but no SGD closed form is claimed."""
    import torch

    from canocaps.extras.mechanics.experiments import run_with_model
    from canocaps.extras.digits import load_digits
    from canocaps.extras.mechanics.models import build_model, example_input
    from canocaps.train import TrainConfig

    net = build_model("logreg").double()
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=256, max_steps=3, epochs=1, device="cpu",
                      monitor=None, progress=False)
    p = run_with_model(net, load_digits("train", dtype=torch.float64, method="rng_permutation"), example_input("logreg", dtype=torch.float64), None, cfg,
                       output_softmax=True)
    s = next(iter(p["summary"].values()))
    assert s["steps"] == 3 and all(v is None for v in s["rel_error"].values())
    meas = p["series"][0]["measured"]
    assert len(meas) == 4 and meas[0] != meas[-1]  # Adam does not conserve <theta, 1>


def test_cli_detect_user_module(capsys):
    args = ["detect", "--module", "canocaps.extras.mechanics.models:MLP", "--input-shape", "2,64", "--json", "-"]
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["summary"] == {"translation": 0, "scale": 0, "rescale": 2}  # logits: no softmax declared
    assert main(args[:-2] + ["--output-softmax", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["translation"] == 1
    assert main(["detect", "--module", "no_such_pkg:X", "--input-shape", "2"]) == 2
    assert main(["detect", "--module", "canocaps.extras.mechanics.models:MLP", "--input-shape", "2,a"]) == 2
    err = capsys.readouterr().err
    assert "no_such_pkg" in err and "--input-shape" in err
