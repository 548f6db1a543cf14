"""Reconstruction, classification and stability heads (tiny random model, synthetic data)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.heads.baselines import PCACanonicalizer
from canocaps.heads.canonical import canonicalize_cloud
from canocaps.heads.classification import (
    capsule_features,
    hungarian_accuracy,
    kmeans_accuracy,
    pca_features,
    random_rotations,
    svm_accuracy,
)
from canocaps.heads.reconstruction import reconstruct
from canocaps.heads.stability import canonical_spread
from canocaps.model import CanonicalCapsules, CapsulesConfig


@pytest.fixture(scope="module")
def tiny() -> CanonicalCapsules:
    torch.manual_seed(0)
    cfg = CapsulesConfig.preset("cpu", num_points=128, feat_dim=16, num_capsules=8, canon_hidden=(32,),
                                decoder_bottleneck=32, num_blocks=1)
    return CanonicalCapsules(cfg).eval()


def blob(n: int, seed: int, axes=(1.0, 0.6, 0.3)) -> np.ndarray:
    r = np.random.default_rng(seed)
    v = r.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= axes
    v[v[:, 0] > 0.5, 0] += 0.3
    v[v[:, 1] > 0.3, 1] += 0.2
    v[v[:, 2] > 0.15, 2] += 0.1
    return v.astype(np.float32)


def naive_chamfer(x: np.ndarray, y: np.ndarray) -> float:
    from canocaps.ops.reference import chamfer_reference  # brute force, per cloud

    t = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
    return float(chamfer_reference(t(x), t(y))[0])


def test_reconstruct_metric_follows_the_official_convention(tiny):
    pts = blob(500, 1) * 7.0 + 3.0  # arbitrary units: the head normalises
    res = reconstruct(pts, tiny)
    K = tiny.config.num_capsules
    assert res.reconstruction.shape == (K * (128 // K), 3)
    assert res.canonical_input.shape == (128, 3)
    assert res.chamfer == pytest.approx(naive_chamfer(res.canonical_input, res.reconstruction), rel=1e-4)
    back = res.reconstruction_in_input_frame()
    # moving the canonical input back must land on input points (units restored)
    Ti = np.linalg.inv(res.similarity)  # input units -> normalised canonical frame, scale included
    moved = res.canonical_input.astype(np.float64) @ Ti[:3, :3].T + Ti[:3, 3]
    d = ((moved[:, None] - pts[None]) ** 2).sum(-1).min(1)
    assert d.max() < 1e-6
    assert back.shape == res.reconstruction.shape
    assert "squared" in repr(res) and res.to_dict()["chamfer"] == res.chamfer
    pc, rc = res.to_open3d()
    assert len(pc.points) == 128 and len(rc.points) == res.reconstruction.shape[0]


def test_canonicalize_cloud_is_rigid_and_consistent(tiny):
    pts = blob(400, 2) * 5.0 + np.float32([1, -2, 3])
    res = canonicalize_cloud(pts, tiny)
    R = res.R
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(res.canonical_points, pts @ R.T + res.t, atol=1e-4)
    np.testing.assert_allclose(res.canonical_keypoints, res.keypoints @ R.T + res.t, atol=1e-4)
    assert res.keypoints.shape == (8, 3) and res.descriptors.shape == (8, 16)
    assert res.assignment.shape == (128,) and res.assignment.max() < 8
    # keypoints are convex combinations of points: inside the cloud's bounding box
    assert np.all(res.keypoints >= pts.min(0) - 1e-4) and np.all(res.keypoints <= pts.max(0) + 1e-4)
    with pytest.raises(CanocapsInputError):
        canonicalize_cloud(pts[:4], tiny)


def test_classification_pieces():
    labels = np.repeat(np.arange(3), 10)
    perm = np.array([2, 0, 1])[labels]
    assert hungarian_accuracy(perm, labels) == 1.0
    wrong = perm.copy()
    wrong[:5] = 1  # 5 of the class-0 shapes now land in cluster 1
    assert hungarian_accuracy(wrong, labels) == pytest.approx(25 / 30)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 5)) * 10
    x = centers[labels] + rng.normal(size=(30, 5)) * 0.1
    assert kmeans_accuracy(x, labels) == 1.0
    assert svm_accuracy(x, labels, x + 0.01, labels) == 1.0
    noise = rng.normal(size=(30, 5))
    assert svm_accuracy(noise[:15], labels[::2], noise[15:], labels[1::2]) < 0.9
    with pytest.raises(CanocapsInputError):
        svm_accuracy(x, np.zeros(30, int), x, labels)


def test_capsule_and_pca_features(tiny):
    pts = np.stack([blob(128, s) for s in range(4)])
    f = capsule_features(tiny, pts, batch_size=3)
    K, C = 8, 16
    assert f.shape == (4, K * C + K * 3)
    kp = f[:, K * C:].reshape(4, K, 3)
    assert kp.min() >= -1e-9 and kp.max() <= 1 + 1e-9
    assert np.allclose(kp.reshape(4, -1).min(1), 0) and np.allclose(kp.max(axis=(1, 2)), 1)
    pf = pca_features(pts)
    assert pf.shape == (4, 512) and np.allclose(pf.sum(1), 1.0)
    R = random_rotations(4, seed=3)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-9)
    rotated = np.einsum("bij,bnj->bni", R, pts).astype(np.float32)
    assert np.abs(pca_features(rotated) - pf).sum(1).max() < 0.05  # PCA undoes rotations


class RandomFrames:
    """A canonicaliser that ignores its input: the worst possible stability."""

    def canonicalize(self, points):
        from canocaps.model.results import CanonicalizationResult

        B = points.shape[0]
        R = torch.as_tensor(random_rotations(B, seed=int(points.shape[1])))
        return CanonicalizationResult(points.double() @ R.transpose(-1, -2), R, torch.zeros(B, 3, dtype=torch.float64))


def test_stability_spread_separates_stable_from_random():
    pts = blob(300, 4)
    cd_pca, rre_pca = canonical_spread(PCACanonicalizer(), pts, num_copies=6, seed=1)
    cd_rand, rre_rand = canonical_spread(RandomFrames(), pts, num_copies=6, seed=1)
    assert rre_pca < 1e-3 and cd_pca < 1e-8  # same points rotated: PCA frames agree exactly
    assert rre_rand > 60 and cd_rand > 1e-2
    with pytest.raises(CanocapsInputError):
        canonical_spread(PCACanonicalizer(), pts, num_copies=1)


def test_stability_runs_on_the_model(tiny):
    cd, rre = canonical_spread(tiny, blob(128, 5), num_copies=4)
    assert np.isfinite(cd) and 0 <= rre <= 180


def test_stability_with_resampled_copies_has_a_sampling_floor():
    pts = blob(1000, 6)
    cd_same, _ = canonical_spread(PCACanonicalizer(), pts[:300], num_copies=4, seed=2)
    cd_res, rre_res = canonical_spread(PCACanonicalizer(), pts, num_copies=4, seed=2, num_points=300)
    assert cd_same < 1e-8 < cd_res < 0.05  # different subsets: Chamfer > 0, still small
    assert rre_res < 10  # an asymmetric shape keeps its PCA frame across resamples
    with pytest.raises(CanocapsInputError):
        canonical_spread(PCACanonicalizer(), pts[:100], num_copies=3, num_points=300)


def test_eval_parts_and_conditions_from_the_command_line(tmp_path, capsys):
    import json

    from canocaps.cli import main as cli_main

    out = tmp_path / "parts.json"
    assert cli_main(["eval", "parts", "--per-class", "1", "--no-progress", "--json-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "capsules (argmax attention)" in text and "k-means" in text
    res = json.loads(out.read_text())
    assert res["num_shapes"] == 14 and 0.0 <= res["nmi"] <= 1.0 and 0.0 < res["kmeans_nmi"] < 1.0
    reg = tmp_path / "reg.json"
    assert cli_main(["eval", "registration", "--methods", "pca", "--limit", "1", "--conditions", "clean,partial",
                     "--no-progress", "--json-out", str(reg)]) == 0
    names = [r["pair"] for r in json.loads(reg.read_text())["records"]["pca"]]
    assert any("/clean/" in n for n in names) and any("/partial/" in n for n in names)
    printed = capsys.readouterr().out
    assert "clean:" in printed and "partial:" in printed  # one table per condition
    per = json.loads(reg.read_text())["by_condition"]
    assert set(per) == {"clean", "partial"} and per["clean"]["pca"]["pairs"] == 1


def test_validated_svm_picks_c_on_the_validation_split():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from canocaps.heads.classification import validated_svm_accuracy

    rng = np.random.default_rng(1)
    labels = np.arange(90) % 3
    centers = rng.normal(size=(3, 8))
    make = lambda n: (centers[labels[:n]] + rng.normal(size=(n, 8)) * 1.2, labels[:n])
    train, val, test = make(90), make(60), make(60)
    grid = (0.001, 0.01, 1.0)
    acc, C, val_acc = validated_svm_accuracy(train, val, test, grid=grid)
    per_c = {c: float((make_pipeline(StandardScaler(), LinearSVC(C=c, random_state=0, max_iter=10000))
                       .fit(*train).predict(val[0]) == val[1]).mean()) for c in grid}
    assert C in grid and val_acc == max(per_c.values())
    assert C == min(c for c in grid if per_c[c] == val_acc)  # ties: the smaller C
    clf = make_pipeline(StandardScaler(), LinearSVC(C=C, random_state=0, max_iter=10000)).fit(*train)
    assert acc == float((clf.predict(test[0]) == test[1]).mean())
    with pytest.raises(CanocapsInputError):
        validated_svm_accuracy((train[0], np.zeros(90, int)), val, test)
