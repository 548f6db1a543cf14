"""canocaps.extras.dni: SG modules, FA/DFA, the surrogate-gradient identity, analysis."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.extras.dni import (DirectFeedbackSG, DNIModule, FAConv2d, FALinear, LinearSG, MLPSG, cnn_layers,
                                 least_squares, linear_cka, linear_cka_naive, make_sg, mlp_layers, per_sample_loss,
                                 split_sequential, to_feedback_alignment)


def _randomise(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


# -- SG modules ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["linear", "mlp"])
@pytest.mark.parametrize("shape", [(7,), (4, 5, 6)])
@pytest.mark.parametrize("ctx", [0, 3])
def test_sg_shapes_and_zero_init(kind, shape, ctx):
    sg = make_sg(kind, shape, context_dim=ctx, hidden=8, hidden_layers=2)
    h = torch.randn(5, *shape)
    c = torch.randn(5, ctx) if ctx else None
    g = sg(h, c)
    assert g.shape == h.shape
    assert torch.count_nonzero(g) == 0  # zero-initialised output layer
    # ...but the SG can learn: its output layer gets a non-zero gradient
    (g * torch.randn_like(g)).sum().backward()
    last = list(sg.parameters())[-2]  # output weight
    assert last.grad is not None and last.grad.abs().sum() > 0


def test_linear_sg_is_hA_plus_yB_plus_C():
    sg = LinearSG((4,), context_dim=3)
    _randomise(sg)
    a, b, c = sg.matrices()
    h, y = torch.randn(6, 4), torch.randn(6, 3)
    torch.testing.assert_close(sg(h, y), h @ a + y @ b + c)


def test_conv_sg_context_is_spatially_constant_and_3x3_mixes_pixels():
    sg = LinearSG((2, 5, 5), context_dim=3, kernel_size=3)
    _randomise(sg)
    h = torch.zeros(1, 2, 5, 5)
    y = torch.randn(1, 3)
    g = sg(h, y)
    inner = g[..., 1:-1, 1:-1]
    assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner))
    h2 = h.clone()
    h2[0, 0, 2, 2] = 1.0
    diff = (sg(h2, y) - g).abs().sum(1)[0]
    assert diff[1, 1] > 0 and diff[0, 0] == 0  # neighbour affected, far pixel not
    one = LinearSG((2, 5, 5), kernel_size=1)
    _randomise(one)
    diff1 = (one(h2) - one(h)).abs().sum(1)[0]
    assert diff1[1, 1] == 0 and diff1[2, 2] > 0


def test_sg_bad_input():
    with pytest.raises(CanocapsInputError):
        make_sg("linear", (3, 4))
    with pytest.raises(CanocapsInputError):
        make_sg("cubic", (3,))
    sg = MLPSG((4,), context_dim=2, hidden=8)
    with pytest.raises(CanocapsInputError, match="conditioned"):
        sg(torch.randn(3, 4))
    with pytest.raises(CanocapsInputError, match="shape"):
        sg(torch.randn(3, 5), torch.randn(3, 2))
    with pytest.raises(CanocapsInputError):
        LinearSG((2, 4, 4), kernel_size=2)


# -- FA / DFA --------------------------------------------------------------------------
def test_fa_linear_forward_exact_backward_uses_feedback():
    torch.manual_seed(0)
    fa = FALinear(5, 3)
    ref = nn.Linear(5, 3)
    ref.load_state_dict({"weight": fa.weight.detach(), "bias": fa.bias.detach()})
    x1 = torch.randn(4, 2, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    go = torch.randn(4, 2, 3)
    out1, out2 = fa(x1), ref(x2)
    torch.testing.assert_close(out1, out2)
    out1.backward(go)
    out2.backward(go)
    torch.testing.assert_close(fa.weight.grad, ref.weight.grad)
    torch.testing.assert_close(fa.bias.grad, ref.bias.grad)
    torch.testing.assert_close(x1.grad, go @ fa.feedback)
    assert not torch.allclose(x1.grad, x2.grad)


def test_fa_conv_backward_uses_feedback_kernel():
    torch.manual_seed(0)
    fa = FAConv2d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(2, 2, 7, 7, requires_grad=True)
    out = fa(x)
    torch.testing.assert_close(out, F.conv2d(x, fa.weight, fa.bias, 2, 1))
    go = torch.randn_like(out)
    out.backward(go)
    xr = x.detach().clone().requires_grad_(True)
    w = fa.weight.detach().clone().requires_grad_(True)
    F.conv2d(xr, fa.feedback, None, 2, 1).backward(go)  # input gradient with the feedback kernel
    torch.testing.assert_close(x.grad, xr.grad)
    F.conv2d(x.detach(), w, None, 2, 1).backward(go)
    torch.testing.assert_close(fa.weight.grad, w.grad)


def test_to_feedback_alignment_keeps_weights():
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Sequential(nn.Conv2d(1, 2, 3)))
    w = net[0].weight.detach().clone()
    to_feedback_alignment(net)
    assert isinstance(net[0], FALinear) and isinstance(net[2][0], FAConv2d)
    torch.testing.assert_close(net[0].weight.detach(), w)


def test_dfa_sg_is_e_times_B():
    dfa = DirectFeedbackSG(3, (2, 2, 2), generator=torch.Generator().manual_seed(0))
    e = torch.randn(5, 3)
    torch.testing.assert_close(dfa(e), (e @ dfa.feedback).reshape(5, 2, 2, 2))
    assert not any(True for _ in dfa.parameters())  # fixed: nothing to learn
    with pytest.raises(CanocapsInputError):
        dfa(torch.randn(5, 4))


# -- the surrogate-gradient identity ------------------------------------------------------
def _module(mode, target="true", conv=False):
    torch.manual_seed(0)
    if conv:
        x = torch.randn(6, 1, 6, 6)
        blocks = cnn_layers(1, 6, 4, channels=(3, 4))
    else:
        x = torch.randn(6, 5)
        blocks = mlp_layers([5, 7, 6, 4], activation="tanh")
    y = torch.randint(0, 4, (6,))
    m = DNIModule(blocks, x[:2], mode=mode, sg="mlp", sg_hidden=8, sg_hidden_layers=1, target=target,
                  sg_kernel_size=3, sg_loss_weight=0.7)
    _randomise(m.sgs)  # a zero-initialised SG would make the identity trivial
    return m, x, y


def _grads(module, params):
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]


@pytest.mark.parametrize("mode,target,conv", [("dni", "true", False), ("cdni", "true", False),
                                              ("cdni", "bootstrap", False), ("cdni", "bootstrap", True),
                                              ("dfa", "true", False)])
def test_surrogate_gradients_equal_intended_updates(mode, target, conv):
    m, x, y = _module(mode, target, conv)
    out = m.training_step({"x": x, "y": y}, 0)
    out["loss"].backward()
    got = {name: p.grad.detach().clone() for name, p in m.named_parameters() if p.grad is not None}

    # reference, computed from a connected forward pass with plain autograd
    n = x.shape[0]
    b0, b1, b2 = m.blocks
    h0 = b0(x)
    h1 = b1(h0)
    o = b2(h1)
    per = per_sample_loss(o, y, "ce")
    e, t0_true, t1_true = torch.autograd.grad(per.sum(), [o, h0, h1], retain_graph=True)
    ctx = F.one_hot(y, 4).float() if mode == "cdni" else None
    if mode == "dfa":
        g0, g1 = m.sgs[0](e), m.sgs[1](e)
    else:
        p0, p1 = m.sgs[0](h0.detach(), ctx), m.sgs[1](h1.detach(), ctx)
        g0, g1 = p0.detach(), p1.detach()
        if target == "true":
            t0, t1 = t0_true, t1_true
        else:
            t1 = t1_true  # last interface: the next block is the output block
            t0 = torch.autograd.grad(h1, h0, grad_outputs=g1, retain_graph=True)[0]
        sg_loss = 0.7 * (((p0 - t0) ** 2).flatten(1).sum(1).mean() + ((p1 - t1) ** 2).flatten(1).sum(1).mean())
        sg_params = list(m.sgs.parameters())
        ref_sg = torch.autograd.grad(sg_loss, sg_params, retain_graph=True)
        for (name, _), r in zip(m.sgs.named_parameters(), ref_sg):
            torch.testing.assert_close(got[f"sgs.{name}"], r, rtol=1e-5, atol=1e-6)
    ref = {}
    for i, (blk, h, g) in enumerate([(b0, h0, g0), (b1, h1, g1)]):
        for (name, p), r in zip(blk.named_parameters(),
                                torch.autograd.grad(h, list(blk.parameters()), grad_outputs=g / n, retain_graph=True)):
            ref[f"blocks.{i}.{name}"] = r
    for (name, p), r in zip(b2.named_parameters(), torch.autograd.grad(per.mean(), list(b2.parameters()))):
        ref[f"blocks.2.{name}"] = r
    for name, r in ref.items():
        torch.testing.assert_close(got[name], r, rtol=1e-5, atol=1e-6, msg=name)
    # the synthetic updates differ from backprop's (otherwise the test would prove nothing)
    assert not torch.allclose(got["blocks.0.0.weight"], torch.autograd.grad(
        per_sample_loss(m(x), y, "ce").mean(), b0[0].weight)[0], atol=1e-4)
    if target == "true" or mode == "dfa":
        assert -1.0 <= float(out["sg_cos"]) <= 1.0


def test_backprop_mode_is_plain_backprop_and_true_sg_is_exact():
    m, x, y = _module("backprop")
    m.training_step({"x": x, "y": y}, 0)["loss"].backward()
    got = _grads(m, list(m.blocks.parameters()))
    ref = torch.autograd.grad(per_sample_loss(m(x), y, "ce").mean(), list(m.blocks.parameters()))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)
    assert len(m.sgs) == 0


def test_dni_module_validation():
    x = torch.randn(2, 5)
    with pytest.raises(CanocapsInputError, match="mode"):
        DNIModule(mlp_layers([5, 3]), x, mode="magic")
    with pytest.raises(CanocapsInputError, match="blocks"):
        DNIModule(mlp_layers([5, 3]), x, mode="dni")
    with pytest.raises(CanocapsInputError, match="num_classes"):
        DNIModule(mlp_layers([5, 4, 3]), x, mode="dni", num_classes=10)
    with pytest.raises(CanocapsInputError):
        split_sequential([nn.Identity()] * 3, [2, 1])
    blocks = split_sequential([nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)], [2])
    assert len(blocks) == 2 and len(blocks[0]) == 2


def test_fa_mode_changes_only_the_backward():
    torch.manual_seed(0)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    torch.manual_seed(1)
    bp = DNIModule(mlp_layers([5, 6, 3]), x[:2], mode="backprop")
    torch.manual_seed(1)
    fa = DNIModule(mlp_layers([5, 6, 3]), x[:2], mode="fa")
    torch.testing.assert_close(bp(x), fa(x))
    for m in (bp, fa):
        m.training_step({"x": x, "y": y}, 0)["loss"].backward()
    last_bp, last_fa = bp.blocks[1][0].weight.grad, fa.blocks[1][0].weight.grad
    torch.testing.assert_close(last_bp, last_fa)  # output layer: true gradient in both
    assert not torch.allclose(bp.blocks[0][0].weight.grad, fa.blocks[0][0].weight.grad)


# -- analysis ---------------------------------------------------------------------------
def test_least_squares_satisfies_normal_equations():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=g), torch.randn(50, 2, generator=g)
    w, b = least_squares(x, y)
    r = x.double() @ w + b - y.double()
    a = torch.cat([x.double(), torch.ones(50, 1, dtype=torch.float64)], 1)
    assert (a.T @ r).abs().max() < 1e-10


def test_linear_cka_matches_naive_and_invariances():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    y = x @ torch.randn(6, 5, generator=g) + 0.5 * torch.randn(40, 5, generator=g)
    assert abs(linear_cka(x, y) - linear_cka_naive(x, y)) < 1e-10
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    assert abs(linear_cka(x, 3.0 * x.double() @ q + 1.0) - 1.0) < 1e-10
    z = torch.randn(40, 5, generator=g)
    assert linear_cka(x, z) < 0.5
    with pytest.raises(CanocapsInputError):
        linear_cka(x, z[:30])


# --- Kickback in the unified view -------------------------------------------------------------


def test_kickback_update_is_summed_error_times_outgoing_weights():
    """Kickback (one output, MSE): block 0 is updated with g_n = (1^T e_n) J_1^T 1, here
    e_n * relu'(h1) W1 summed over the next layer's units; the last block gets the true gradient."""
    torch.manual_seed(0)
    blocks = [nn.Sequential(nn.Linear(4, 5), nn.ReLU()), nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
              nn.Sequential(nn.Linear(3, 1))]
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    m = DNIModule(blocks, x[:2], mode="kickback", loss="mse")
    m.training_step({"x": x, "y": y}, 0)["loss"].backward()
    b0, b1, b2 = m.blocks
    h0 = b0(x)
    h1 = b1(h0)
    e = b2(h1) - y  # d(0.5 ||o - y||^2)/do, one output
    a1 = h0 @ b1[0].weight.T + b1[0].bias
    g0 = e * ((a1 > 0).float() @ b1[0].weight)  # (B, 5): e_n * sum_k 1[k active] W1[k, j]
    ref = torch.autograd.grad(h0, b0[0].weight, grad_outputs=g0 / 8)[0]
    torch.testing.assert_close(b0[0].weight.grad, ref)
    assert float((ref - torch.autograd.grad(0.5 * (m(x) - y).pow(2).sum(1).mean(), b0[0].weight)[0]).abs().max()) > 1e-4


def test_kickback_trains_a_one_output_regression():
    torch.manual_seed(0)
    x = torch.randn(128, 4)
    y = (x @ torch.tensor([[1.0], [-0.5], [0.3], [0.8]])).relu()
    m = DNIModule(mlp_layers([4, 16, 1]), x[:2], mode="kickback", loss="mse")
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    start = float(m.validation_step({"x": x, "y": y})["loss"])
    for step in range(300):
        opt.zero_grad()
        m.training_step({"x": x, "y": y}, step)["loss"].backward()
        opt.step()
    assert float(m.validation_step({"x": x, "y": y})["loss"]) < 0.2 * start


# --- update-decoupled (pipelined) training -------------------------------------------------------


def test_pipelined_blocks_read_stale_activations_and_update_without_waiting():
    """delay=1: at step t the last block trains on the activation (and labels) block 0 produced
    at step t-1, while block 0 updates from its SG on batch t in the same step."""
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)  # three batches
    y = torch.tensor([[0] * 6, [1] * 6, [2] * 6])
    m = DNIModule(mlp_layers([4, 5, 3]), x[0, :2], mode="cdni", sg="linear", target="bootstrap", delay=1)
    _randomise(m.sgs)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    w0 = m.blocks[0][0].weight.detach().clone()
    w1 = m.blocks[1][0].weight.detach().clone()
    out = m.training_step({"x": x[0], "y": y[0]}, 0)
    assert "task_loss" not in out  # the upper block has nothing to read yet
    h_stale = m.blocks[0](x[0]).detach()  # what block 0 sent up at step 0
    opt.zero_grad()
    out["loss"].backward()
    assert m.blocks[1][0].weight.grad is None or float(m.blocks[1][0].weight.grad.abs().max()) == 0.0
    opt.step()
    assert float((m.blocks[0][0].weight.detach() - w0).abs().max()) > 0  # block 0 moved at once, from its SG
    torch.testing.assert_close(m.blocks[1][0].weight, w1)
    out = m.training_step({"x": x[1], "y": y[1]}, 1)
    expected = per_sample_loss(m.blocks[1](h_stale), y[0], "ce").mean()  # batch 0's activation and labels
    torch.testing.assert_close(out["task_loss"], expected.detach())
    with torch.no_grad():
        assert float((m.blocks[1](m.blocks[0](x[0])) - m.blocks[1](h_stale)).abs().max()) > 0  # it was stale
    with pytest.raises(CanocapsInputError, match="bootstrap"):
        DNIModule(mlp_layers([4, 5, 3]), x[0, :2], mode="cdni", target="true", delay=1)


def test_pipelined_cdni_still_reaches_the_deep_linear_optimum():
    from canocaps.extras.dni.experiments import DeepLinearConfig, run_deeplinear

    res = run_deeplinear(DeepLinearConfig(n=64, d=4, hidden=4, k=2, depth=2, steps=800, lr=0.1,
                                          record_every=100, modes=["cdni"], target="bootstrap", delay=2))
    r = res["results"]["cdni"]
    assert r["final_loss"] < 1e-4 * r["curve"]["loss"][0], (r["final_loss"], r["curve"]["loss"][0])
