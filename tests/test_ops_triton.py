"""canocaps.ops Triton kernels: logic checked on CPU under TRITON_INTERPRET=1; CUDA when present."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from canocaps.ops import chamfer, knn
from canocaps.ops.reference import chamfer_reference, knn_reference

pytest.importorskip("triton", reason="triton not installed")

# Runs in a fresh interpreter: TRITON_INTERPRET must be set before triton is imported.
_INTERPRET_SCRIPT = r"""
import json, warnings, torch
from canocaps.ops import chamfer, knn
from canocaps.ops.reference import chamfer_reference, knn_reference
g = torch.Generator().manual_seed(0)
out = {}

def same(a, r):
    return bool(torch.equal(a.idx, r.idx)) and bool(torch.equal(a.dists, r.dists))

# ragged batch with exact ties (duplicated points), several tiles along M
x = torch.randn(3, 40, 3, generator=g)
y = torch.randn(3, 150, 3, generator=g)
y[:, 100] = y[:, 7]; y[:, 120] = y[:, 7]; x[:, 5] = y[:, 7]
lx, ly = torch.tensor([40, 17, 0]), torch.tensor([150, 70, 9])
for k in (1, 4):
    out[f"k{k}_ragged_ties"] = same(knn(x, y, k, lx, ly, backend="triton"), knn_reference(x, y, k, lx, ly))
out["k1_nearest_of_dup_is_lowest"] = bool((knn(x, y, 1, backend="triton").idx[:, 5, 0] == 7).all())
# fewer real neighbours than k in a cloud: padding rule
r = knn(x, y, 12, lx, ly, backend="triton")
out["k12_pad"] = same(r, knn_reference(x, y, 12, lx, ly)) and bool((r.idx[2, :, 9:] == -1).all())
# integer lattice: many exactly equidistant neighbours
grid = torch.stack(torch.meshgrid(*[torch.arange(3.0)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
q = grid[:, :20] + 0.5
out["k5_lattice_ties"] = same(knn(q, grid, 5, backend="triton"), knn_reference(q, grid, 5))
# largest supported k, float64, D != 3
x64 = torch.randn(2, 20, 5, generator=g, dtype=torch.float64)
y64 = torch.randn(2, 45, 5, generator=g, dtype=torch.float64)
out["k32_fp64_d5"] = same(knn(x64, y64, 32, backend="triton"), knn_reference(x64, y64, 32))
out["k1_fp64"] = same(knn(x64, y64, 1, backend="triton"), knn_reference(x64, y64, 1))
# k above the kernel's limit: one warning, torch path, same answer
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    r = knn(x64, y64, 40, backend="triton")
out["k40_falls_back"] = len(w) == 1 and "Triton" in str(w[0].message) and same(r, knn_reference(x64, y64, 40))
# chamfer through the kernel, with gradient
xa = torch.randn(2, 70, 3, generator=g, requires_grad=True)
ya = torch.randn(2, 90, 3, generator=g, requires_grad=True)
lossa = chamfer(xa, ya, [70, 33], [90, 12], backend="triton")[0]
lossa.backward()
ga = (xa.grad.clone(), ya.grad.clone())
xa.grad = ya.grad = None
lossr = chamfer_reference(xa, ya, torch.tensor([70, 33]), torch.tensor([90, 12]))[0]
lossr.backward()
out["chamfer"] = bool(torch.allclose(lossa, lossr)) and bool(torch.allclose(ga[0], xa.grad)) \
    and bool(torch.allclose(ga[1], ya.grad))
print("RESULT " + json.dumps(out))
"""


def test_triton_kernels_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _INTERPRET_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    failed = [name for name, ok in results.items() if not ok]
    assert not failed, f"Triton (interpreted) disagrees with the reference on: {failed}"
    assert len(results) == 9


_COMPILE_SCRIPT = r"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from canocaps.ops import _triton_kernels as tk
names = ["x_ptr", "y_ptr", "lx_ptr", "ly_ptr", "out_ptr", "N", "sxb", "sxn", "sxd", "syb", "sym", "syd"]
types = ["*fp32", "*fp32", "*i32", "*i32", "*i64"] + ["i32"] * 7
for fn, consts in ((tk._nn1_kernel, {"D": 3, "BLOCK_N": 64, "BLOCK_M": 64}),
                   (tk._knn_kernel, {"D": 3, "K": 16, "KP": 16, "BLOCK_N": 32, "BLOCK_M": 32})):
    sig = dict(zip(names, types), **{k: "constexpr" for k in consts})
    triton.compile(ASTSource(fn, sig, constexprs=consts), target=GPUTarget("cuda", 90, 32),
                   options={"enable_fp_fusion": False})
    print("compiled", fn.__name__)
"""


def test_triton_kernels_compile_for_sm90(tmp_path):
    # The interpreter does not type-check like the compiler does: compile both kernels
    # for an H100 (sm_90) without a GPU, in a fresh cache so nothing is reused.
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path), OMP_NUM_THREADS="1", TRITON_DEFAULT_FP_FUSION="0")
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("compiled") == 2


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.parametrize("k", [1, 2, 16, 32])
def test_cuda_knn_matches_torch_path_and_reference(k):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(4, 3000, 3, generator=g)
    y = torch.randn(4, 2500, 3, generator=g)
    y[:, 2000] = y[:, 17]  # an exact tie
    lx, ly = torch.tensor([3000, 1000, 5, 0]), torch.tensor([2500, 2100, 40, 30])
    xc, yc = x.cuda(), y.cuda()
    tri = knn(xc, yc, k, lx.cuda(), ly.cuda(), backend="triton")
    tor = knn(xc, yc, k, lx.cuda(), ly.cuda(), backend="torch")
    assert torch.equal(tri.idx, tor.idx)
    auto = knn(xc, yc, k, lx.cuda(), ly.cuda())  # auto -> triton on CUDA
    assert torch.equal(auto.idx, tri.idx)
    ref = knn_reference(x[:2, :300], y[:2], k, torch.tensor([300, 300]), ly[:2])
    assert torch.equal(tri.idx[:2, :300].cpu(), ref.idx)


@needs_cuda
def test_cuda_chamfer_matches_reference_with_gradients():
    g = torch.Generator().manual_seed(0)
    x0, y0 = torch.randn(8, 1024, 3, generator=g), torch.randn(8, 1020, 3, generator=g)
    grads, losses = [], []
    for fn, dev in ((chamfer, "cuda"), (chamfer_reference, "cpu")):
        x, y = x0.to(dev).requires_grad_(), y0.to(dev).requires_grad_()
        loss = fn(x, y)[0]
        loss.backward()
        losses.append(loss.detach().cpu())
        grads.append((x.grad.cpu(), y.grad.cpu()))
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


@needs_cuda
def test_cuda_chamfer_large_uses_little_memory():
    x = torch.rand(1, 200_000, 3, device="cuda")
    y = torch.rand(1, 200_000, 3, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    chamfer(x, y)
    peak = torch.cuda.max_memory_allocated() - base
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # a dense matrix would be 160 GB
