"""ops.chamfer takes what pytorch3d.loss.chamfer_distance takes; checked against the brute-force reference."""
from __future__ import annotations

import itertools

import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops import chamfer
from canocaps.ops.reference import chamfer_reference


def _clouds(seed: int = 0, B: int = 3, N: int = 9, M: int = 7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, 3, generator=g, dtype=torch.float64)
    y = torch.randn(B, M, 3, generator=g, dtype=torch.float64)
    nx = torch.randn(B, N, 3, generator=g, dtype=torch.float64)
    ny = torch.randn(B, M, 3, generator=g, dtype=torch.float64)
    return x, y, nx, ny


def _close(a, b):
    if a is None or b is None:
        assert a is None and b is None
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v)
    else:
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("point_reduction,batch_reduction,norm,single", [
    (pr, br, n, s) for pr, br, n, s in itertools.product(("mean", "sum", "max", None), ("mean", "sum", None), (1, 2),
                                                        (False, True))
    if not (pr is None and br is not None)
])
def test_matches_reference_every_reduction(point_reduction, batch_reduction, norm, single):
    x, y, nx, ny = _clouds(1)
    lengths = dict(x_lengths=torch.tensor([9, 4, 6]), y_lengths=torch.tensor([7, 7, 2]))
    weights = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    normals = {} if point_reduction == "max" else dict(x_normals=nx, y_normals=ny)
    for kw in ({}, lengths, {**lengths, "weights": weights}, {**lengths, **normals},
               {**normals, "abs_cosine": False, "weights": weights}):
        args = dict(point_reduction=point_reduction, batch_reduction=batch_reduction, norm=norm,
                    single_directional=single, **kw)
        got = chamfer(x, y, **args)
        ref = chamfer_reference(x, y, **args)
        _close(got[0], ref[0])
        _close(got[1], ref[1])
        assert (got[1] is None) == ("x_normals" not in kw)


def test_hand_computed_values():
    x = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    y = torch.tensor([[[0.0, 0, 0]]])
    # cham_x = [0, 1], cham_y = [0]: Hausdorff 1, sum 1, mean 0.5 + 0
    assert chamfer(x, y, point_reduction="max")[0].item() == pytest.approx(1.0)
    assert chamfer(x, y, point_reduction="sum")[0].item() == pytest.approx(1.0)
    assert chamfer(x, y)[0].item() == pytest.approx(0.5)
    assert chamfer(y, x, single_directional=True)[0].item() == pytest.approx(0.0)
    assert chamfer(x, y, single_directional=True)[0].item() == pytest.approx(0.5)
    a = torch.tensor([[[1.0, 2.0, 0.0]]])
    b = torch.tensor([[[0.0, 0.0, 0.0]]])
    assert chamfer(a, b, norm=1)[0].item() == pytest.approx(3.0 + 3.0)  # L1 both ways
    assert chamfer(a, b, norm=2)[0].item() == pytest.approx(5.0 + 5.0)
    # normals: perpendicular -> 1, opposite -> 0 with abs_cosine and 2 without
    na = torch.tensor([[[1.0, 0, 0]]])
    for nb, abs_val, signed in (([0.0, 1, 0], 1.0, 1.0), ([-1.0, 0, 0], 0.0, 2.0)):
        nbt = torch.tensor([[nb]])
        assert chamfer(a, b, x_normals=na, y_normals=nbt)[1].item() == pytest.approx(2 * abs_val)
        assert chamfer(a, b, x_normals=na, y_normals=nbt, abs_cosine=False)[1].item() == pytest.approx(2 * signed)


def test_weights_and_batch_mean():
    x, y, _, _ = _clouds(2)
    per = chamfer(x, y, batch_reduction=None)[0]
    w = torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(chamfer(x, y, weights=w)[0], (per * w).sum() / w.sum())
    torch.testing.assert_close(chamfer(x, y, weights=w, batch_reduction="sum")[0], (per * w).sum())
    xr = x.clone().requires_grad_(True)
    zero, _ = chamfer(xr, y, weights=torch.zeros(3, dtype=torch.float64))
    assert zero.item() == 0.0
    zero.backward()  # still connected to the graph
    with pytest.raises(CanocapsInputError, match="negative"):
        chamfer(x, y, weights=torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))


def test_gradients_match_reference():
    x, y, nx, ny = _clouds(3, B=2, N=6, M=5)
    for kw in (dict(norm=1), dict(point_reduction="max"), dict(x_normals=nx, y_normals=ny, abs_cosine=False),
               dict(weights=torch.tensor([0.3, 1.0], dtype=torch.float64), squared=False)):
        grads = []
        for fn in (chamfer, chamfer_reference):
            a, b = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
            kws = dict(kw)
            if "x_normals" in kws:
                kws["x_normals"] = nx.clone().requires_grad_(True)
            loss, loss_n = fn(a, b, **kws)
            (loss + (loss_n if loss_n is not None else 0)).backward()
            grads.append((a.grad, b.grad))
        torch.testing.assert_close(grads[0], grads[1])


def test_bad_options():
    x, y, nx, ny = _clouds(4)
    with pytest.raises(CanocapsInputError, match="norm"):
        chamfer(x, y, norm=3)
    with pytest.raises(CanocapsInputError, match="max"):
        chamfer(x, y, x_normals=nx, y_normals=ny, point_reduction="max")
    with pytest.raises(CanocapsInputError, match="both"):
        chamfer(x, y, x_normals=nx)
    with pytest.raises(CanocapsInputError, match="weights"):
        chamfer(x, y, weights=torch.ones(2))
