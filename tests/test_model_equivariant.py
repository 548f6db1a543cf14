"""Exactly equivariant capsules: invariant features, the moment frame, exactness end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from canocaps.geometry import pca_frame, random_rotation, rotation_error_deg
from canocaps.model import CanonicalCapsules, CapsulesConfig
from canocaps.model.invariants import NUM_INVARIANTS, point_invariants
from canocaps.model.moment_frame import MomentFrame, point_areas, weighted_moment_frame


def _clouds(b: int = 3, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Asymmetric test clouds: anisotropic Gaussians with a bump, float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0.6, 0.3], dtype=torch.float64)
    x[:, : n // 8] += torch.tensor([1.5, 0.5, 0.2], dtype=torch.float64)
    return x


def _mirror() -> torch.Tensor:
    return torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


def test_point_invariants_are_invariant_to_rigid_motion_and_scale():
    x = _clouds()
    Q = random_rotation(3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    moved = 2.5 * x @ Q.transpose(1, 2) + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    f, g = point_invariants(x, 16), point_invariants(moved, 16)
    assert f.shape == (3, 256, NUM_INVARIANTS)
    assert torch.isfinite(f).all()
    torch.testing.assert_close(f, g, atol=1e-8, rtol=1e-6)
    # a permutation of the points permutes the features
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(point_invariants(x[:, perm], 16), f[:, perm], atol=1e-8, rtol=1e-6)


def test_point_invariants_keep_handedness():
    x = _clouds()
    f, m = point_invariants(x, 16), point_invariants(x @ _mirror(), 16)
    pseudo = [5, 14]
    even = [i for i in range(NUM_INVARIANTS) if i not in pseudo]
    torch.testing.assert_close(f[..., even], m[..., even], atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(f[..., pseudo], -m[..., pseudo], atol=1e-8, rtol=1e-6)
    assert f[..., pseudo].abs().mean() > 1e-2  # not trivially zero


def test_uniform_moment_frame_is_the_pca_frame():
    x = _clouds()
    pose = weighted_moment_frame(x)
    R, t = pca_frame(x)
    torch.testing.assert_close(pose.R, R, atol=1e-9, rtol=0)
    torch.testing.assert_close(pose.t, t, atol=1e-9, rtol=0)
    assert (pose.eigenvalues[:, :-1] >= pose.eigenvalues[:, 1:]).all()


def test_moment_frame_weights_receive_gradients():
    x = _clouds().float()
    w = torch.ones(3, 256, requires_grad=True)
    pose = weighted_moment_frame(x, w)
    (pose.t.sum() + pose.eigenvalues.sum() + pose.skew.abs().sum()).backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def _square_sample(n_left: int, n_right: int, seed: int) -> torch.Tensor:
    """The unit square z = 0, its left half sampled ``n_left`` times, its right half ``n_right``."""
    g = torch.Generator().manual_seed(seed)
    left = torch.rand(n_left, 2, generator=g, dtype=torch.float64) * torch.tensor([0.5, 1.0], dtype=torch.float64)
    right = torch.rand(n_right, 2, generator=g, dtype=torch.float64) * torch.tensor([0.5, 1.0], dtype=torch.float64)
    right[:, 0] += 0.5
    xy = torch.cat([left, right])
    return torch.cat([xy, torch.zeros(len(xy), 1, dtype=torch.float64)], dim=1)[None]


def test_area_weights_undo_a_density_change():
    """A surface sampled 3x denser on one half: the plain mean is pulled to it, the
    area-weighted mean stays at the surface's centroid (0.5)."""
    x = _square_sample(1800, 600, seed=0)
    plain = weighted_moment_frame(x).centroid[0, 0]
    area = point_areas(x, 10)
    weighted = weighted_moment_frame(x, area).centroid[0, 0]
    assert abs(float(plain) - 0.375) < 0.02  # (0.25 * 3 + 0.75) / 4
    assert abs(float(weighted) - 0.5) < 0.03
    assert area.shape == (1, 2400) and (area > 0).all()
    # duplicated points keep a positive weight
    assert (point_areas(torch.cat([x, x], dim=1), 3) > 0).all()


