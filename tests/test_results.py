"""Results people print (issue 15): one class per concept, a short summary, to_dict(), to_open3d();
and the registration quality verdict (canocaps.heads.quality) with its calibration tool."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from canocaps._format import format_rotation, rotation_angle_axis
from canocaps.heads import canonicalize_cloud, reconstruct
from canocaps.heads.baselines import PCACanonicalizer
from canocaps.heads.quality import DOUBTFUL, FITNESS_MIN, GOOD, RMSE_RATIO_MAX, assess_registration
from canocaps.heads.results import (ClassificationResult, HypothesisScore, RegistrationResult, StabilityResult)
from canocaps.model import CanonicalCapsules, CapsulesConfig
from canocaps.model.results import CanonicalizationResult, ReconstructionResult

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny() -> CanonicalCapsules:
    torch.manual_seed(0)
    return CanonicalCapsules(CapsulesConfig.preset("cpu", num_points=128, feat_dim=16, num_capsules=8,
                                                   canon_hidden=(32,), decoder_bottleneck=32, num_blocks=1)).eval()


def blob(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return (v / np.linalg.norm(v, axis=1, keepdims=True) * [1.0, 0.6, 0.3]).astype(np.float32)


def short(text: str, limit: int = 400) -> bool:
    return len(text) <= limit and "tensor(" not in text and "array(" not in text


def test_one_canonicalization_class_prints_small_and_converts(tiny):
    import open3d as o3d

    x = torch.as_tensor(blob(300, 0))
    res = tiny.canonicalize(x)
    text = repr(res)
    assert short(text), text
    assert "points 300x3" in text and "capsules 8" in text and "deg about" in text
    angle, _ = rotation_angle_axis(res.R)
    assert f"{angle:.1f} deg" in text
    d = res.to_dict()
    json.dumps(d)  # JSON-ready
    assert np.asarray(d["R"]).shape == (3, 3) and np.asarray(d["transform"]).shape == (4, 4)
    assert d["num_points"] == 300 and d["num_capsules"] == 8 and d["rotation_deg"] == pytest.approx(angle)
    pc = res.to_open3d()
    assert isinstance(pc, o3d.geometry.PointCloud) and len(pc.points) == 300
    np.testing.assert_allclose(np.asarray(pc.points), res.canonical_points.numpy(), atol=1e-6)
    assert res.numpy() == res.numpy() and res.numpy() != tiny.canonicalize(x + 1.0).numpy()
    batched = tiny.canonicalize(torch.stack([x, x]))
    assert short(repr(batched)) and "2x300x3" in repr(batched) and len(batched.to_open3d()) == 2
    # canonicalize_cloud and the PCA baseline give the same class (one concept, one class)
    cc = canonicalize_cloud(x.numpy() * 5.0, tiny)
    pca = PCACanonicalizer().canonicalize(x)
    assert type(cc) is type(res) is type(pca) is CanonicalizationResult
    assert short(repr(cc)) and cc.scale > 3 and f"scale {cc.scale:.4g}" in repr(cc) and cc.to_dict()["num_capsules"] == 8
    assert short(repr(pca)) and "capsules 0" in repr(pca) and pca.to_dict()["keypoints"] is None
    np.testing.assert_allclose(cc.transform[:3, :3], cc.R)
    np.testing.assert_allclose(cc.transform[:3, 3], cc.t)


def test_one_reconstruction_class_with_rigid_transform_and_a_similarity(tiny):
    pts = blob(500, 1) * 7.0 + 3.0  # arbitrary units; 500 points, the network sees 128
    res = reconstruct(pts, tiny)
    raw = tiny.reconstruct(torch.as_tensor(blob(128, 2)))
    assert type(res) is type(raw) is ReconstructionResult
    for r in (res, raw):
        assert short(repr(r)), repr(r)
        json.dumps(r.to_dict())
    assert "of 500 points" in repr(res) and res.subsampled and res.num_input_points == 500
    d = res.to_dict()
    assert d["num_input"] == 128 and d["num_input_points"] == 500 and d["scale"] == pytest.approx(res.scale)
    T, S = np.asarray(d["transform"]), np.asarray(d["similarity"])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6)  # "transform" is rigid ...
    assert abs(np.linalg.det(S[:3, :3]) - res.scale ** -3) < 1e-6 * res.scale ** -3  # ... the scaling is in "similarity"
    # the similarity maps the input's units into the canonical frame: the decoded cloud comes back onto `points`
    Si = np.linalg.inv(S)
    np.testing.assert_allclose(res.canonical @ Si[:3, :3].T + Si[:3, 3], res.points, atol=1e-4)
    pc, rc = res.to_open3d()
    assert len(pc.points) == 128 and len(rc.points) == res.canonical.shape[0]
    assert raw.to_open3d()[0] is None and raw.chamfer is None and not raw.subsampled


def test_registration_and_evaluation_results_print_small():
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [0.1, 0.2, 0.3]
    cands = [HypothesisScore(f"h{i}", 0.9, 0.01, T) for i in range(30)]
    res = RegistrationResult(T, 0.97, 0.01, np.zeros((2000, 2), dtype=np.int64), "capsules", 0.5,
                             max_correspondence_distance=0.05, candidates=cands)
    text = repr(res)
    assert short(text) and "90.0 deg about (0.00, 0.00, 1.00)" in text and "good" in text and "30 candidates" in text
    assert short(repr(cands[0])) and "90.0 deg" in repr(cands[0])
    assert res.to_dict()["quality"] == "good" and res.to_dict()["quality_reasons"] == []
    assert "quality good" in res.summary()
    cl = ClassificationResult(0.7, 0.25, 0.37, 700, 700, 14, extra={"per_class": list(range(1000))})
    st = StabilityResult("canocaps", 0.03, 63.1, 50, 16, per_shape=[(0.1, 2.0)] * 1000)
    assert short(repr(cl)) and "0.700" in repr(cl) and short(repr(st)) and "63.10 deg" in repr(st)


@pytest.mark.parametrize("R, angle, axis", [
    (np.eye(3), 0.0, None),
    (np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]), 90.0, (0, 0, 1)),
    (np.diag([1.0, -1.0, -1.0]), 180.0, (1, 0, 0)),
    (np.array([[0, 0, 1.0], [0, 1, 0], [-1, 0, 0]]), 90.0, (0, 1, 0)),
])
def test_rotation_angle_axis(R, angle, axis):
    a, ax = rotation_angle_axis(R)
    assert a == pytest.approx(angle, abs=1e-6)
    if axis is not None:
        assert abs(abs(float(np.dot(ax, axis))) - 1.0) < 1e-9
    assert format_rotation(R).startswith(f"{angle:.1f} deg about")


# ----------------------------------------------------------------------------- the verdict
def test_verdict_rules():
    d = 0.05
    assert assess_registration(0.99, 0.2 * d, d) == (GOOD, [])
    q, why = assess_registration(FITNESS_MIN - 0.01, 0.2 * d, d)
    assert q == DOUBTFUL and len(why) == 1 and "fitness" in why[0]
    q, why = assess_registration(0.99, (RMSE_RATIO_MAX + 0.05) * d, d)
    assert q == DOUBTFUL and "inlier RMSE" in why[0]
    q, why = assess_registration(0.5, 0.9 * d, d)
    assert q == DOUBTFUL and len(why) == 2
    assert assess_registration(0.99, 1.0, float("nan")) == (GOOD, [])  # distance unknown: fitness alone
    assert assess_registration(float("nan"), 0.0, d)[0] == DOUBTFUL  # NaN figures are never "good"
    # the failures on real meshes: fitness 0.42-0.60 with a 68-180 degree error
    for f in (0.42, 0.60):
        r = RegistrationResult(np.eye(4), f, 0.5 * d, np.zeros((0, 2)), "canonical", 0.1, max_correspondence_distance=d)
        assert r.doubtful and "DOUBTFUL" in r.summary() and r.to_dict()["quality"] == "doubtful"


def test_calibration_tool_picks_thresholds_that_separate_synthetic_records(tmp_path):
    rng = np.random.default_rng(0)

    def rec(i: int, wrong: bool) -> dict:
        f = rng.uniform(0.5, 0.85) if wrong else rng.uniform(0.96, 1.0)
        return {"pair": f"procedural/test/clean/{i}", "fitness": f, "inlier_rmse": 0.01,
                "max_correspondence_distance": 0.05, "rre_deg": 90.0 if wrong else 0.5, "rte": 0.001}

    doc = {"meta": {"data": "procedural"},
           "records": {"pca": [rec(i, i % 3 == 0) for i in range(60)]}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "calibrate_verdict.py"), str(path),
                        "--json", str(tmp_path / "cal.json")], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "pick" in r.stdout and "wrong that pass 0.000, right flagged 0.000" in r.stdout
    cal = json.loads((tmp_path / "cal.json").read_text())
    overall = next(g for g in cal["in_use"] if g["data"] == "all")
    assert overall["wrong"] == 20 and overall["right"] == 40 and overall["wrong_pass"] == 0
    assert math.isclose(overall["right_flagged_rate"], 0.0)


def test_importing_the_heads_and_their_results_stays_light():
    """The result classes live with the model, but importing the heads does not pull torch in."""
    code = ("import sys, canocaps.heads, canocaps.heads.results; "
            "print('torch' in sys.modules, 'canocaps.model' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.stdout.strip() == "False False", r.stdout + r.stderr
