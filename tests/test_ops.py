"""canocaps.ops: the CPU paths (chunked torch, k-d tree) vs the brute-force references."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.ops import KNN, chamfer, knn, knn_gather
from canocaps.ops.reference import chamfer_reference, knn_reference

SMALL_CHUNK = 4096  # bytes: forces many chunks (and the per-batch split) on tiny inputs


@pytest.fixture(params=["torch", "kdtree"])
def cpu_backend(request):
    """Each CPU backend of :func:`knn` (``"auto"`` picks the k-d tree for 3-D float clouds)."""
    return request.param


def _gen(seed: int):
    return torch.Generator().manual_seed(seed)


def _assert_same(a: KNN, r: KNN):
    assert a.idx.dtype == torch.int64 and a.idx.shape == r.idx.shape
    assert torch.equal(a.idx, r.idx)
    torch.testing.assert_close(a.dists, r.dists, rtol=0, atol=0)


# ----------------------------------------------------------------------------- knn

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("chunk", [None, SMALL_CHUNK])
def test_knn_matches_reference_random(dtype, k, chunk, cpu_backend):
    g = _gen(k)
    x = torch.randn(3, 67, 3, generator=g, dtype=dtype)
    y = torch.randn(3, 45, 3, generator=g, dtype=dtype)
    _assert_same(knn(x, y, k, chunk_bytes=chunk, backend=cpu_backend), knn_reference(x, y, k))


def test_knn_higher_dimension_and_self_query(cpu_backend):
    g = _gen(1)
    x = torch.randn(2, 40, 7, generator=g)
    res = knn(x, x, 4, chunk_bytes=SMALL_CHUNK, backend=cpu_backend)
    _assert_same(res, knn_reference(x, x, 4))
    assert torch.equal(res.idx[..., 0], torch.arange(40).expand(2, 40))  # each point is its own NN
    assert torch.all(res.dists[..., 0] == 0)


def test_knn_sorted_and_distances_are_true_squared_distances():
    g = _gen(2)
    x, y = torch.randn(2, 30, 3, generator=g), torch.randn(2, 50, 3, generator=g)
    res = knn(x, y, 6)
    assert torch.all(res.dists[..., 1:] >= res.dists[..., :-1])
    direct = ((x[:, :, None] - knn_gather(y, res.idx)) ** 2).sum(-1)
    torch.testing.assert_close(res.dists, direct)


def test_knn_ties_lowest_index_first(cpu_backend):
    # Integer lattice queries at half-integer offsets: every query has many exactly
    # equidistant neighbours, and y also holds exact duplicates.
    g = _gen(3)
    grid = torch.stack(torch.meshgrid(*[torch.arange(4.0)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
    y = torch.cat([grid, grid[:, :20]], 1)[:, torch.randperm(84, generator=g)]
    x = (torch.randint(0, 4, (1, 50, 3), generator=g).float() + 0.5 * torch.randint(0, 2, (1, 50, 3), generator=g))
    for k in (1, 2, 5, 9):
        for chunk in (None, SMALL_CHUNK):
            _assert_same(knn(x, y, k, chunk_bytes=chunk, backend=cpu_backend), knn_reference(x, y, k))


def test_knn_all_points_duplicated(cpu_backend):
    g = _gen(4)
    base = torch.randn(2, 80, 3, generator=g)
    y = torch.cat([base, base], 1)  # every row is an exact tie -> exact fallback path
    x = base + 0.01 * torch.randn(2, 80, 3, generator=g)
    res = knn(x, y, 2, backend=cpu_backend)
    _assert_same(res, knn_reference(x, y, 2))
    assert torch.equal(res.idx[..., 1] - res.idx[..., 0], torch.full((2, 80), 80))
    _assert_same(knn(x, y, 1, backend=cpu_backend), knn_reference(x, y, 1))


def test_knn_cancellation_far_from_origin(cpu_backend):
    # Clouds far from the origin with tiny spacing: |x|^2 - 2x.y + |y|^2 in float32
    # loses every digit; the result must still match exact brute force.
    g = _gen(5)
    off = torch.tensor([3000.0, -2000.0, 1000.0])
    x = off + 1e-3 * torch.randn(2, 80, 3, generator=g)
    y = off + 1e-3 * torch.randn(2, 90, 3, generator=g)
    for k in (1, 4):
        _assert_same(knn(x, y, k, chunk_bytes=SMALL_CHUNK, backend=cpu_backend), knn_reference(x, y, k))


def test_knn_large_cloud_chunked_matches_reference(cpu_backend):
    g = _gen(6)
    x, y = torch.rand(1, 1500, 3, generator=g), torch.rand(1, 1800, 3, generator=g)
    _assert_same(knn(x, y, 1, chunk_bytes=64 * 1024, backend=cpu_backend), knn_reference(x, y, 1))
    _assert_same(knn(x, y, 5, chunk_bytes=64 * 1024, backend=cpu_backend), knn_reference(x, y, 5))


def test_knn_k1_lane_path_ragged_ties_far(cpu_backend):
    # M >= 128 takes the lane-minimum path of the k = 1 search (M not a multiple of 64
    # here, so padded lanes are exercised too); ties, padding and cancellation.
    g = _gen(18)
    y = torch.randn(3, 301, 3, generator=g)
    y[:, 250] = y[:, 3]
    y[:, 200] = y[:, 140]
    x = torch.randn(3, 90, 3, generator=g)
    x[:, 0] = y[:, 3]
    x[:, 1] = y[:, 140] + 1e-3
    ly, lx = torch.tensor([301, 150, 260]), torch.tensor([90, 40, 90])
    for chunk in (None, SMALL_CHUNK):
        res = knn(x, y, 1, lx, ly, chunk_bytes=chunk, backend=cpu_backend)
        _assert_same(res, knn_reference(x, y, 1, lx, ly))
        assert torch.all(res.idx[:, 0, 0] == 3)
    far = torch.tensor([500.0, 500.0, -500.0])
    _assert_same(knn(x * 1e-3 + far, y * 1e-3 + far, 1, backend=cpu_backend), knn_reference(x * 1e-3 + far, y * 1e-3 + far, 1))


def test_knn_ragged_padding_rule(cpu_backend):
    g = _gen(7)
    x, y = torch.randn(5, 20, 3, generator=g), torch.randn(5, 15, 3, generator=g)
    x[1, 12:] = float("nan")  # padding may hold anything
    y[2, 3:] = float("nan")
    lx = torch.tensor([20, 12, 6, 5, 0])
    ly = torch.tensor([15, 9, 3, 0, 4])
    for chunk in (None, SMALL_CHUNK):
        res = knn(x, y, 5, lengths_x=lx, lengths_y=ly, chunk_bytes=chunk, backend=cpu_backend)
        _assert_same(res, knn_reference(x, y, 5, lx, ly))
        assert torch.all(res.idx[1, 12:] == -1) and torch.all(res.dists[1, 12:] == 0)
        assert torch.all(res.idx[2, :, 3:] == -1) and torch.all(res.dists[2, :, 3:] == 0)
        assert torch.all(res.idx[2, :6, :3] >= 0)  # 3 real neighbours, then padding
        assert torch.all(res.idx[3] == -1) and torch.all(res.idx[4] == -1)
        assert torch.all(res.idx[2, 6:] == -1)
        assert torch.all(res.idx[0] >= 0)
        assert not torch.isnan(res.dists).any()
    # lengths given as a list work too
    _assert_same(knn(x, y, 2, lx.tolist(), ly.tolist(), backend=cpu_backend), knn_reference(x, y, 2, lx, ly))


def test_knn_empty_batch_and_empty_queries():
    res = knn(torch.zeros(0, 10, 3), torch.zeros(0, 7, 3), 3)
    assert res.dists.shape == (0, 10, 3) and res.idx.shape == (0, 10, 3)
    res = knn(torch.zeros(2, 0, 3), torch.randn(2, 7, 3), 3)
    assert res.dists.shape == (2, 0, 3)


@pytest.mark.parametrize("bad, match", [
    (dict(k=6), "larger than the number of points"),
    (dict(k=0), "k must be >= 1"),
    (dict(k=2.5), "k must be an int"),
    (dict(y=torch.randn(2, 5)), "shape"),
    (dict(y=torch.randn(3, 5, 3)), "batch sizes differ"),
    (dict(y=torch.randn(2, 5, 2)), "point dimensions differ"),
    (dict(y=torch.randn(2, 5, 3, dtype=torch.float64)), "dtypes differ"),
    (dict(y=torch.zeros(2, 5, 3, dtype=torch.int64)), "floating-point"),
    (dict(lengths_y=torch.tensor([5, 6])), r"lengths_y values must lie in \[0, 5\]"),
    (dict(lengths_y=torch.tensor([5])), "lengths_y must have shape"),
    (dict(lengths_x=torch.tensor([1.0, 2.0])), "integers"),
    (dict(backend="cuda"), "backend must be one of"),
    (dict(backend="triton"), "backend=.triton. needs"),
    (dict(chunk_bytes=0), "chunk_bytes must be a positive"),
])
def test_knn_bad_input(bad, match):
    args = dict(x=torch.randn(2, 4, 3), y=torch.randn(2, 5, 3), k=2)
    args.update(bad)
    with pytest.raises(CanocapsInputError, match=match):
        knn(**args)


def test_knn_nan_in_real_point_is_rejected():
    y = torch.randn(1, 5, 3)
    y[0, 2, 1] = float("nan")
    with pytest.raises(CanocapsInputError, match=r"y has a NaN .*point 2"):
        knn(torch.randn(1, 4, 3), y, 1)
    knn(torch.randn(1, 4, 3), y, 1, lengths_y=[2])  # NaN only in padding: fine


def test_knn_gradcheck():
    g = _gen(8)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: knn(a, b, 3).dists, (x, y))
    assert torch.autograd.gradcheck(lambda a, b: knn(a, b, 2, lengths_x=[5, 3], lengths_y=[7, 4]).dists, (x, y))


def test_knn_gradient_matches_reference():
    g = _gen(9)
    x0, y0 = torch.randn(3, 60, 3, generator=g), torch.randn(3, 50, 3, generator=g)
    w = torch.rand(3, 60, 4, generator=g)
    grads = []
    for fn in (lambda a, b: knn(a, b, 4, chunk_bytes=SMALL_CHUNK), lambda a, b: knn_reference(a, b, 4)):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        (fn(x, y).dists * w).sum().backward()
        grads.append((x.grad, y.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_knn_half_precision_inputs():
    g = _gen(10)
    x, y = torch.randn(2, 30, 3, generator=g), torch.randn(2, 40, 3, generator=g)
    res = knn(x.half(), y.half(), 3)
    ref = knn_reference(x.half(), y.half(), 3)
    assert res.dists.dtype == torch.float16
    assert torch.equal(res.idx, ref.idx)


# ------------------------------------------------------------------------- chamfer

@pytest.mark.parametrize("point_reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch_reduction", ["mean", "sum", None])
@pytest.mark.parametrize("squared", [True, False])
def test_chamfer_matches_reference(point_reduction, batch_reduction, squared):
    g = _gen(11)
    x, y = torch.randn(3, 50, 3, generator=g), torch.randn(3, 41, 3, generator=g)
    kw = dict(point_reduction=point_reduction, batch_reduction=batch_reduction, squared=squared)
    out, none = chamfer(x, y, chunk_bytes=SMALL_CHUNK, **kw)
    ref, _ = chamfer_reference(x, y, **kw)
    assert none is None
    assert out.shape == ((3,) if batch_reduction is None else ())
    torch.testing.assert_close(out, ref)


def test_chamfer_known_value():
    x = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    y = torch.tensor([[[0.0, 0, 2]]])
    # x->y: 4 and 5, mean 4.5; y->x: 4; total 8.5
    assert chamfer(x, y)[0].item() == pytest.approx(8.5)
    assert chamfer(x, y, squared=False)[0].item() == pytest.approx((2 + 5 ** 0.5) / 2 + 2)
    assert chamfer(x, y, point_reduction="sum")[0].item() == pytest.approx(13.0)


def test_chamfer_training_shape_matches_reference():
    # the model's loss: (B, 1024, 3) vs (B, 1020, 3); fused single chunk
    g = _gen(12)
    x, y = torch.rand(4, 1024, 3, generator=g) - 0.5, torch.rand(4, 1020, 3, generator=g) - 0.5
    torch.testing.assert_close(chamfer(x, y)[0], chamfer_reference(x, y)[0])


def test_chamfer_per_point_and_ragged():
    g = _gen(13)
    x, y = torch.randn(3, 20, 3, generator=g), torch.randn(3, 25, 3, generator=g)
    lx, ly = torch.tensor([20, 7, 0]), torch.tensor([25, 11, 0])
    (cx, cy), _ = chamfer(x, y, lx, ly, point_reduction=None, batch_reduction=None)
    (rx, ry), _ = chamfer_reference(x, y, lx, ly, point_reduction=None, batch_reduction=None)
    torch.testing.assert_close(cx, rx)
    torch.testing.assert_close(cy, ry)
    assert torch.all(cx[1, 7:] == 0) and torch.all(cy[2] == 0)
    for pr in ("mean", "sum"):
        out = chamfer(x, y, lx, ly, point_reduction=pr, batch_reduction=None)[0]
        torch.testing.assert_close(out, chamfer_reference(x, y, lx, ly, point_reduction=pr, batch_reduction=None)[0])
        assert out[2] == 0
    # a ragged element equals the same cloud without padding
    alone = chamfer(x[1:2, :7], y[1:2, :11])[0]
    torch.testing.assert_close(chamfer(x, y, lx, ly, batch_reduction=None)[0][1], alone)


def test_chamfer_empty_batch_and_errors():
    x = torch.zeros(0, 5, 3, requires_grad=True)
    loss, _ = chamfer(x, torch.zeros(0, 4, 3))
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(CanocapsInputError, match="both must be non-empty"):
        chamfer(torch.randn(2, 5, 3), torch.randn(2, 4, 3), y_lengths=[4, 0])
    with pytest.raises(CanocapsInputError, match="batch_reduction=None"):
        chamfer(torch.randn(2, 5, 3), torch.randn(2, 4, 3), point_reduction=None)
    with pytest.raises(CanocapsInputError, match="point_reduction must be"):
        chamfer(torch.randn(2, 5, 3), torch.randn(2, 4, 3), point_reduction="median")  # "max" is Hausdorff now


def test_chamfer_gradcheck():
    g = _gen(14)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    for sq in (True, False):
        assert torch.autograd.gradcheck(lambda a, b: chamfer(a, b, squared=sq)[0], (x, y))
    assert torch.autograd.gradcheck(lambda a, b: chamfer(a, b, [6, 2], [3, 5], batch_reduction="sum")[0], (x, y))


def test_chamfer_gradient_matches_reference_and_safe_sqrt():
    g = _gen(15)
    x0, y0 = torch.randn(2, 40, 3, generator=g), torch.randn(2, 30, 3, generator=g)
    for sq in (True, False):
        grads = []
        for fn in (chamfer, chamfer_reference):
            x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
            fn(x, y, squared=sq)[0].backward()
            grads.append((x.grad, y.grad))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])
    x = x0.clone().requires_grad_()
    loss, _ = chamfer(x, x0.clone(), squared=False)  # every distance is exactly 0
    loss.backward()
    assert loss.item() == 0 and torch.all(x.grad == 0)


def test_chamfer_memory_is_bounded():
    # 10k x 10k float32 would be 400 MB as one matrix; the chunked path must not build it.
    # Measured as the peak resident-set growth of a fresh interpreter (torch's CPU
    # allocations are invisible to tracemalloc).
    code = (
        "import resource, torch, canocaps.ops as o\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x, y = torch.rand(1, 10000, 3, generator=g), torch.rand(1, 10000, 3, generator=g)\n"
        "o.chamfer(x[:, :100], y[:, :100])\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "loss = o.chamfer(x, y, chunk_bytes=2**20)[0].item()\n"
        "r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(loss, (r1 - r0) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loss, grew_mib = (float(v) for v in out.stdout.split())
    assert 0 < loss < 1e-2  # uniform points in the unit cube: NN distances are small
    assert grew_mib < 64, f"peak RSS grew by {grew_mib:.0f} MiB"


# ----------------------------------------------------------------------- packaging

def test_import_does_not_import_triton():
    code = "import sys, torch, canocaps.ops as o; o.knn(torch.randn(1,4,3), torch.randn(1,5,3), 2); " \
           "o.chamfer(torch.randn(1,4,3), torch.randn(1,5,3)); print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_matches_pytorch3d_if_installed():
    p3d_ops = pytest.importorskip("pytorch3d.ops", reason="pytorch3d not installed")
    p3d_loss = pytest.importorskip("pytorch3d.loss")
    g = _gen(17)
    x, y = torch.randn(2, 64, 3, generator=g), torch.randn(2, 50, 3, generator=g)
    ours = knn(x, y, 5)
    theirs = p3d_ops.knn_points(x, y, K=5)
    assert torch.equal(ours.idx, theirs.idx)
    torch.testing.assert_close(ours.dists, theirs.dists)
    torch.testing.assert_close(chamfer(x, y)[0], p3d_loss.chamfer_distance(x, y)[0])


# ------------------------------------------------- small-problem (dense) torch path

def _dense_idx(x, y, lx=None, ly=None, chunk=None):
    from canocaps.ops._torch_nn import nn1_dense_torch

    return nn1_dense_torch(x, y, lx, ly, both=True, chunk_bytes=chunk)


@pytest.mark.parametrize("N, M", [(50, 41), (256, 256), (300, 257), (1000, 1000), (1024, 1020)])
def test_dense_path_both_directions_match_reference(N, M):
    g = _gen(20 + N)
    x, y = torch.rand(2, N, 3, generator=g) - 0.5, torch.rand(2, M, 3, generator=g) - 0.5
    ix, iy = _dense_idx(x, y)
    assert torch.equal(ix, knn_reference(x, y, 1).idx[..., 0])
    assert torch.equal(iy, knn_reference(y, x, 1).idx[..., 0])


def test_dense_and_chunked_paths_select_and_agree(monkeypatch):
    # both sides of the size threshold: default budget -> dense path; explicit small
    # chunk -> chunked path; results bit-identical to each other and to the reference
    import canocaps.ops._dispatch as disp

    calls = []
    real = disp.nn1_dense_torch
    monkeypatch.setattr(disp, "nn1_dense_torch", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    g = _gen(30)
    x, y = torch.randn(3, 300, 3, generator=g), torch.randn(3, 280, 3, generator=g)
    lx, ly = torch.tensor([300, 120, 7]), torch.tensor([280, 280, 90])
    outs = []
    for chunk in (None, 10**9, SMALL_CHUNK):
        calls.clear()
        outs.append((chamfer(x, y, lx, ly, point_reduction=None, batch_reduction=None, chunk_bytes=chunk)[0],
                     knn(x, y, 1, lx, ly, chunk_bytes=chunk)))
        assert bool(calls) == (chunk != SMALL_CHUNK)
    (rx, ry), _ = chamfer_reference(x, y, lx, ly, point_reduction=None, batch_reduction=None)
    for (cx, cy), res in outs:
        assert torch.equal(cx, rx) and torch.equal(cy, ry)  # bit-identical, not just close
        _assert_same(res, knn_reference(x, y, 1, lx, ly))


def test_dense_path_ties_duplicates_lowest_index():
    # lattice clouds: every query has many exactly equidistant points on both sides,
    # and both clouds hold exact duplicates; square lane geometry (256 x 256)
    g = _gen(31)
    grid = torch.stack(torch.meshgrid(*[torch.arange(6.0)] * 3, indexing="ij"), -1).reshape(1, -1, 3)  # 216
    y = torch.cat([grid, grid[:, :40]], 1)[:, torch.randperm(256, generator=g)]
    x = torch.randint(0, 6, (1, 256, 3), generator=g).float() + 0.5 * torch.randint(0, 2, (1, 256, 3), generator=g)
    x[:, 100:140] = y[:, 10:50]  # exact matches too
    ix, iy = _dense_idx(x, y)
    assert torch.equal(ix, knn_reference(x, y, 1).idx[..., 0])
    assert torch.equal(iy, knn_reference(y, x, 1).idx[..., 0])
    (cx, cy), _ = chamfer(x, y, point_reduction=None, batch_reduction=None)
    (rx, ry), _ = chamfer_reference(x, y, point_reduction=None, batch_reduction=None)
    assert torch.equal(cx, rx) and torch.equal(cy, ry)


def test_dense_path_far_from_origin_and_batch_groups():
    g = _gen(32)
    off = torch.tensor([3000.0, -2000.0, 1000.0])
    x = off + 1e-3 * torch.randn(5, 200, 3, generator=g)
    y = off + 1e-3 * torch.randn(5, 190, 3, generator=g)
    # a budget of two batch elements per bmm (256 x 256 float32 = 256 KiB each)
    for chunk in (None, 2 * 256 * 256 * 4):
        ix, iy = _dense_idx(x, y, chunk=chunk)
        assert torch.equal(ix, knn_reference(x, y, 1).idx[..., 0])
        assert torch.equal(iy, knn_reference(y, x, 1).idx[..., 0])


def test_dense_path_gradient_equals_chunked_path():
    g = _gen(33)
    x0, y0 = torch.randn(2, 200, 3, generator=g), torch.randn(2, 150, 3, generator=g)
    grads = []
    for chunk in (None, SMALL_CHUNK):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        chamfer(x, y, squared=False, chunk_bytes=chunk)[0].backward()
        grads.append((x.grad, y.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_chamfer_one_sided_without_lengths_is_rejected():
    with pytest.raises(CanocapsInputError, match="both must be non-empty"):
        chamfer(torch.randn(2, 5, 3), torch.zeros(2, 0, 3))
    assert chamfer(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3))[0].item() == 0.0


def test_auto_backend_on_cpu_takes_the_kdtree_for_low_dimensions(monkeypatch):
    import canocaps.ops._dispatch as dispatch

    def refuse(*args, **kwargs):
        raise AssertionError("this path must not run")

    g = _gen(21)
    x3, y3 = torch.randn(2, 60, 3, generator=g), torch.randn(2, 70, 3, generator=g)
    x7, y7 = torch.randn(2, 60, 7, generator=g), torch.randn(2, 70, 7, generator=g)
    with monkeypatch.context() as m:
        m.setattr(dispatch, "nn_idx_torch", refuse)
        _assert_same(knn(x3, y3, 6), knn_reference(x3, y3, 6))
        _assert_same(knn(x3.double(), y3.double(), 6), knn_reference(x3.double(), y3.double(), 6))
    with monkeypatch.context() as m:
        m.setattr(dispatch, "nn_idx_kdtree", refuse)
        _assert_same(knn(x7, y7, 6), knn_reference(x7, y7, 6))  # a k-d tree degrades with D
        _assert_same(knn(x3.half(), y3.half(), 6), knn_reference(x3.half(), y3.half(), 6))
        _assert_same(knn(x3, y3, 1), knn_reference(x3, y3, 1))  # small k = 1: one dense matrix
