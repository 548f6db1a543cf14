"""Neural Mechanics, the Hessian side: each symmetry's constraint on the Hessian checked with
Hessian-vector products on the detected groups (float64), the paper's closed form for scale
with weight decay beside the exact recursion, and the VGG-style net with batch norm."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.extras.mechanics import dynamics as dyn
from canocaps.extras.mechanics.cli import main
from canocaps.extras.mechanics.experiments import ExperimentConfig, run_experiment
from canocaps.extras.mechanics.hessian import check_hessian_constraints, hvp
from canocaps.extras.digits import load_digits
from canocaps.extras.mechanics.models import IMAGE_SIZE, build_model, example_input
from canocaps.extras.mechanics.symmetry import detect_symmetries


def _setup(kind: str, bn_eps: float = 1e-12, batch: int = 16, hidden: int | None = None):
    torch.manual_seed(0)
    net = build_model(kind, hidden, bn_eps=bn_eps).double().train()
    report = detect_symmetries(net, example_input(kind, dtype=torch.float64), output_softmax=True)
    side = IMAGE_SIZE.get(kind)
    data = load_digits("train", flatten=side is None, dtype=torch.float64, method="rng_permutation",
                       upsample=(side or 8) // 8)
    x, y = data.x[:batch], data.y[:batch]
    return net, report, (lambda: F.cross_entropy(net(x), y))


def test_hvp_matches_an_explicit_hessian():
    a = torch.randn(5, 5, dtype=torch.float64)
    a = a @ a.T
    theta = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    v = torch.randn(5, dtype=torch.float64)
    g, (hv,) = hvp(lambda: 0.5 * theta @ a @ theta + (theta ** 3).sum(), {"t": theta}, [{"t": v}])
    torch.testing.assert_close(g["t"], a @ theta.detach() + 3 * theta.detach() ** 2)
    torch.testing.assert_close(hv["t"], a @ v + 6 * theta.detach() * v)


@pytest.mark.parametrize("kind,hidden", [("logreg", None), ("mlp", 8), ("mlp_bn", 8), ("conv", 4), ("vgg", 4)])
def test_hessian_constraints_hold_on_every_detected_group(kind, hidden):
    """H 1_A = 0 (translation), H theta_A = -g_A (scale), H D theta = -D g (rescale), for all
    slots at once (random combination): float precision, except scale through batch norm,
    exact only up to eps / var (eps = 1e-12 here)."""
    net, report, loss = _setup(kind, hidden=hidden)
    res = check_hessian_constraints(report, net, loss)
    assert set(res["groups"]) == {f"{g.kind}:{g.name}" for g in report.groups}
    for name, r in res["groups"].items():
        assert r["scale"] > 1e-6, (name, r)  # H acts non-trivially on directions of that size
        assert r["rel_error"] < (1e-8 if r["kind"] == "scale" else 1e-12), (name, r)
    if kind == "vgg":
        assert report.summary() == {"translation": 1, "scale": 4, "rescale": 4}


def test_hessian_check_fails_when_the_symmetry_is_broken_or_the_form_is_wrong():
    net, report, loss = _setup("mlp_bn", bn_eps=0.1, hidden=8)  # large eps: scale broken
    res = check_hessian_constraints(report, net, loss, slots=2)
    for name, r in res["groups"].items():
        assert r["slots_checked"] == 2
        assert (r["rel_error"] > 1e-2) if r["kind"] == "scale" else (r["rel_error"] < 1e-12), (name, r)
    net, report, loss = _setup("mlp", hidden=8)
    wrong = dataclasses.replace(report, groups=[dataclasses.replace(g, kind="translation")
                                                for g in report.groups if g.kind == "rescale"])
    assert check_hessian_constraints(wrong, net, loss)["max_rel_error"] > 1e-2  # H 1 != 0 there
    with pytest.raises(CanocapsInputError, match="not in the model"):
        check_hessian_constraints(report, net, loss, prefix="net.")


def test_paper_closed_form_for_scale_with_weight_decay():
    q, g = torch.tensor([2.0, 5.0], dtype=torch.float64), torch.tensor([0.3, 0.1], dtype=torch.float64)
    torch.testing.assert_close(dyn.paper_scale_step(q, g, 0.1, 0.0), dyn.sgd_step("scale", q, g, 0.1, 0.0))
    lr, wd = 0.1, 0.05
    paper, exact = dyn.paper_scale_step(q, g, lr, wd), dyn.sgd_step("scale", q, g, lr, wd)
    assert torch.all((paper - exact).abs() < 2 * (lr * wd) ** 2 * q) and torch.all(paper != exact)
    # with G = 0 it is the paper's e^{-2 lam t} decay exactly
    torch.testing.assert_close(dyn.paper_scale_step(q, 0 * g, lr, wd), q * math.exp(-2 * lr * wd))


def test_paper_series_in_a_training_run():
    """Plain SGD with weight decay: the paper's closed form (measured ||g||^2, exponential decay)
    tracks the measured scale / rescale quantities far better than gradient flow, and less
    exactly than the exact discrete recursion."""
    p = run_experiment(ExperimentConfig(model="mlp_bn", steps=20, lr=0.2, weight_decay=0.05, bn_eps=1e-14,
                                        batch_size=128, hidden=6), None, progress=False)
    for name, s in p["summary"].items():
        err = {k: s["rel_error"][k]["max"] for k in ("discrete", "paper", "gradient_flow")}
        if s["kind"] == "translation":
            assert err["paper"] == pytest.approx(err["gradient_flow"])
        else:
            assert err["discrete"] < 1e-9 < err["paper"] < 1e-2 and err["paper"] < 0.2 * err["gradient_flow"], (name, err)


def test_cli_hessian(tmp_path, capsys):
    out = tmp_path / "h.json"
    assert main(["hessian", "--model", "mlp", "--hidden", "6", "--batch", "8", "--slots", "2",
                 "--json", str(out)]) == 0
    assert "rescale:fc1~fc2" in capsys.readouterr().out and out.is_file()
    assert main(["hessian", "--model", "mlp", "--json", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["hessian", "--model", "mlp", "--slots", "x"]) == 2
