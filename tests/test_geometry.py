"""Tests of canocaps.geometry: rotations, transforms, weighted Procrustes, metrics."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.geometry import (
    apply_rotation,
    apply_transform,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    chamfer_distance,
    compose_transforms,
    invert_transform,
    make_transform,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    pca_frame,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_rotation,
    random_transform,
    registration_rmse,
    rotation_6d_to_matrix,
    rotation_angle,
    rotation_error_deg,
    safe_svd,
    split_transform,
    translation_error,
    weighted_procrustes,
    weighted_procrustes_reference,
)

D64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_rotation(R: torch.Tensor, tol: float = 1e-10) -> None:
    eye = torch.eye(3, dtype=R.dtype)
    assert torch.allclose(R.transpose(-1, -2) @ R, eye.expand_as(R), atol=tol)
    assert torch.allclose(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=tol)


# ----------------------------------------------------------------------------- rotations


def test_import_is_light():
    code = "import sys, canocaps.geometry; print(any(m.split('.')[0] in ('open3d', 'trimesh') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_known_rotation_about_z():
    v = torch.tensor([0.0, 0.0, math.pi / 2], dtype=D64)
    R = axis_angle_to_matrix(v)
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=D64)
    assert torch.allclose(R, expected, atol=1e-12)
    q = matrix_to_quaternion(R)
    s = math.sqrt(0.5)
    assert torch.allclose(q, torch.tensor([s, 0.0, 0.0, s], dtype=D64), atol=1e-12)
    # x' = R x: the x axis goes to the y axis.
    assert torch.allclose(apply_rotation(R, torch.tensor([[1.0, 0.0, 0.0]], dtype=D64)),
                          torch.tensor([[0.0, 1.0, 0.0]], dtype=D64), atol=1e-12)


def test_round_trips_generic():
    R = random_rotation(200, dtype=D64, generator=gen(1))
    assert_rotation(R)
    q = matrix_to_quaternion(R)
    assert (q[:, 0] >= 0).all()
    assert torch.allclose(q.norm(dim=-1), torch.ones(200, dtype=D64), atol=1e-12)
    assert torch.allclose(quaternion_to_matrix(q), R, atol=1e-12)
    v = matrix_to_axis_angle(R)
    assert (v.norm(dim=-1) <= math.pi + 1e-12).all()
    assert torch.allclose(axis_angle_to_matrix(v), R, atol=1e-12)
    assert torch.allclose(quaternion_to_axis_angle(q), v, atol=1e-12)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-12)
    assert torch.allclose(matrix_to_rotation_6d(R)[:, :3], R[:, :, 0])  # columns, not rows


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 0.3, math.pi - 1e-5, math.pi - 1e-9, math.pi])
def test_axis_angle_near_zero_and_pi(angle):
    axes = torch.nn.functional.normalize(torch.randn(50, 3, dtype=D64, generator=gen(2)), dim=-1)
    v = axes * angle
    R = axis_angle_to_matrix(v)
    assert_rotation(R, 1e-12)
    assert torch.allclose(rotation_angle(R), torch.full((50,), angle, dtype=D64), atol=1e-9)
    back = matrix_to_axis_angle(R)
    assert torch.isfinite(back).all()
    assert torch.allclose(axis_angle_to_matrix(back), R, atol=1e-9)
    if 0 < angle < math.pi - 1e-3:  # away from pi the vector is unique
        assert torch.allclose(back, v, atol=1e-12, rtol=1e-9)
    q = matrix_to_quaternion(R)
    assert torch.allclose(quaternion_to_matrix(q), R, atol=1e-9)


def test_axis_angle_gradients_finite_at_identity():
    v = torch.zeros(4, 3, dtype=D64, requires_grad=True)
    axis_angle_to_matrix(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    R = torch.eye(3, dtype=D64).repeat(2, 1, 1).requires_grad_(True)
    matrix_to_axis_angle(R).sum().backward()
    rotation_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()


def test_conversions_gradcheck():
    v = (torch.randn(3, 3, dtype=D64, generator=gen(3)) * 0.8).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (v,))
    assert torch.autograd.gradcheck(lambda x: quaternion_to_axis_angle(axis_angle_to_quaternion(x)), (v,))
    d6 = torch.randn(3, 6, dtype=D64, generator=gen(4), requires_grad=True)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))


def test_quaternion_sign_and_normalisation():
    q = torch.tensor([[-0.5, 0.5, -0.5, 0.5]], dtype=D64)
    R = quaternion_to_matrix(q * 3.0)  # not unit, negative w
    assert_rotation(R, 1e-12)
    assert torch.allclose(matrix_to_quaternion(R), -q, atol=1e-12)


def test_6d_gram_schmidt_projects_noisy_input():
    d6 = torch.randn(10, 6, dtype=D64, generator=gen(5))
    R = rotation_6d_to_matrix(d6)
    assert_rotation(R, 1e-12)
    assert torch.allclose(R[:, :, 0], torch.nn.functional.normalize(d6[:, :3], dim=-1))


def test_random_rotation_haar_statistics():
    R = random_rotation(20000, dtype=D64, generator=gen(6))
    assert_rotation(R, 1e-10)
    theta = rotation_angle(R)
    # Haar measure: angle density (1 - cos t) / pi on [0, pi], mean pi/2 + 2/pi.
    assert abs(theta.mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.03
    assert R.mean(0).abs().max().item() < 0.03  # E[R] = 0 under Haar


def test_random_rotation_max_angle_and_generator():
    R = random_rotation(5000, max_angle=math.radians(30), dtype=D64, generator=gen(7))
    theta = rotation_angle(R)
    assert theta.max().item() <= math.radians(30) + 1e-9
    assert abs(theta.mean().item() - math.radians(15)) < 0.01  # uniform angle
    axes = matrix_to_axis_angle(R) / theta[:, None]
    assert axes.mean(0).abs().max().item() < 0.05  # uniform axis
    a = random_rotation(3, generator=gen(8))
    b = random_rotation(3, generator=gen(8))
    assert torch.equal(a, b) and a.dtype == torch.get_default_dtype()
    assert random_rotation(0).shape == (0, 3, 3)
    assert torch.allclose(random_rotation(4, max_angle=0.0), torch.eye(3).expand(4, 3, 3))
    with pytest.raises(CanocapsInputError):
        random_rotation(2, max_angle=4.0)


def test_bad_shapes_raise():
    with pytest.raises(CanocapsInputError, match="shape"):
        quaternion_to_matrix(torch.zeros(3, 3))
    with pytest.raises(CanocapsInputError, match="shape"):
        matrix_to_quaternion(torch.zeros(3, 4))


# ----------------------------------------------------------------------------- transforms


def test_transform_helpers():
    T = random_transform(6, dtype=D64, generator=gen(9))
    R, t = split_transform(T)
    assert_rotation(R)
    assert (t.abs() <= 0.2).all()
    assert torch.equal(make_transform(R, t), T)
    assert torch.allclose(T[:, 3], torch.tensor([0.0, 0, 0, 1], dtype=D64).expand(6, 4))
    eye = torch.eye(4, dtype=D64).expand(6, 4, 4)
    assert torch.allclose(compose_transforms(T, invert_transform(T)), eye, atol=1e-12)
    assert torch.allclose(invert_transform(T), torch.linalg.inv(T), atol=1e-12)
    T2 = random_transform(6, dtype=D64, generator=gen(10))
    p = torch.randn(6, 20, 3, dtype=D64, generator=gen(11))
    # compose(T1, T2) applies T2 first.
    assert torch.allclose(apply_transform(compose_transforms(T, T2), p), apply_transform(T, apply_transform(T2, p)))
    # against homogeneous coordinates
    ph = torch.cat([p, torch.ones(6, 20, 1, dtype=D64)], -1)
    assert torch.allclose(apply_transform(T, p), (ph @ T.transpose(1, 2))[..., :3])
    assert make_transform(R[0]).shape == (4, 4)


def test_apply_transform_broadcasting():
    T = random_transform(3, dtype=D64, generator=gen(12))
    p = torch.randn(7, 3, dtype=D64, generator=gen(13))
    assert apply_transform(T[0], p).shape == (7, 3)
    out = apply_transform(T, p)  # one cloud, three transforms
    assert out.shape == (3, 7, 3)
    assert torch.allclose(out[1], apply_transform(T[1], p))
    pb = p.expand(3, 7, 3)
    assert torch.allclose(apply_transform(T[2], pb)[0], apply_transform(T[2], p))
    with pytest.raises(CanocapsInputError, match="batch"):
        apply_transform(T, torch.zeros(2, 7, 3, dtype=D64))
    with pytest.raises(CanocapsInputError, match="shape"):
        apply_transform(torch.eye(3), p)
    with pytest.raises(CanocapsInputError, match="shape"):
        apply_transform(T, torch.zeros(7, 2))


def test_random_transform_translation_range():
    T = random_transform(4000, max_translation=0.5, generator=gen(14))
    t = T[:, :3, 3]
    assert t.abs().max() <= 0.5
    assert t.abs().max() > 0.49  # covers the range
    assert abs(t.mean().item()) < 0.02
    with pytest.raises(CanocapsInputError):
        random_transform(2, max_translation=-1.0)


# ----------------------------------------------------------------------------- procrustes


def test_procrustes_recovers_known_transform():
    B, N = 8, 64
    src = torch.randn(B, N, 3, dtype=D64, generator=gen(20))
    w = torch.rand(B, N, dtype=D64, generator=gen(21))
    T = random_transform(B, max_translation=1.0, dtype=D64, generator=gen(22))
    dst = apply_transform(T, src)
    R, t = weighted_procrustes(src, dst, w, eps=0.0)
    assert torch.allclose(R, T[:, :3, :3], atol=1e-12)
    assert torch.allclose(t, T[:, :3, 3], atol=1e-12)
    R, t = weighted_procrustes(src, dst, w)  # default tie-breaking regulariser: tiny bias only
    assert rotation_error_deg(R, T[:, :3, :3]).max() < 1e-5
    assert torch.allclose(t, T[:, :3, 3], atol=1e-6)
    assert_rotation(R)
    # float32, unweighted
    R32, t32 = weighted_procrustes(src.float(), dst.float())
    assert rotation_error_deg(R32, T[:, :3, :3].float()).max() < 1e-2
    assert R32.dtype == torch.float32


def test_procrustes_weights_select_inliers():
    B, N = 4, 40
    src = torch.randn(B, N, 3, dtype=D64, generator=gen(23))
    T = random_transform(B, dtype=D64, generator=gen(24))
    dst = apply_transform(T, src)
    dst[:, :10] += torch.randn(B, 10, 3, dtype=D64, generator=gen(25))  # outliers
    w = torch.ones(B, N, dtype=D64)
    w[:, :10] = 0.0
    R, t = weighted_procrustes(src, dst, w, eps=0.0)
    assert torch.allclose(R, T[:, :3, :3], atol=1e-10)
    R_bad, _ = weighted_procrustes(src, dst, eps=0.0)
    assert rotation_error_deg(R_bad, T[:, :3, :3]).min() > 1e-3  # the weights mattered


def test_procrustes_matches_reference_and_weights_scale_free():
    src = torch.randn(5, 30, 3, dtype=D64, generator=gen(26))
    dst = torch.randn(5, 30, 3, dtype=D64, generator=gen(27))  # no exact solution
    w = torch.rand(5, 30, dtype=D64, generator=gen(28))
    R, t = weighted_procrustes(src, dst, w, eps=0.0)
    R_ref, t_ref = weighted_procrustes_reference(src, dst, w)
    assert torch.allclose(R, R_ref, atol=1e-10) and torch.allclose(t, t_ref, atol=1e-10)
    R2, t2 = weighted_procrustes(src, dst, 7.0 * w, eps=0.0)
    assert torch.allclose(R, R2, atol=1e-12) and torch.allclose(t, t2, atol=1e-12)


def test_procrustes_reflection_gives_proper_rotation():
    src = torch.randn(3, 25, 3, dtype=D64, generator=gen(29))
    mirror = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=D64))
    dst = src @ mirror  # the best orthogonal map is a reflection
    R, t = weighted_procrustes(src, dst)
    assert_rotation(R)
    R_ref, _ = weighted_procrustes_reference(src, dst)
    assert torch.allclose(R, R_ref, atol=1e-6)
    # residual is no worse than any other rotation we try
    res = (apply_transform(make_transform(R, t), src) - dst).pow(2).sum((1, 2))
    for Rr in random_rotation(20, dtype=D64, generator=gen(30)):
        Rr = Rr.expand(3, 3, 3)
        rt, tt = Rr, dst.mean(1) - (Rr @ src.mean(1)[..., None])[..., 0]
        assert (res <= (apply_transform(make_transform(rt, tt), src) - dst).pow(2).sum((1, 2)) + 1e-9).all()


def _degenerate_cases():
    line = torch.linspace(-1, 1, 12, dtype=D64)[:, None] * torch.tensor([1.0, 2.0, 0.5], dtype=D64)
    T = random_transform(1, dtype=D64, generator=gen(31))
    return {
        "collinear": (line[None], apply_transform(T, line[None]), None),
        "repeated": (torch.ones(1, 10, 3, dtype=D64) * 0.3, torch.ones(1, 10, 3, dtype=D64), None),
        "two_points": (torch.tensor([[[0.0, 0, 0], [1, 0, 0]]], dtype=D64).repeat(1, 5, 1),
                       torch.tensor([[[0.0, 0, 0], [0, 1, 0]]], dtype=D64).repeat(1, 5, 1), None),
        "planar": (torch.randn(1, 20, 3, dtype=D64, generator=gen(32)) * torch.tensor([1.0, 1.0, 0.0], dtype=D64),
                   torch.randn(1, 20, 3, dtype=D64, generator=gen(33)), None),
        "zero_weights": (torch.randn(1, 10, 3, dtype=D64, generator=gen(34)),
                         torch.randn(1, 10, 3, dtype=D64, generator=gen(35)), torch.zeros(1, 10, dtype=D64)),
        "one_weight": (torch.randn(1, 10, 3, dtype=D64, generator=gen(36)),
                       torch.randn(1, 10, 3, dtype=D64, generator=gen(37)),
                       torch.eye(10, dtype=D64)[3:4]),
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_procrustes_degenerate_values_and_gradients_finite(case, dtype):
    src, dst, w = _degenerate_cases()[case]
    src = src.to(dtype).requires_grad_(True)
    dst = dst.to(dtype).requires_grad_(True)
    if w is not None:
        w = w.to(dtype).requires_grad_(True)
    R, t = weighted_procrustes(src, dst, w)
    assert torch.isfinite(R).all() and torch.isfinite(t).all()
    assert_rotation(R.detach().double(), 1e-5)
    # a generic loss touching every output
    (R * torch.arange(9, dtype=dtype).reshape(3, 3)).sum().add(t.pow(2).sum()).backward()
    for x in (src, dst) + ((w,) if w is not None else ()):
        assert x.grad is not None and torch.isfinite(x.grad).all(), case
    if case == "zero_weights":
        assert torch.allclose(R.detach(), torch.eye(3, dtype=dtype)[None])
        assert torch.allclose(t.detach(), (dst.mean(1) - src.mean(1)).detach(), atol=1e-6)
    if case == "repeated":
        assert torch.allclose(R.detach(), torch.eye(3, dtype=dtype)[None], atol=1e-6)
        assert torch.allclose(t.detach(), torch.full((1, 3), 0.7, dtype=dtype), atol=1e-6)
    if case == "collinear":  # the line itself is mapped exactly
        moved = src.detach() @ R.detach().transpose(1, 2) + t.detach()[:, None]
        assert torch.allclose(moved, dst.detach(), atol=1e-4)


def test_procrustes_gradcheck_generic():
    src = torch.randn(2, 7, 3, dtype=D64, generator=gen(40), requires_grad=True)
    dst = torch.randn(2, 7, 3, dtype=D64, generator=gen(41), requires_grad=True)
    w = (torch.rand(2, 7, dtype=D64, generator=gen(42)) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: weighted_procrustes(a, b, c, eps=0.0), (src, dst, w))
    assert torch.autograd.gradcheck(lambda a, b, c: weighted_procrustes(a, b, c), (src, dst, w))


def test_safe_svd_matches_torch_gradient_generic():
    A = torch.randn(4, 3, 3, dtype=D64, generator=gen(43))
    G = torch.randn(4, 3, 3, dtype=D64, generator=gen(44))

    def loss(svd, A):
        U, S, Vh = svd(A)
        # sign-invariant function of the factors
        return ((U * S[:, None, :]) @ Vh * G).sum() + S.pow(3).sum() + ((U @ Vh) * G).sum()

    A1 = A.clone().requires_grad_(True)
    loss(safe_svd, A1).backward()
    A2 = A.clone().requires_grad_(True)
    loss(torch.linalg.svd, A2).backward()
    assert torch.allclose(A1.grad, A2.grad, atol=1e-9)
    # torch's own backward is not finite at repeated singular values; ours is
    A3 = torch.eye(3, dtype=D64).repeat(2, 1, 1).requires_grad_(True)
    U, S, Vh = safe_svd(A3)
    ((U @ Vh) * G[:2]).sum().backward()
    assert torch.isfinite(A3.grad).all()


def test_procrustes_batch_sizes_and_errors():
    src = torch.randn(1, 5, 3, generator=gen(45))
    R, t = weighted_procrustes(src, src + 1.0)
    assert R.shape == (1, 3, 3) and t.shape == (1, 3)
    assert torch.allclose(t, torch.ones(1, 3), atol=1e-5)
    R, t = weighted_procrustes(torch.zeros(0, 5, 3), torch.zeros(0, 5, 3))
    assert R.shape == (0, 3, 3) and t.shape == (0, 3)
    with pytest.raises(CanocapsInputError, match="shape"):
        weighted_procrustes(torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(CanocapsInputError, match="differ"):
        weighted_procrustes(torch.zeros(1, 5, 3), torch.zeros(1, 4, 3))
    with pytest.raises(CanocapsInputError, match="weights"):
        weighted_procrustes(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), torch.ones(1, 4))


# ----------------------------------------------------------------------------- metrics


def test_rotation_error_deg():
    R = random_rotation(10, dtype=D64, generator=gen(50))
    axis = torch.nn.functional.normalize(torch.randn(10, 3, dtype=D64, generator=gen(51)), dim=-1)
    angles = torch.linspace(0.0, 180.0, 10, dtype=D64)
    delta = axis_angle_to_matrix(axis * torch.deg2rad(angles)[:, None])
    err = rotation_error_deg(R @ delta, R)
    assert err.shape == (10,)
    assert torch.allclose(err, angles, atol=1e-6)
    # agrees with the clamped-acos definition
    rel = (R @ delta).transpose(1, 2) @ R
    acos = torch.rad2deg(torch.acos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert torch.allclose(err, acos, atol=1e-5)
    # precise for tiny angles, where acos would return 0 or garbage
    tiny = axis_angle_to_matrix(torch.tensor([[1e-7, 0.0, 0.0]], dtype=D64))
    assert torch.allclose(rotation_error_deg(tiny, torch.eye(3, dtype=D64)[None]),
                          torch.tensor([math.degrees(1e-7)], dtype=D64), rtol=1e-6)
    # 4x4 accepted, unbatched gives a scalar
    T = make_transform(R[0], torch.ones(3, dtype=D64))
    assert rotation_error_deg(T, T).shape == ()
    assert rotation_error_deg(T, T).item() == pytest.approx(0.0, abs=1e-6)


def test_translation_error_and_rmse():
    t1 = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    t2 = torch.tensor([[3.0, 4.0, 0.0], [1.0, 2.0, 2.0]])
    assert torch.allclose(translation_error(t1, t2), torch.tensor([5.0, 0.0]))
    p = torch.randn(2, 50, 3, dtype=D64, generator=gen(52))
    T = random_transform(2, dtype=D64, generator=gen(53))
    assert torch.allclose(registration_rmse(p, T, T), torch.zeros(2, dtype=D64), atol=1e-12)
    shift = make_transform(torch.eye(3, dtype=D64).expand(2, 3, 3), torch.tensor([[0.0, 0.3, 0.4]] * 2, dtype=D64))
    assert torch.allclose(registration_rmse(p, compose_transforms(shift, T), T), torch.full((2,), 0.5, dtype=D64))
    # the standard definition, written out
    T_est = random_transform(2, dtype=D64, generator=gen(54))
    a = p @ T_est[:, :3, :3].transpose(1, 2) + T_est[:, None, :3, 3]
    b = p @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
    expected = ((a - b) ** 2).sum(-1).mean(-1).sqrt()
    assert torch.allclose(registration_rmse(p, T_est, T), expected)
    assert registration_rmse(p[0], T_est[0], T[0]).shape == ()
    with pytest.raises(CanocapsInputError):
        registration_rmse(torch.zeros(2, 0, 3), T, T)


def _brute_chamfer(x, y, squared):
    from canocaps.ops.reference import chamfer_reference  # brute force, per cloud

    (cx, cy), _ = chamfer_reference(x, y, point_reduction=None, batch_reduction=None, squared=squared)
    return cx.mean(1), cy.mean(1)


@pytest.mark.parametrize("squared", [True, False])
def test_chamfer_distance_conventions(squared):
    x = torch.randn(3, 40, 3, dtype=D64, generator=gen(55))
    y = torch.randn(3, 30, 3, dtype=D64, generator=gen(56))
    a, b = _brute_chamfer(x, y, squared)
    assert torch.allclose(chamfer_distance(x, y, squared=squared), a + b, atol=1e-9)
    assert torch.allclose(chamfer_distance(x, y, squared=squared, reduction="mean"), (a + b) / 2, atol=1e-9)
    assert torch.allclose(chamfer_distance(x, y, squared=squared, batch_reduction="mean"), (a + b).mean(), atol=1e-9)
    assert torch.allclose(chamfer_distance(x, y, squared=squared, batch_reduction="sum"), (a + b).sum(), atol=1e-9)
    assert torch.allclose(chamfer_distance(x[1], y[1], squared=squared), (a + b)[1], atol=1e-9)
    assert torch.allclose(chamfer_distance(x, x, squared=squared), torch.zeros(3, dtype=D64), atol=1e-9)


def test_chamfer_distance_errors_and_grad():
    x = torch.randn(2, 10, 3, requires_grad=True, generator=gen(57))
    chamfer_distance(x, torch.randn(2, 12, 3, generator=gen(58))).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(CanocapsInputError):
        chamfer_distance(x, x, reduction="max")
    with pytest.raises(CanocapsInputError):
        chamfer_distance(x, torch.zeros(10, 3))
    with pytest.raises(CanocapsInputError):
        chamfer_distance(x, torch.zeros(2, 0, 3))


def _skewed_cloud(n, seed):
    g = gen(seed)
    p = torch.randn(n, 3, dtype=D64, generator=g) * torch.tensor([3.0, 1.5, 0.5], dtype=D64)
    return p + 0.4 * p.pow(2)  # non-zero third moments on every axis


def test_pca_frame_canonicalises_rotated_copies():
    p = _skewed_cloud(500, 60)
    T = random_transform(6, max_translation=1.0, dtype=D64, generator=gen(61))
    clouds = apply_transform(T, p)  # (6, 500, 3)
    R, t = pca_frame(clouds)
    assert_rotation(R)
    canon = apply_transform(make_transform(R, t), clouds)
    assert torch.allclose(canon.mean(1), torch.zeros(6, 3, dtype=D64), atol=1e-10)
    cov = canon.transpose(1, 2) @ canon / 500
    var = cov.diagonal(dim1=1, dim2=2)
    assert torch.allclose(cov - torch.diag_embed(var), torch.zeros_like(cov), atol=1e-8)
    assert (var[:, 0] > var[:, 1]).all() and (var[:, 1] > var[:, 2]).all()
    m3 = canon.pow(3).mean(1)
    assert (m3[:, :2] > 0).all()
    # every rotated copy lands on the same canonical cloud
    assert (canon - canon[0]).abs().max() < 1e-8
    R1, t1 = pca_frame(p)
    assert R1.shape == (3, 3) and t1.shape == (3,)
    assert torch.allclose(apply_transform(make_transform(R1, t1), p), canon[0], atol=1e-8)


def test_procrustes_low_precision_inputs_solved_in_float32():
    src = torch.randn(3, 20, 3, generator=gen(70))
    T = random_transform(3, generator=gen(71))
    dst = apply_transform(T, src)
    R, t = weighted_procrustes(src.bfloat16(), dst.bfloat16())
    assert R.dtype == torch.float32 and t.dtype == torch.float32
    assert rotation_error_deg(R, T[:, :3, :3]).max() < 3.0  # bfloat16 inputs carry ~3 digits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        R2, _ = weighted_procrustes(src, dst)
    assert R2.dtype == torch.float32
    assert rotation_error_deg(R2, T[:, :3, :3]).max() < 1e-2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_geometry_on_cuda_matches_cpu():
    g = gen(80)  # a CPU generator can seed CUDA draws
    R = random_rotation(16, device="cuda", generator=g)
    assert R.device.type == "cuda"
    assert torch.equal(R.cpu(), random_rotation(16, generator=gen(80)))
    src = torch.randn(16, 64, 3, generator=gen(81))
    w = torch.rand(16, 64, generator=gen(82))
    T = random_transform(16, generator=gen(83))
    dst = apply_transform(T, src)
    Rc, tc = weighted_procrustes(src.cuda().requires_grad_(), dst.cuda(), w.cuda())
    Rr, tr = weighted_procrustes(src, dst, w)
    assert torch.allclose(Rc.cpu(), Rr, atol=1e-5) and torch.allclose(tc.cpu(), tr, atol=1e-5)
    assert rotation_error_deg(Rc, T.cuda()[:, :3, :3]).max() < 1e-2
    Rc.sum().backward()
    x = src.cuda()
    assert torch.allclose(chamfer_distance(x, x + 0.1).cpu(), chamfer_distance(src, src + 0.1), atol=1e-5)


def test_chamfer_distance_padded_lengths():
    x = torch.randn(2, 30, 3, dtype=D64, generator=gen(90))
    y = torch.randn(2, 25, 3, dtype=D64, generator=gen(91))
    xl, yl = torch.tensor([30, 12]), torch.tensor([20, 25])
    got = chamfer_distance(x, y, x_lengths=xl, y_lengths=yl)
    for b in range(2):
        a, c = _brute_chamfer(x[b:b + 1, : xl[b]], y[b:b + 1, : yl[b]], True)
        assert torch.allclose(got[b], (a + c)[0], atol=1e-9)
