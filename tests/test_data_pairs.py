"""Statistics and contracts of canocaps.data.pairs.SE3PairSampler."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from canocaps.data.pairs import SE3PairSampler, crop_and_refill, haar_angle_cdf, sample_rotations
from canocaps.errors import CanocapsInputError
from canocaps.geometry import apply_transform, compose_transforms, invert_transform, rotation_angle

N_STAT = 20000


def _angles(R: torch.Tensor) -> np.ndarray:
    return rotation_angle(R).double().numpy()


def test_full_rotation_angle_follows_haar_density():
    g = torch.Generator().manual_seed(1)
    T = SE3PairSampler().sample_transform(N_STAT, dtype=torch.float64, generator=g)
    theta = _angles(T[:, :3, :3])
    p = stats.kstest(theta, lambda x: haar_angle_cdf(torch.as_tensor(x)).numpy()).pvalue
    assert p > 1e-3
    # the test has power: uniform angles are rejected
    R_unif = sample_rotations(N_STAT, 180.0, "uniform", generator=torch.Generator().manual_seed(2))
    p_unif = stats.kstest(_angles(R_unif), lambda x: haar_angle_cdf(torch.as_tensor(x)).numpy()).pvalue
    assert p_unif < 1e-6


def test_rotated_axis_is_uniform_on_the_sphere():
    R = SE3PairSampler().sample_transform(N_STAT, dtype=torch.float64, generator=torch.Generator().manual_seed(3))[:, :3, :3]
    for col in range(3):
        v = R[:, :, col].numpy()  # image of a basis vector
        # Archimedes: each coordinate of a uniform point on S^2 is uniform on [-1, 1]; azimuth uniform
        assert stats.kstest(v[:, 2], "uniform", args=(-1, 2)).pvalue > 1e-3
        az = np.arctan2(v[:, 1], v[:, 0])
        assert stats.kstest(az, "uniform", args=(-math.pi, 2 * math.pi)).pvalue > 1e-3
    assert np.allclose(np.linalg.det(R.numpy()), 1.0, atol=1e-9)


@pytest.mark.parametrize("limit", [30.0, 90.0])
def test_angle_limit_is_respected_and_restricted_haar(limit):
    R = sample_rotations(N_STAT, limit, "haar", generator=torch.Generator().manual_seed(4))
    theta = _angles(R)
    a = math.radians(limit)
    assert theta.max() <= a + 1e-6
    cdf = lambda x: haar_angle_cdf(torch.as_tensor(x), a).numpy()  # noqa: E731
    assert stats.kstest(theta, cdf).pvalue > 1e-3
    Ru = sample_rotations(N_STAT, limit, "uniform", generator=torch.Generator().manual_seed(5))
    assert stats.kstest(_angles(Ru), "uniform", args=(0, a)).pvalue > 1e-3


def test_translation_uniform_in_box():
    T = SE3PairSampler(max_translation=0.2).sample_transform(N_STAT, dtype=torch.float64,
                                                             generator=torch.Generator().manual_seed(6))
    t = T[:, :3, 3].numpy()
    assert np.abs(t).max() <= 0.2
    for k in range(3):
        assert stats.kstest(t[:, k], "uniform", args=(-0.2, 0.4)).pvalue > 1e-3
    assert abs(np.corrcoef(t[:, 0], t[:, 1])[0, 1]) < 0.05
    assert torch.equal(T[:, 3], torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(N_STAT, 4))


def test_relative_transform_maps_view1_onto_view2():
    x = torch.randn(8, 200, 3)
    pb = SE3PairSampler()(x, generator=torch.Generator().manual_seed(7))
    assert pb.view1.shape == pb.view2.shape == (8, 200, 3)
    assert torch.allclose(apply_transform(pb.T12, pb.view1), pb.view2, atol=1e-5)
    assert torch.allclose(compose_transforms(pb.T12, pb.T1), pb.T2, atol=1e-6)
    assert torch.allclose(apply_transform(pb.T1, x), pb.view1, atol=1e-5)
    assert torch.allclose(apply_transform(invert_transform(pb.T2), pb.view2), x, atol=1e-5)
    # views differ from the input and from each other (a real motion was applied)
    assert (pb.view1 - x).abs().max() > 0.1 and (pb.view2 - pb.view1).abs().max() > 0.1


def test_points_b_is_moved_by_T2():
    a, b = torch.randn(4, 64, 3), torch.randn(4, 64, 3)
    v1, v2, T1, T2, T12 = SE3PairSampler()(a, b, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(v1, apply_transform(T1, a), atol=1e-5)
    assert torch.allclose(v2, apply_transform(T2, b), atol=1e-5)


def test_generator_makes_it_reproducible():
    x = torch.randn(3, 50, 3)
    s = SE3PairSampler(noise_std=0.01, crop_ratio=0.2)
    p1 = s(x, generator=torch.Generator().manual_seed(9))
    p2 = s(x, generator=torch.Generator().manual_seed(9))
    p3 = s(x, generator=torch.Generator().manual_seed(10))
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    assert not torch.equal(p1.T1, p3.T1)


def test_crop_drops_one_side_of_a_plane_and_refills():
    B, N, ratio = 16, 500, 0.3
    x = torch.randn(B, N, 3, dtype=torch.float64)
    out, normal = crop_and_refill(x, ratio, torch.Generator().manual_seed(11), return_normal=True)
    assert out.shape == x.shape
    keep = N - round(ratio * N)
    for b in range(B):
        # every output point is an input point; exactly `keep` distinct ones survive
        d = torch.cdist(out[b], x[b], compute_mode="donot_use_mm_for_euclid_dist")
        assert d.min(1).values.max() < 1e-12
        kept = torch.unique(d.argmin(1))
        assert len(kept) == keep
        # the kept points are the `keep` lowest along the normal: a plane separates them from the dropped ones
        proj = x[b] @ normal[b]
        dropped = torch.ones(N, dtype=torch.bool)
        dropped[kept] = False
        assert proj[kept].max() < proj[dropped].min()
    # refilled order is shuffled: not sorted along the normal
    assert not torch.all((out[0] @ normal[0]).diff() >= 0)


def test_crop_in_sampler_keeps_rigid_relation_per_view():
    x = torch.randn(4, 300, 3)
    pb = SE3PairSampler(crop_ratio=0.4)(x, generator=torch.Generator().manual_seed(12))
    back = apply_transform(invert_transform(pb.T1), pb.view1)
    d = torch.cdist(back, x, compute_mode="donot_use_mm_for_euclid_dist").min(-1).values
    assert d.max() < 1e-4  # every view point is a moved input point
    assert len(torch.unique(torch.cdist(back[0], x[0], compute_mode="donot_use_mm_for_euclid_dist").argmin(1))) == 300 - 120


def test_noise_statistics():
    x = torch.zeros(4, 5000, 3, dtype=torch.float64)
    s = SE3PairSampler(noise_std=0.02)
    pb = s(x, generator=torch.Generator().manual_seed(13))
    clean = apply_transform(pb.T1, x)
    e = (pb.view1 - clean).numpy().ravel()
    assert abs(e.std() - 0.02) < 0.02 * 0.03
    assert abs(e.mean()) < 0.001
    assert stats.kstest(e / 0.02, "norm").pvalue > 1e-3
    e2 = (pb.view2 - apply_transform(pb.T2, x)).numpy().ravel()
    assert abs(np.corrcoef(e, e2)[0, 1]) < 0.02  # independent per view


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved(dtype):
    pb = SE3PairSampler(noise_std=0.01, crop_ratio=0.1)(torch.randn(2, 32, 3, dtype=dtype))
    assert all(t.dtype == dtype for t in pb)
    assert all(t.device.type == "cpu" for t in pb)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_is_preserved_with_cpu_or_cuda_generator():
    x = torch.randn(4, 128, 3, device="cuda")
    for g in (None, torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)):
        pb = SE3PairSampler(noise_std=0.01, crop_ratio=0.2)(x, generator=g)
        assert all(t.device.type == "cuda" for t in pb)
    pb = SE3PairSampler()(x)
    assert torch.allclose(apply_transform(pb.T12, pb.view1), pb.view2, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(max_angle_deg=200), dict(max_angle_deg=-1), dict(max_translation=-0.1),
                                dict(noise_std=float("nan")), dict(crop_ratio=1.0), dict(angle_distribution="gauss")])
def test_bad_arguments(kw):
    with pytest.raises(CanocapsInputError):
        SE3PairSampler(**kw)


def test_bad_points():
    s = SE3PairSampler()
    with pytest.raises(CanocapsInputError, match="points_a"):
        s(torch.randn(10, 3))
    with pytest.raises(CanocapsInputError, match="points_b"):
        s(torch.randn(2, 10, 3), torch.randn(3, 10, 3))