def test_area_weights_ignore_isolated_outliers():
    """5 % outliers in the box around a surface are isolated: with plain area weights they
    would count most; they get next to none, and the weighted centroid stays put."""
    x = _square_sample(1200, 1200, seed=1)
    g = torch.Generator().manual_seed(2)
    outliers = torch.rand(1, 120, 3, generator=g, dtype=torch.float64) * 2.0 - 0.5
    noisy = torch.cat([x, outliers], dim=1)
    area = point_areas(noisy, 10)
    share = float(area[0, 2400:].sum() / area[0].sum())
    assert share < 0.01
    assert float(point_areas(noisy, 10, outlier_ratio=float("inf"))[0, 2400:].sum() / area[0].sum()) > 0.3
    c = weighted_moment_frame(noisy, area).centroid[0]
    torch.testing.assert_close(c, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64), atol=0.03, rtol=0)


def test_area_weights_steady_the_frame_of_independent_samples():
    """Two independent samples of one surface: area-weighted moments (a quadrature) give
    principal axes closer to each other than the plain mean (Monte Carlo) does. Axes are
    compared up to sign (largest angle between matching axes, degrees); the signs come
    from third moments, which many procedural shapes nearly lack."""
    from canocaps.data.procedural.generator import CLASS_NAMES, make_mesh, shape_rng
    from canocaps.data.procedural.mesh import sample_surface

    plain, weighted = [], []
    for i in range(16):
        rng = shape_rng(0, "val", CLASS_NAMES[i % len(CLASS_NAMES)], i)
        mesh = make_mesh(CLASS_NAMES[i % len(CLASS_NAMES)], rng)
        x = torch.as_tensor(np.stack([sample_surface(mesh, 512, rng) for _ in range(2)]), dtype=torch.float64)
        for out, w in ((plain, None), (weighted, point_areas(x, 10))):
            pose = weighted_moment_frame(x, w)
            cos = (pose.R[0] * pose.R[1]).sum(-1).abs().clamp(max=1.0)
            out.append(float(torch.rad2deg(torch.arccos(cos)).max()))
    assert np.median(weighted) < 0.6 * np.median(plain)


def test_untrained_area_moment_frame_is_area_weighted_pca():
    x = _clouds()
    frame = MomentFrame(feat_dim=8, area_k=10).double()
    pose = frame(x, torch.randn(3, 256, 8, dtype=torch.float64))
    torch.testing.assert_close(pose.R, weighted_moment_frame(x, point_areas(x, 10)).R, atol=1e-9, rtol=0)
    assert rotation_error_deg(pose.R, weighted_moment_frame(x).R).max() > 0.1  # not the plain PCA frame


