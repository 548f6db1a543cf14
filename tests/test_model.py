"""Unit tests of canocaps.model: config, ACN, pooling, canonicaliser, decoder, losses, API."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError, CanocapsWeightsError, OutputExistsError
from canocaps.geometry import random_rotation, rotation_error_deg
from canocaps.model import CanonicalCapsules, CapsulesConfig
from canocaps.model import losses as L
from canocaps.model.acn import acn, acn_reference
from canocaps.model.capsules import pool_capsules

TINY = dict(num_points=64, num_capsules=4, feat_dim=16, num_blocks=1, layers_per_block=1,
            canon_hidden=(32,), grid_dim=2, decoder_bottleneck=16)


def tiny(**kw) -> CanonicalCapsules:
    torch.manual_seed(0)
    return CanonicalCapsules(CapsulesConfig(**{**TINY, **kw}))


# ------------------------------------------------------------------------ config
def test_config_defaults_are_paper_and_yaml_round_trip():
    c = CapsulesConfig()
    assert (c.num_points, c.num_capsules, c.feat_dim, c.num_blocks, c.layers_per_block) == (1024, 10, 128, 3, 2)
    assert (c.grid_dim, c.decoder_bottleneck, c.knn_k) == (10, 1280, 0)
    w = c.loss_weights
    assert (w.reconstruction, w.localization, w.equilibrium, w.equivariance, w.invariance, w.canonical) == \
        (1.0, 1.0, 1e-3, 5.0, 1.0, 1.0)
    cpu = CapsulesConfig.preset("cpu", knn_k=8)
    back = CapsulesConfig.from_yaml(cpu.to_yaml())
    assert back == cpu and back.knn_k == 8
    assert CapsulesConfig.from_yaml("model:\n  num_capsules: 5\n").num_capsules == 5


@pytest.mark.parametrize("bad", [dict(num_capsules=0), dict(procrustes_weights="x"), dict(nope=1),
                                 dict(num_points=3, num_capsules=4), dict(routing_iterations=-1),
                                 dict(routing_init=-1.0), dict(num_capsules="x"), dict(eps="x"), dict(local_k=2.5),
                                 dict(center_input=1), dict(loss_weights={"localization": "x"})])
def test_config_rejects_bad_values(bad):
    with pytest.raises(CanocapsInputError):
        CapsulesConfig.from_dict({**TINY, **bad})


# ---------------------------------------------------------------------------- ACN
def test_acn_fast_matches_reference_and_normalises():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(3, 50, 8, generator=g, dtype=torch.float64) * 3 + 5
    att = torch.softmax(torch.randn(3, 50, 4, generator=g, dtype=torch.float64), -1)
    out = acn(f, att, 1e-3)
    torch.testing.assert_close(out, acn_reference(f, att, 1e-3))
    # one branch: plain context normalisation -> zero mean, unit std over points
    one = acn(f, torch.ones(3, 50, 1, dtype=torch.float64), 1e-6)
    torch.testing.assert_close(one.mean(1), torch.zeros(3, 8, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(one.std(1, unbiased=False), torch.ones(3, 8, dtype=torch.float64), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------ capsules
def test_pooling_with_hard_assignment_gives_part_centroids():
    pts = torch.randn(2, 40, 3)
    feats = torch.randn(2, 40, 5)
    labels = torch.arange(40) % 4
    logits = torch.full((2, 40, 4), -30.0)
    logits[:, torch.arange(40), labels] = 30.0
    pooled = pool_capsules(pts, feats, logits)
    for k in range(4):
        torch.testing.assert_close(pooled.keypoints[:, k], pts[:, labels == k].mean(1))
        torch.testing.assert_close(pooled.descriptors[:, k], feats[:, labels == k].mean(1))
    torch.testing.assert_close(pooled.mass, torch.full((2, 4), 10.0))


# -------------------------------------------------------------------- canonicaliser
def test_procrustes_inside_model_recovers_known_transform():
    net = tiny().double()
    torch.manual_seed(1)
    mu = torch.randn(5, 4, 3, dtype=torch.float64)
    R = random_rotation(5, dtype=torch.float64)
    t = torch.randn(5, 3, dtype=torch.float64)
    target = mu @ R.transpose(1, 2) + t[:, None]
    target = target - target.mean(1, keepdim=True)  # canonical keypoints are centred
    net.canonicalizer.regress = lambda d: target  # type: ignore[assignment]
    pose = net.canonicalizer(torch.zeros(5, 4, 16, dtype=torch.float64), mu, torch.ones(5, 4, dtype=torch.float64))
    assert float(rotation_error_deg(pose.R, R).max()) < 1e-4  # eps*I regulariser + acos near 1
    torch.testing.assert_close(mu @ pose.R.transpose(1, 2) + pose.t[:, None], target)
    for mode in ("uniform", "mass"):
        net.canonicalizer.weighting = mode
        pose = net.canonicalizer(torch.zeros(5, 4, 16, dtype=torch.float64), mu,
                                 torch.rand(5, 4, dtype=torch.float64) + 0.1)
        assert float(rotation_error_deg(pose.R, R).max()) < 1e-4  # eps*I regulariser + acos near 1


# -------------------------------------------------------------------------- decoder
def test_decoder_fast_matches_per_capsule_loop_and_shape():
    net = tiny()
    net.decoder.train()
    d = torch.randn(3, 4, 16)
    kp = torch.randn(3, 4, 3)
    y = net.decoder(d, kp)
    assert y.shape == (3, 4 * (64 // 4), 3)
    torch.testing.assert_close(y, net.decoder.forward_reference(d, kp), atol=1e-5, rtol=1e-5)
    # capsule-major layout, tanh-bounded offsets around each canonical keypoint
    off = y.detach().reshape(3, 4, 16, 3) - kp[:, :, None]
    assert float(off.abs().max()) <= 1.0


# --------------------------------------------------------------------------- losses
def test_losses_zero_on_ideal_inputs_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    B, K = 2, 4
    mu = torch.randn(B, K, 3, generator=g)
    # localisation: every point sits on its capsule's keypoint
    pts = mu.repeat_interleave(5, dim=1)  # (B, 20, 3)
    w = torch.zeros(B, 20, K)
    w[:, torch.arange(20), torch.arange(20) // 5] = 0.2
    assert float(L.localization_loss(pts, w, mu)) == pytest.approx(0.0, abs=1e-10)
    assert float(L.localization_loss(pts + 0.1 * torch.randn(pts.shape, generator=g), w, mu)) > 1e-4
    # equilibrium: equal masses
    assert float(L.equilibrium_loss(torch.full((B, K), 5.0))) == 0.0
    assert float(L.equilibrium_loss(torch.tensor([[20.0, 0, 0, 0]]))) == pytest.approx(np.var([20, 0, 0, 0]))
    # equivariance: keypoints moved by the relative pose
    R = random_rotation(B, generator=g)
    t = torch.randn(B, 3, generator=g)
    mu2 = mu @ R.transpose(1, 2) + t[:, None]
    assert float(L.equivariance_loss(mu, mu2, R, t)) < 1e-10
    assert float(L.equivariance_loss(mu, mu2 + 0.1, R, t)) == pytest.approx(0.03, rel=1e-4)
    # invariance
    beta = torch.randn(B, K, 8, generator=g)
    assert float(L.invariance_loss(beta, beta)) == 0.0
    assert float(L.invariance_loss(beta, beta + 0.5)) == pytest.approx(0.25)
    # canonical
    assert float(L.canonical_loss(mu, mu2, R, t)) < 1e-10
    assert float(L.canonical_loss(mu, mu2, R.transpose(1, 2), t)) > 1e-3


def test_reconstruction_loss_convention():
    x = torch.randn(2, 30, 3)
    assert float(L.reconstruction_loss(x, x.flip(1))) == pytest.approx(0.0, abs=1e-10)
    y = x + torch.tensor([0.1, 0.0, 0.0])  # small shift: nearest neighbour is the shifted twin
    assert float(L.reconstruction_loss(x, y)) == pytest.approx(2 * 0.01, rel=1e-4)


# ------------------------------------------------------------------------ forward
def test_forward_shapes_and_canonical_frame():
    net = tiny()
    out = net(torch.randn(3, 64, 3))
    assert out.attention.shape == (3, 64, 4) and out.keypoints.shape == (3, 4, 3)
    assert out.descriptors.shape == (3, 4, 16) and out.decoded.shape == (3, 64, 3)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 64))
    torch.testing.assert_close(out.R @ out.R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(out.R), torch.ones(3), atol=1e-5)
    torch.testing.assert_close(out.canonical_keypoints.mean(1), torch.zeros(3, 3), atol=1e-6, rtol=0)
    out.decoded.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())


def test_keypoints_translate_exactly_with_centred_input():
    net = tiny().eval()
    x = torch.randn(2, 64, 3)
    a = net.canonicalize(x)
    b = net.canonicalize(x + torch.tensor([0.3, -0.2, 0.1]))
    torch.testing.assert_close(b.keypoints, a.keypoints + torch.tensor([0.3, -0.2, 0.1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(b.descriptors, a.descriptors, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------- canonicalize
def test_canonicalize_api_batched_unbatched_dtype_numpy():
    net = tiny()
    net.train()
    x = torch.randn(2, 100, 3, dtype=torch.float64)  # N != num_points is fine
    res = net.canonicalize(x)
    assert net.training  # mode restored
    assert res.canonical_points.shape == (2, 100, 3) and res.canonical_points.dtype == torch.float64
    assert res.R.shape == (2, 3, 3) and res.t.shape == (2, 3) and res.transform.shape == (2, 4, 4)
    assert res.keypoints.shape == (2, 4, 3) and res.descriptors.shape == (2, 4, 16)
    assert res.attention.shape == (2, 100, 4) and res.assignment.shape == (2, 100)
    assert res.assignment.dtype == torch.int64
    torch.testing.assert_close(res.canonical_points, x @ res.R.transpose(1, 2) + res.t[:, None], atol=1e-5, rtol=1e-5)
    single = net.canonicalize(x[1].float())
    assert single.R.shape == (3, 3) and single.transform.shape == (4, 4) and single.canonical_points.dtype == torch.float32
    torch.testing.assert_close(single.R, res.R[1].float(), atol=1e-5, rtol=1e-5)
    npres = net.canonicalize(x[0].numpy()).numpy()
    assert isinstance(npres.R, np.ndarray) and npres.transform.shape == (4, 4)
    np.testing.assert_allclose(npres.transform[:3, :3], npres.R)
    assert not any(p.requires_grad and p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("bad, msg", [
    (torch.randn(3, 3), "at least 4"),
    (torch.randn(10, 2), "shape"),
    (torch.randn(2, 3, 10, 3), "shape"),
    (torch.full((10, 3), float("nan")), "NaN"),
    (torch.ones(10, 3, dtype=torch.int64), "float"),
    ([[0.0, 0.0, 0.0]] * 10, "Tensor"),
])
def test_canonicalize_rejects_bad_input(bad, msg):
    with pytest.raises(CanocapsInputError, match=msg) as info:
        tiny().canonicalize(bad)
    assert "\n" not in str(info.value)


def test_reconstruct_back_in_input_frame():
    net = tiny()
    x = torch.randn(80, 3)
    rec = net.reconstruct(x)
    assert rec.canonical.shape == (64, 3) and rec.points.shape == (64, 3)
    torch.testing.assert_close(rec.points @ rec.R.T + rec.t, rec.canonical, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------ save/load
def test_save_load_round_trip_and_errors(tmp_path):
    net = tiny(knn_k=0)
    net(torch.randn(4, 64, 3))  # touch BN running stats
    path = tmp_path / "w.pt"
    net.save(path)
    with pytest.raises(OutputExistsError):
        net.save(path)
    back = CanonicalCapsules.load(path)
    assert back.config == net.config and not back.training
    x = torch.randn(64, 3)
    torch.testing.assert_close(back.canonicalize(x).canonical_points, net.canonicalize(x).canonical_points)
    with pytest.raises(CanocapsWeightsError, match="not found"):
        CanonicalCapsules.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(CanocapsWeightsError, match="not a readable"):
        CanonicalCapsules.load(tmp_path / "bad.pt")
    torch.save({"format": "canocaps.capsules", "version": 1, "config": {**net.config.to_dict(), "feat_dim": 8},
                "state_dict": net.state_dict()}, tmp_path / "mismatch.pt")
    with pytest.raises(CanocapsWeightsError, match="do not match"):
        CanonicalCapsules.load(tmp_path / "mismatch.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_canonicalize_on_cuda_matches_cpu():
    net = tiny()
    x = torch.randn(2, 64, 3)
    cpu = net.canonicalize(x)
    gpu = net.cuda().canonicalize(x.cuda())
    assert gpu.R.is_cuda
    assert float(rotation_error_deg(gpu.R.cpu(), cpu.R).max()) < 1e-2


def test_local_knn_layer_option_runs_and_changes_features():
    x = torch.randn(2, 64, 3)
    plain, local = tiny(), tiny(knn_k=6)
    assert local.encoder.local is not None and plain.encoder.local is None
    out = local(x)
    assert out.decoded.shape == (2, 64, 3) and torch.isfinite(out.features).all()
    out.decoded.sum().backward()
    assert local.encoder.local.linear.weight.grad is not None
