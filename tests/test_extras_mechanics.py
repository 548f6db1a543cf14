"""Neural Mechanics: symmetry detection, quantities and closed forms (no training here)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from canocaps.errors import CanocapsInputError
from canocaps.extras.mechanics import dynamics as dyn
from canocaps.extras.mechanics import quantities as qty
from canocaps.extras.mechanics.models import build_model, example_input
from canocaps.extras.mechanics.symmetry import detect_symmetries


def _groups(report):
    return sorted((g.kind, g.name, g.slots) for g in report.groups)


# ----------------------------------------------------------------------------- detection

def test_detect_logreg_translation_only():
    rep = detect_symmetries(build_model("logreg"), example_input("logreg"), output_softmax=True)
    assert _groups(rep) == [("translation", "fc", 65)]  # 64 input columns + the bias


def test_detect_logreg_without_softmax_finds_nothing():
    rep = detect_symmetries(build_model("logreg"), example_input("logreg"), output_softmax=False)
    assert rep.groups == [] and any("output_softmax" in n for n in rep.notes)


def test_detect_mlp():
    rep = detect_symmetries(build_model("mlp", hidden=16), example_input("mlp"), output_softmax=True)
    assert _groups(rep) == [("rescale", "fc1~fc2", 16), ("rescale", "fc2~fc3", 16), ("translation", "fc3", 17)]


def test_detect_mlp_bn():
    rep = detect_symmetries(build_model("mlp_bn", hidden=16), example_input("mlp_bn"), output_softmax=True)
    assert _groups(rep) == [("rescale", "bn1~fc2", 16), ("rescale", "bn2~fc3", 16), ("scale", "fc1", 16),
                            ("scale", "fc2", 16), ("translation", "fc3", 17)]
    # no rescale across a batch norm: fc1 -> bn1 is scale-invariant, not rescale
    assert not any(g.name.startswith("fc1~") for g in rep.groups)


def test_detect_conv():
    rep = detect_symmetries(build_model("conv", hidden=4), example_input("conv"), output_softmax=True)
    assert _groups(rep) == [("rescale", "bn~fc", 4), ("rescale", "conv1~conv2", 4), ("scale", "conv2", 4),
                            ("translation", "fc", 4 * 16 + 1)]
    rescale_fc = next(g for g in rep.groups if g.name == "bn~fc")
    assert [m.block for m in rescale_fc.members if m.param == "fc.weight"] == [16]  # 4x4 map per channel


class _Mixed(nn.Module):
    """LayerNorm, GroupNorm, residual, GELU, a shared module and an explicit log_softmax."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.ln = nn.LayerNorm(8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 8)
        self.conv = nn.Conv1d(8, 8, 1)
        self.gn = nn.GroupNorm(2, 8)
        self.d = nn.Linear(8, 8)
        self.shared = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.ln(self.a(x))                         # a: scale (whole layer) + translation
        h = h + torch.relu(self.b(h))                  # residual: b's output ends in an add
        h = torch.nn.functional.gelu(self.c(h))        # GELU is not homogeneous
        h = self.gn(self.conv(h.unsqueeze(-1))).squeeze(-1)  # conv: scale per group of 4 channels
        h = self.shared(torch.relu(self.shared(torch.relu(self.d(h)))))  # shared module: dropped
        return torch.log_softmax(self.head(h), dim=-1)


def test_detect_layernorm_groupnorm_residual_shared():
    rep = detect_symmetries(_Mixed(), torch.zeros(5, 6), output_softmax=False)
    got = _groups(rep)
    assert ("scale", "a", 1) in got and ("translation", "a", 7) in got
    assert ("scale", "conv", 2) in got
    assert ("translation", "head", 9) in got
    assert not any(name.startswith(("b~", "c~")) for _, name, _ in got)
    assert not any("shared" in name for _, name, _ in got)
    assert any("shared" in n and "more than once" in n for n in rep.notes)
    # the LayerNorm affine -> residual add: no rescale; GroupNorm affine -> squeeze: not recognised
    assert ("rescale", "ln~b", 8) not in got


def test_untraceable_model_one_line_error():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return self.fc(x)
            return -self.fc(x)

    with pytest.raises(CanocapsInputError, match="cannot be traced by torch.fx") as exc:
        detect_symmetries(Branchy(), torch.zeros(2, 3))
    assert "\n" not in str(exc.value)


def test_detection_does_not_touch_batchnorm_stats():
    net = build_model("mlp_bn", hidden=8)
    before = net.bn1.running_mean.clone()
    net.train()
    detect_symmetries(net, torch.randn(7, 64), output_softmax=True)
    assert torch.equal(net.bn1.running_mean, before) and net.training


def test_unknown_kind_rejected():
    with pytest.raises(CanocapsInputError, match="unknown symmetry kind"):
        detect_symmetries(build_model("logreg"), example_input("logreg"), kinds=("gauge",))


# ----------------------------------------------------------------------------- invariances

def _loss(net, x, y):
    return nn.functional.cross_entropy(net(x), y)