@pytest.mark.parametrize("frame,area_k", [("moments", 0), ("moments", 10), ("procrustes", 0)])
def test_invariant_model_is_exactly_equivariant(frame, area_k):
    torch.manual_seed(0)
    net = CanonicalCapsules(CapsulesConfig.preset("cpu", encoder="invariant", frame=frame, num_points=128,
                                                  moment_area_k=area_k)).double()
    net.eval()
    x = _clouds(4, 200)
    Q = random_rotation(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = net(x)
        b = net(x @ Q.transpose(1, 2) + torch.tensor([0.1, 0.2, -0.1], dtype=torch.float64))
    torch.testing.assert_close(a.descriptors, b.descriptors, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(b.keypoints, a.keypoints @ Q.transpose(1, 2) + torch.tensor([0.1, 0.2, -0.1],
                                                                                          dtype=torch.float64),
                               atol=1e-9, rtol=1e-7)
    assert rotation_error_deg(b.R @ Q, a.R).max() < 0.05
    assert (a.canonical_points - b.canonical_points).abs().max() < 1e-3
    with torch.no_grad():
        m = net(x @ _mirror())
    assert (m.descriptors - a.descriptors).abs().max() > 1e-4  # a mirror image is a different shape


def test_distance_routing_starts_as_no_routing_stays_exact_and_compacts_capsules():
    from canocaps.model.losses import localization_loss

    torch.manual_seed(0)
    cfg = dict(encoder="invariant", frame="moments", num_points=128, moment_area_k=10)
    plain = CanonicalCapsules(CapsulesConfig.preset("cpu", **cfg)).double().eval()
    routed = CanonicalCapsules(CapsulesConfig.preset("cpu", routing_iterations=2, **cfg)).double().eval()
    with torch.no_grad():  # capsules that differ from the start (untrained ones attend almost uniformly)
        plain.capsules.logits.weight.mul_(30.0)
    missing = routed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing == ["capsules.routing_scale"]
    x = _clouds(4, 200)
    with torch.no_grad():
        a0, a = plain(x, decode=False), routed(x, decode=False)
        torch.testing.assert_close(a.attention, a0.attention, atol=0, rtol=0)  # gamma = 0: no change
        routed.capsules.routing_scale.fill_(4.0)
        a = routed(x, decode=False)
        Q = random_rotation(4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        shift = torch.tensor([0.1, 0.2, -0.1], dtype=torch.float64)
        b = routed(2.5 * x @ Q.transpose(1, 2) + shift, decode=False)
    assert (a.attention - a0.attention).abs().max() > 1e-2
    torch.testing.assert_close(b.attention, a.attention, atol=1e-9, rtol=1e-7)  # rigid motion and scale
    torch.testing.assert_close(b.keypoints, 2.5 * a.keypoints @ Q.transpose(1, 2) + shift, atol=1e-9, rtol=1e-7)
    # an E-step of k-means: each capsule's points lie closer to its keypoint
    assert localization_loss(x, a.weights, a.keypoints) < 0.9 * localization_loss(x, a0.weights, a0.keypoints)


def test_encoder_and_area_weights_share_one_knn():
    """The network computes the cloud's kNN once for both; the result is that of separate searches."""
    from canocaps.ops import knn

    torch.manual_seed(0)
    net = CanonicalCapsules(CapsulesConfig.preset("cpu", encoder="invariant", frame="moments", num_points=128,
                                                  moment_area_k=10)).double().eval()
    x = _clouds(2, 200)
    shared = net._shared_neighbours(x)
    assert shared is not None and shared.idx.shape[-1] >= max(net.encoder.k, 11)
    with torch.no_grad():
        a = net(x, decode=False)
        net._shared_neighbours = lambda p: None  # each part searches on its own
        b = net(x, decode=False)
    for name in ("features", "keypoints", "R", "t"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=0, rtol=0)
    torch.testing.assert_close(point_areas(x, 10, nearest=knn(x, x, 16)), point_areas(x, 10), atol=0, rtol=0)
    # too few neighbours given: searched again, not silently truncated
    torch.testing.assert_close(point_areas(x, 10, nearest=knn(x, x, 5)), point_areas(x, 10), atol=0, rtol=0)
    plain = CanonicalCapsules(CapsulesConfig.preset("cpu", encoder="invariant", num_points=128, moment_area_k=0))
    assert plain._shared_neighbours(x.float()) is None


def test_acn_model_is_not_exactly_equivariant():
    """The paper's encoder sees coordinates: what the invariant encoder buys is exactness."""
    torch.manual_seed(0)
    net = CanonicalCapsules(CapsulesConfig.preset("cpu", num_points=128)).double().eval()
    x = _clouds(4, 200)
    Q = random_rotation(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = net(x), net(x @ Q.transpose(1, 2))
    assert rotation_error_deg(b.R @ Q, a.R).max() > 1.0


def test_config_rejects_unknown_encoder_and_frame():
    from canocaps.errors import CanocapsInputError

    with pytest.raises(CanocapsInputError, match="encoder"):
        CapsulesConfig(encoder="vn")
    with pytest.raises(CanocapsInputError, match="frame"):
        CapsulesConfig(frame="pca")
    with pytest.raises(CanocapsInputError, match="moment_area_k"):
        CapsulesConfig(moment_area_k=-1)


def test_moment_losses_are_zero_for_identical_views_and_positive_otherwise():
    from canocaps.model.losses import frame_conditioning_loss, frame_stability_loss

    x = _clouds(2, 300)
    Q = random_rotation(2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    x2 = x @ Q.transpose(1, 2)
    p1, p2 = weighted_moment_frame(x), weighted_moment_frame(x2)
    same = float(frame_stability_loss(p1, p2, x, x2, Q))
    # identical views: no angle term, only the skew hinge of axes whose skew is below 0.25
    hinge = float(torch.relu(0.25 - p1.skew[:, :2].abs()).sum(-1).mean())
    assert same == pytest.approx(hinge, abs=1e-9)
    y = _clouds(2, 300, seed=9) @ Q.transpose(1, 2)  # another sample: the frames differ a little
    assert float(frame_stability_loss(p1, weighted_moment_frame(y), x, y, Q)) > same + 1e-6
    flipped = x2 @ torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))  # a turned copy: a sign flip
    assert float(frame_stability_loss(p1, weighted_moment_frame(flipped), x, flipped, Q)) > same + 0.1
    iso = weighted_moment_frame(torch.randn(2, 4000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert float(frame_conditioning_loss(iso.eigenvalues, iso.skew)) > float(frame_conditioning_loss(p1.eigenvalues, p1.skew))


def test_part_labels_come_with_the_very_same_points():
    from canocaps.data.procedural.generator import sample_shape, sample_shape_parts

    pts, parts = sample_shape_parts("chair", 0, "test", 2, 512)
    assert np.array_equal(pts, sample_shape("chair", 0, "test", 2, 512))
    assert parts.shape == (512,) and parts.min() == 0 and len(np.unique(parts)) >= 4


def test_part_agreement_scores_an_oracle_above_a_random_assignment():
    from canocaps.heads.parts import part_agreement

    class Oracle:
        """Assigns each point to its true part (through a lookup on the sampled points)."""

        config = CapsulesConfig.preset("cpu", num_points=256)

        def canonicalize(self, x):
            from types import SimpleNamespace

            return SimpleNamespace(assignment=torch.as_tensor(self.labels[None]))

    from canocaps.data.procedural import generator

    oracle = Oracle()
    original = generator.sample_shape_parts

    def spy(*a, **kw):
        pts, parts = original(*a, **kw)
        oracle.labels = parts
        return pts, parts

    generator.sample_shape_parts = spy
    try:
        res = part_agreement(oracle, per_class=1, progress=False)
    finally:
        generator.sample_shape_parts = original
    assert res["nmi"] == pytest.approx(1.0)
    assert 0.0 < res["kmeans_nmi"] < 1.0
    assert res["num_shapes"] == 14


def test_shipped_weights_are_exactly_equivariant_on_real_shapes():
    """The issue's target on trained weights: same points under rigid motions -> frames within
    0.05 deg, canonical clouds within 1e-3 (float32, the shipped model as users run it)."""
    import canocaps
    from canocaps.data import build_dataset

    model = canocaps.load_pretrained()
    assert model.config.encoder == "invariant" and model.config.frame == "moments"
    ds = build_dataset("realmesh", "test", 1024, root=None, seed=0)
    x = torch.stack([ds[i]["points"] for i in range(0, len(ds), len(ds) // 8)][:8]).float()
    Q = random_rotation(len(x), generator=torch.Generator().manual_seed(4))
    t = torch.tensor([0.15, -0.2, 0.05])
    a = model.canonicalize(x)
    b = model.canonicalize(x @ Q.transpose(1, 2) + t)
    assert float(rotation_error_deg(b.R.double() @ Q.double(), a.R.double()).max()) < 0.05
    assert float((a.canonical_points - b.canonical_points).abs().max()) < 1e-3
