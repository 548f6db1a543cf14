"""canocaps.nn.GroupedLinear: the one grouped linear layer (capsule decoder, trajectory models)."""
from __future__ import annotations

import math

import pytest
import torch

from canocaps.nn import GroupedLinear


@pytest.mark.parametrize("bias", [True, False])
def test_channels_first_matches_per_group_loop(bias):
    torch.manual_seed(0)
    layer = GroupedLinear(4, 6, 5, bias=bias)
    assert layer.weight.shape == (4, 5, 6) and (layer.bias is None or layer.bias.shape == (4, 5, 1))
    x = torch.randn(3, 4, 6, 7)  # (B, G, in, P)
    y = layer(x)
    assert y.shape == (3, 4, 5, 7)
    torch.testing.assert_close(y, layer.forward_reference(x))


@pytest.mark.parametrize("groups,bias", [(1, True), (5, True), (5, False)])
def test_channels_last_matches_per_group_loop(groups, bias):
    torch.manual_seed(0)
    layer = GroupedLinear(groups, 7, 3, bias=bias, channels_first=False)
    assert layer.weight.shape == (groups, 3, 7)
    x = torch.randn(4, 5, 7)  # (B, G', in); G = 1 shares one map over the 5
    y = layer(x)
    assert y.shape == (4, 5, 3)
    torch.testing.assert_close(y, layer.forward_reference(x))


def test_init_bound_and_draw_order():
    """Uniform in +-1/sqrt(in); channels-last values are the draws of a (G, in, out) buffer."""
    torch.manual_seed(3)
    a = GroupedLinear(2, 16, 4, channels_first=False)
    torch.manual_seed(3)
    w = torch.empty(2, 16, 4).uniform_(-0.25, 0.25)
    b = torch.empty(2, 4).uniform_(-0.25, 0.25)
    assert torch.equal(a.weight, w.transpose(1, 2)) and torch.equal(a.bias[..., 0], b)
    c = GroupedLinear(3, 100, 50)
    assert float(c.weight.detach().abs().max()) <= 1 / math.sqrt(100)


def test_channels_last_is_bitwise_the_old_trajectory_layer():
    """Same numbers as the formula of the (G, in, out) layer it replaced: forward and gradients."""
    torch.manual_seed(0)
    layer = GroupedLinear(6, 16, 64, channels_first=False)
    w_old = layer.weight.detach().transpose(1, 2).contiguous().requires_grad_()  # (G, in, out)
    b_old = layer.bias.detach()[..., 0].clone().requires_grad_()  # (G, out)
    x = torch.randn(33, 6, 16)
    y_old = torch.baddbmm(b_old[:, None, :], x.transpose(0, 1), w_old).transpose(0, 1)
    y = layer(x)
    assert torch.equal(y, y_old)
    g = torch.randn_like(y)
    y.backward(g)
    y_old.backward(g)
    assert torch.equal(layer.weight.grad, w_old.grad.transpose(1, 2))
    assert torch.equal(layer.bias.grad[..., 0], b_old.grad)


@pytest.mark.parametrize("in_f,out_f", [(8, 8), (5, 12)])  # square: told apart by the 2-D bias
def test_old_channels_last_state_dict_is_converted(in_f, out_f):
    torch.manual_seed(1)
    w_old, b_old = torch.randn(3, in_f, out_f), torch.randn(3, out_f)
    layer = GroupedLinear(3, in_f, out_f, channels_first=False)
    layer.load_state_dict({"weight": w_old, "bias": b_old})
    x = torch.randn(4, 3, in_f)
    torch.testing.assert_close(layer(x), torch.einsum("bgi,gio->bgo", x, w_old) + b_old)
    # and the new layout round-trips unchanged
    other = GroupedLinear(3, in_f, out_f, channels_first=False)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other(x), layer(x))


def test_shipped_weights_load_into_the_decoder():
    """The shipped model was saved with the decoder's (K, out, in) / (K, out, 1) layout."""
    from canocaps.pretrained import load_pretrained

    model = load_pretrained()
    dec = model.decoder
    assert isinstance(dec.out, GroupedLinear)
    k = model.config.num_capsules
    assert dec.out.weight.shape[:2] == (k, 3) and dec.out.bias.shape == (k, 3, 1)
    desc = torch.randn(2, k, model.config.feat_dim)
    kp = torch.randn(2, k, 3)
    dec.eval()
    with torch.no_grad():
        torch.testing.assert_close(dec(desc, kp), dec.forward_reference(desc, kp))