@pytest.mark.parametrize("kind", ["logreg", "mlp", "mlp_bn", "conv"])
def test_detected_groups_are_real_symmetries(kind):
    """Applying each detected transformation to one slot leaves the loss unchanged, and the
    gradient is orthogonal to the generator (<g, 1> = 0 / signed <g, theta> = 0)."""
    torch.manual_seed(0)
    net = build_model(kind, hidden=6, bn_eps=1e-14).double().train()
    x = torch.rand((32, 1, 8, 8) if kind == "conv" else (32, 64), dtype=torch.float64)
    y = torch.randint(0, 10, (32,))
    rep = detect_symmetries(net, x[:4], output_softmax=True)
    base = _loss(net, x, y)
    net.zero_grad()
    base.backward()
    params = dict(net.named_parameters())
    grads = {n: p.grad.clone() for n, p in params.items()}
    for g in rep.groups:
        if g.kind == "translation":
            assert qty.linear_form(g, grads).abs().max() < 1e-12
        else:
            assert qty.bilinear_form(g, grads, params).abs().max() < 1e-10
        slot = g.slots - 1
        saved = {p: params[p].detach().clone() for p in g.params}
        with torch.no_grad():
            for m in g.members:
                row = slot - m.offset
                if not 0 <= row < m.num_slots(params[m.param]):
                    continue
                if m.layout == "cols":  # input channels: a true view of the parameter's slice
                    v = params[m.param].data.movedim(1, 0)[row * m.block:(row + 1) * m.block]
                else:  # rows / columns / all of a contiguous tensor: reshape is a view
                    v = m.view(params[m.param].data)[row]
                if g.kind == "translation":
                    v += 0.37
                elif g.kind == "scale":
                    v *= 1.9
                else:
                    v *= 1.9 if m.sign < 0 else 1 / 1.9
            moved = _loss(net, x, y).item()
            for p, t in saved.items():
                params[p].copy_(t)
        assert abs(moved - base.item()) < 1e-10, (g.kind, g.name)


def test_quantity_matches_reference_loops():
    torch.manual_seed(1)
    net = build_model("conv", hidden=3).double()
    rep = detect_symmetries(net, example_input("conv", dtype=torch.float64), output_softmax=True)
    params = dict(net.named_parameters())
    for g in rep.groups:
        torch.testing.assert_close(qty.quantity(g, params), qty.quantity_reference(g, params), rtol=1e-12,
                                   atol=1e-12)


# ----------------------------------------------------------------------------- closed forms

@pytest.mark.parametrize("k,regime", [(0.05, "over"), (0.2, "over"),
                                      (0.1 ** 2 / (4 * 0.0095), "critical"), (2.0, "under"), (0.0, "over")])
def test_oscillator_closed_form_vs_matrix_exponential(k, regime):
    a, b = 0.0095, 0.1  # lr 0.01, momentum 0.9
    assert dyn.damping_regime(a, b, k) == regime
    x0 = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    v0 = torch.tensor([0.0, 3.0, -1.0], dtype=torch.float64)
    for f in (0.0, 0.4):
        for t in (0.01, 0.7, 5.0):
            x, v = dyn.forced_oscillator_step(x0, v0, a, b, k, f, t)
            xr, vr = dyn.damped_oscillator_reference(x0, v0, a, b, k, t, f)
            torch.testing.assert_close(x, xr, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(v, vr, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("wd", [0.05, 0.1 ** 2 / (4 * 0.0095), 1.0])
def _ode_vs_discrete(wd: float, lr: float, beta: float = 0.9, horizon: float = 8.0) -> tuple[float, set]:
    q = torch.tensor([1.0, -2.0], dtype=torch.float64)
    x, v = q.clone(), -wd * q
    buf = None
    worst, signs = 0.0, set()
    for _ in range(round(horizon / lr)):
        q, buf = dyn.momentum_translation_step(q, buf, lr, wd, beta)
        a, b, k = dyn.momentum_coefficients("translation", lr, beta, 0.0, wd)
        x, v = dyn.forced_oscillator_step(x, v, a, b, k, 0.0, lr)
        worst = max(worst, float((x - q).abs().max() / 2.0))
        signs.add(bool(q[0] > 0))
    return worst, signs


@pytest.mark.parametrize("wd", [0.05, 0.1 ** 2 / (4 * 0.0095), 1.0])
def test_momentum_modified_equation_tracks_exact_translation_recursion(wd):
    """The ODE closed form follows torch's discrete momentum recursion in all three regimes
    (momentum 0.9, t up to 8). It is an O(lr) model: at lr 0.01 the error is < 3 % of
    max |Q0| (measured 0.2 % / 0.9 % / 2.5 % for over / critical / under), and halving lr
    shrinks it by at least 1.5x."""
    worst, signs = _ode_vs_discrete(wd, 0.01)
    worst_half, _ = _ode_vs_discrete(wd, 0.005)
    assert worst < 3e-2
    assert worst_half < worst / 1.5
    if dyn.damping_regime(*dyn.momentum_coefficients("translation", 0.01, 0.9, 0.0, wd)) == "under":
        assert signs == {True, False}  # under-damped: the quantity overshoots zero
    else:
        assert signs == {True}


def test_gradient_flow_and_sgd_step():
    q0 = torch.tensor([2.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(dyn.gradient_flow("scale", q0, 3.0, 0.1), q0 * math.exp(-0.6))
    torch.testing.assert_close(dyn.gradient_flow("translation", q0, torch.tensor([0.0, 3.0]), 0.1)[1],
                               q0 * math.exp(-0.3))
    g = torch.tensor([0.5, 0.25], dtype=torch.float64)
    torch.testing.assert_close(dyn.sgd_step("rescale", q0, g, 0.1, 0.2), 0.98 ** 2 * q0 + 0.01 * g)
    torch.testing.assert_close(dyn.sgd_step("translation", q0, None, 0.1, 0.2), 0.98 * q0)
    with pytest.raises(CanocapsInputError):
        dyn.sgd_step("scale", q0, None, 0.1, 0.0)
