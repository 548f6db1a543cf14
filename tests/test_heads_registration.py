"""Registration head: hypotheses, ICP, input forms, metrics, baselines."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.heads.baselines import PCACanonicalizer, fpfh_ransac_icp
from canocaps.model.results import CanonicalizationResult
from canocaps.heads.registration import pca_register
from canocaps.heads.registration import (
    benchmark_registration,
    register,
    registration_errors,
    registration_methods,
    summarize_registration,
)
from canocaps.heads.results import RegistrationResult


def shape(n: int, seed: int) -> np.ndarray:
    """An ellipsoid with a step along each axis: no symmetry, so its PCA frame is unambiguous.

    Independent surface samples per seed."""
    r = np.random.default_rng(seed)
    v = r.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= [1.0, 0.6, 0.3]
    v[v[:, 0] > 0.5, 0] += 0.3
    v[v[:, 1] > 0.3, 1] += 0.2
    v[v[:, 2] > 0.15, 2] += 0.1
    return v.astype(np.float32)


def rigid(seed: int, t_scale: float = 0.2) -> np.ndarray:
    R, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.random.default_rng(seed + 100).uniform(-t_scale, t_scale, 3)
    return T


def move(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (p @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = shape(1200, 1)
    T = rigid(7)
    return a, move(T, shape(1200, 2)), T


class FlipSecond:
    """PCA frames, but the second cloud of each batch gets its frame turned 180 deg about z."""

    num_capsules = 3

    def canonicalize(self, points: torch.Tensor) -> CanonicalizationResult:
        res = PCACanonicalizer().canonicalize(points)
        F = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=res.R.dtype))
        R, t = res.R.clone(), res.t.clone()
        R[1], t[1] = F @ R[1], F @ t[1]
        return CanonicalizationResult(points @ R.transpose(-1, -2).float() + t[:, None].float(), R, t)


class CapsuleOracle:
    """Garbage frames; keypoints = first K points (equivariant when B is A moved, same order),
    descriptors = one-hot, listed in a different capsule order for the second cloud."""

    num_capsules = 6

    def canonicalize(self, points: torch.Tensor) -> CanonicalizationResult:
        B, K = points.shape[0], self.num_capsules
        kp = points[:, :K].double().clone()
        desc = torch.eye(K, dtype=torch.float64).expand(B, K, K).clone()
        perm = torch.tensor([3, 0, 5, 1, 4, 2])
        kp[1], desc[1] = kp[1][perm], desc[1][perm]
        R = torch.stack([torch.eye(3, dtype=torch.float64), torch.diag(torch.tensor([1.0, -1.0, -1.0]))])[:B]
        res = CanonicalizationResult(points, R, torch.zeros(B, 3, dtype=torch.float64))
        res.keypoints, res.descriptors = kp, desc
        return res


def test_pca_registration_recovers_rigid_transform(pair):
    a, b, T = pair
    res = pca_register(a, b)
    err = registration_errors(res.transformation, T, a)
    assert err["rre_deg"] < 1.0 and err["rte"] < 0.01, err
    assert res.hypothesis == "canonical", [(c.name, c.fitness) for c in res.candidates]
    assert res.fitness > 0.8 and res.refined
    R = res.rotation
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-6)


def test_flip_hypothesis_fixes_an_ambiguous_frame(pair):
    a, b, T = pair
    only_canonical = register(a, b, model=FlipSecond(), hypotheses=("canonical",), refine=False)
    assert registration_errors(only_canonical.transformation, T, a)["rre_deg"] > 90
    res = register(a, b, model=FlipSecond(), hypotheses=("canonical", "flips"), refine=False)
    assert res.hypothesis == "flip_z"
    assert registration_errors(res.transformation, T, a)["rre_deg"] < 5
    assert {c.name for c in res.candidates} == {"canonical", "flip_x", "flip_y", "flip_z"}


def test_capsule_hypothesis_matches_descriptors():
    a = shape(400, 3)
    T = rigid(11)
    b = move(T, a)  # same points, same order: the oracle's keypoints correspond
    res = register(a, b, model=CapsuleOracle(), hypotheses=("canonical", "flips", "capsules"), refine=False,
                   num_points=400)
    assert res.hypothesis == "capsules"
    err = registration_errors(res.transformation, T, a)
    assert err["rre_deg"] < 1e-3 and err["rte"] < 1e-4
    assert res.fitness == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["point_to_plane", "point_to_point"])
def test_icp_refines_a_perturbed_start(pair, method):
    a, b, T = pair
    # start from the PCA alignment of independent samples (degrees off): ICP must tighten it
    res = register(a, b, model=FlipSecond(), hypotheses=("flip_z",), icp_method=method)
    rough = register(a, b, model=FlipSecond(), hypotheses=("flip_z",), refine=False)
    e_ref = registration_errors(res.transformation, T, a)
    assert e_ref["rre_deg"] < 1.0, e_ref
    assert res.inlier_rmse <= rough.inlier_rmse + 1e-9


def test_input_forms_agree(pair, tmp_path):
    import open3d as o3d
    import trimesh

    from canocaps.io import write_points

    a, b, _ = pair
    kw = dict(model=PCACanonicalizer(), hypotheses=("canonical", "flips"), refine=False)
    ref = register(a, b, **kw).transformation
    write_points(tmp_path / "a.ply", a)
    pa = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(a.astype(np.float64)))
    for a_form in (torch.from_numpy(a), pa, trimesh.PointCloud(a), tmp_path / "a.ply", str(tmp_path / "a.ply"),
                   a[None]):
        np.testing.assert_allclose(register(a_form, b, **kw).transformation, ref, atol=1e-5)


def test_units_do_not_matter(pair):
    a, b, T = pair
    r1 = pca_register(a, b)
    r100 = pca_register(a * 100.0, b * 100.0)
    np.testing.assert_allclose(r100.rotation, r1.rotation, atol=1e-3)
    np.testing.assert_allclose(r100.translation, 100 * r1.translation, atol=0.1)
    assert r100.max_correspondence_distance == pytest.approx(100 * r1.max_correspondence_distance, rel=1e-5)


def test_bad_inputs_raise_one_line_errors(pair):
    a, b, _ = pair
    bad = a.copy()
    bad[3, 1] = np.nan
    cases = [
        (dict(a=bad, b=b), "a"),
        (dict(a=a[:2], b=b), "a"),
        (dict(a=a, b=np.zeros((10, 2), np.float32)), "b"),
        (dict(a=a, b=b, hypotheses=("nope",)), "hypothesis"),
        (dict(a=a, b=b, icp_method="plane"), "icp_method"),
        (dict(a=a, b=b, max_correspondence_distance=-1.0), "max_correspondence_distance"),
    ]
    for kwargs, word in cases:
        with pytest.raises(CanocapsInputError) as ei:
            register(model=PCACanonicalizer(), **kwargs)
        msg = str(ei.value)
        assert word in msg and "\n" not in msg, msg


def test_capsules_hypothesis_needs_capsules(pair):
    a, b, _ = pair
    with pytest.raises(CanocapsInputError, match="capsules"):
        register(a, b, model=PCACanonicalizer(), hypotheses=("capsules",))


def test_result_converts(pair):
    a, b, _ = pair
    res = pca_register(a, b)
    d = json.loads(json.dumps(res.to_dict()))
    assert np.asarray(d["transform"]).shape == (4, 4)
    assert d["hypothesis"] == res.hypothesis and d["correspondences"] == res.num_correspondences > 0
    o = res.to_open3d()
    np.testing.assert_allclose(np.asarray(o.transformation), res.transformation)
    assert len(o.correspondence_set) == res.num_correspondences
    assert "fitness" in repr(res) and "transform" in res.summary()
    np.testing.assert_allclose(res.apply(a), move(res.transformation, a), atol=1e-5)


def test_registration_errors_and_summary():
    p = shape(300, 5)
    T = rigid(3)
    off = np.eye(4)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    off[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    off[:3, 3] = [0.03, 0.0, 0.04]
    e = registration_errors(off @ T, T, p)
    assert e["rre_deg"] == pytest.approx(10.0, abs=1e-6)
    moved_est, moved_gt = move(off @ T, p), move(T, p)
    assert e["rmse"] == pytest.approx(float(np.sqrt(((moved_est - moved_gt) ** 2).sum(1).mean())), rel=1e-4)
    recs = [dict(rre_deg=1.0, rte=0.01, rmse=0.1, time_s=1.0), dict(rre_deg=6.0, rte=0.01, rmse=0.2, time_s=2.0),
            dict(rre_deg=2.0, rte=0.06, rmse=0.3, time_s=3.0)]
    s_ = summarize_registration(recs)
    assert s_["recall"] == pytest.approx(1 / 3) and s_["median_rre_deg"] == 2.0
    assert s_["time_per_pair_s"] == pytest.approx(2.0) and s_["pairs"] == 3
    with pytest.raises(CanocapsInputError):
        summarize_registration([])


def test_fpfh_baseline_and_benchmark_loop(pair):
    from canocaps.heads.registration import RegistrationPair

    a, b, T = pair
    res = fpfh_ransac_icp(a, b)
    assert isinstance(res, RegistrationResult) and res.hypothesis == "ransac"
    assert registration_errors(res.transformation, T, a)["rre_deg"] < 2.0
    pairs = [RegistrationPair("p0", a, b, T), RegistrationPair("p1", b, a, np.linalg.inv(T))]
    out = benchmark_registration(registration_methods(["pca"], None), pairs, progress=False)
    assert out["summary"]["pca"]["recall"] == 1.0 and len(out["records"]["pca"]) == 2
    with pytest.raises(CanocapsInputError):
        registration_methods(["canocaps"], None)
    with pytest.raises(CanocapsInputError):
        registration_methods(["icp9000"], None)


def test_benchmark_resumes_from_its_checkpoint(pair, tmp_path):
    from canocaps.heads.registration import RegistrationPair

    a, b, T = pair
    pairs = [RegistrationPair(f"p{i}", a, b, T) for i in range(3)]
    calls = []

    def method(x, y):
        calls.append(1)
        return pca_register(x, y, refine=False)

    ck = tmp_path / "bench.partial.jsonl"
    first = benchmark_registration({"pca": method}, pairs[:2], progress=False, warmup=False, checkpoint=ck)
    assert len(calls) == 2 and len(ck.read_text().splitlines()) == 2
    with ck.open("a") as fh:
        fh.write('{"method": "pca", "pair": "p2", "rre')  # a record cut short by a crash
    out = benchmark_registration({"pca": method}, pairs, progress=False, warmup=False, checkpoint=ck)
    assert len(calls) == 3  # only p2 was measured again
    assert [r["pair"] for r in out["records"]["pca"]] == ["p0", "p1", "p2"]
    assert out["records"]["pca"][0] == first["records"]["pca"][0]


def test_meshes_are_sampled_on_their_surface():
    import open3d as o3d
    import trimesh

    from canocaps.io import DEFAULT_MESH_POINTS as MESH_SAMPLES
    from canocaps.io import as_points

    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    for mesh in (box, o3d.geometry.TriangleMesh.create_box(2.0, 1.0, 0.5)):
        p = as_points(mesh, "mesh")
        assert p.shape == (MESH_SAMPLES, 3) and p.dtype == np.float32
        extent = p.max(0) - p.min(0)
        np.testing.assert_allclose(extent, [2.0, 1.0, 0.5], atol=0.05)
    with pytest.raises(CanocapsInputError, match="mesh"):
        as_points(o3d.geometry.LineSet(), "mesh")


class SwapSecond:
    """PCA frames, but the second cloud's frame has its x and y axes exchanged (z turned over)."""

    num_capsules = 3

    def canonicalize(self, points: torch.Tensor) -> CanonicalizationResult:
        res = PCACanonicalizer().canonicalize(points)
        S = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=res.R.dtype)
        R, t = res.R.clone(), res.t.clone()
        R[1], t[1] = S @ R[1], S @ t[1]
        return CanonicalizationResult(points @ R.transpose(-1, -2).float() + t[:, None].float(), R, t)


def test_swap_hypotheses_fix_exchanged_axes(pair):
    from canocaps.heads.registration import SWAPS

    a, b, T = pair
    assert len(SWAPS) == 20
    for M in SWAPS.values():
        np.testing.assert_allclose(M @ M.T, np.eye(3))
        assert np.linalg.det(M) == pytest.approx(1.0)
    flips_only = register(a, b, model=SwapSecond(), hypotheses=("canonical", "flips"), refine=False)
    assert registration_errors(flips_only.transformation, T, a)["rre_deg"] > 30
    res = register(a, b, model=SwapSecond(), hypotheses=("canonical", "flips", "swaps"), refine=False)
    assert res.hypothesis.startswith("swap_")
    assert registration_errors(res.transformation, T, a)["rre_deg"] < 5
    assert len(res.candidates) == 24


def test_cheap_screening_keeps_the_right_hypothesis_for_icp(pair):
    a, b, T = pair
    res = register(a, b, model=SwapSecond(), hypotheses=("canonical", "flips", "swaps"), screen_top=2,
                   screen_always=())
    assert len(res.candidates) == 2  # only the two best of 24 went through ICP
    assert res.hypothesis.startswith("swap_")
    err = registration_errors(res.transformation, T, a)
    assert err["rre_deg"] < 1.0 and err["rte"] < 0.01, err


def test_the_models_own_frame_is_screened_wherever_the_cheap_score_ranks_it(pair):
    from canocaps.heads.registration import SCREEN_ALWAYS

    a, b, T = pair
    assert "canonical" in SCREEN_ALWAYS
    plain = register(a, b, model=SwapSecond(), hypotheses=("canonical", "flips", "swaps"), screen_top=2,
                     screen_always=())
    assert "canonical" not in [c.name for c in plain.candidates]  # the swapped frame ranks low
    pinned = register(a, b, model=SwapSecond(), hypotheses=("canonical", "flips", "swaps"), screen_top=2)
    names = [c.name for c in pinned.candidates]
    assert len(names) == 3 and "canonical" in names  # the two best, and the model's own frame
    assert pinned.hypothesis.startswith("swap_")  # screened, not preferred
    err = registration_errors(pinned.transformation, T, a)
    assert err["rre_deg"] < 1.0 and err["rte"] < 0.01, err


def test_screening_on_fewer_points_still_refines_on_all(pair):
    a, b, T = pair
    full = register(a, b, model=PCACanonicalizer(), refine_top=2)
    few = register(a, b, model=PCACanonicalizer(), refine_top=2, screen_icp_points=100)
    for res in (full, few):
        err = registration_errors(res.transformation, T, a)
        assert err["rre_deg"] < 1.0 and err["rte"] < 0.01, err
    # the winner is refined on every point: its figures are those of the full-resolution run
    assert few.hypothesis == full.hypothesis
    assert few.fitness == pytest.approx(full.fitness, abs=0.02)
    # every candidate is scored on all 1,200 points (multiples of 1/1200), though the short ICP
    # of the screened ones moved only 100 (so their transforms differ from the full run's)
    assert len(few.candidates) > 2
    assert all(abs(c.fitness * 1200 - round(c.fitness * 1200)) < 1e-6 for c in few.candidates)
    full_T = {c.name: c.transformation for c in full.candidates}
    moved_differently = [not np.allclose(c.transformation, full_T[c.name], atol=1e-9)
                         for c in few.candidates[2:] if c.name in full_T]
    assert moved_differently and any(moved_differently)


def test_test_pairs_degrade_each_sample_independently():
    from canocaps.heads.registration import CONDITIONS, make_test_pairs

    assert set(CONDITIONS) == {"clean", "noisy", "partial", "sparse"}
    clean = make_test_pairs("procedural", "test", 1024, limit=2, condition="clean")
    partial = make_test_pairs("procedural", "test", 1024, limit=2, condition="partial")
    sparse = make_test_pairs("procedural", "test", 1024, limit=2, condition="sparse")
    noisy = make_test_pairs("procedural", "test", 1024, limit=2, condition="noisy")
    assert clean[0].a.shape == (1024, 3) and partial[0].a.shape == (717, 3) and sparse[0].b.shape == (512, 3)
    np.testing.assert_allclose(clean[0].T_gt, partial[0].T_gt)
    # the noisy pair: same transform, points moved off the surface
    assert not np.allclose(np.sort(noisy[0].a, axis=0), np.sort(clean[0].a, axis=0))
    again = make_test_pairs("procedural", "test", 1024, limit=2, condition="partial")
    np.testing.assert_array_equal(again[1].a, partial[1].a)  # seeded
    with pytest.raises(CanocapsInputError, match="condition"):
        make_test_pairs("procedural", "test", 1024, limit=1, condition="foggy")


def test_capsule_triplets_survive_missing_and_mismatched_capsules(pair):
    """Capsules 0-3 match (keypoints moved by T); 4 and 5 are garbage: the all-capsule fit
    is pulled off, a triplet of good capsules is exact."""
    from canocaps.heads.registration import CanonicalFrame, _capsule_triplets, _match_capsules

    rng = np.random.default_rng(0)
    T = rigid(3, 0.1)
    ka = rng.uniform(-0.8, 0.8, size=(6, 3))
    kb = ka @ T[:3, :3].T + T[:3, 3]
    kb[4:] = rng.uniform(-0.8, 0.8, size=(2, 3))
    desc = np.eye(6)
    fa, fb = CanonicalFrame(np.eye(4), ka, desc), CanonicalFrame(np.eye(4), kb, desc)
    all_fit = _match_capsules(fa, fb)
    assert registration_errors(all_fit, T, ka)["rre_deg"] > 2
    fits = _capsule_triplets(fa, fb)
    assert 1 <= len(fits) < 20  # the 20 triplets minus those whose triangles disagree
    best = min(registration_errors(F, T, ka)["rre_deg"] for F in fits)
    assert best < 1e-6


def test_capsule_triplets_keep_the_best_agreeing_few():
    from canocaps.heads.registration import MAX_CAPSULE_TRIPLETS, CanonicalFrame, _capsule_triplets

    rng = np.random.default_rng(1)
    T = rigid(4, 0.1)
    ka = rng.uniform(-0.8, 0.8, size=(10, 3))
    kb = ka @ T[:3, :3].T + T[:3, 3] + rng.normal(scale=0.01, size=(10, 3))
    kb[7:] += rng.normal(scale=0.04, size=(3, 3))  # capsules 7-9 are off by more: their triangles agree less
    desc = np.eye(10)
    fa, fb = CanonicalFrame(np.eye(4), ka, desc), CanonicalFrame(np.eye(4), kb, desc)
    every = _capsule_triplets(fa, fb, max_triplets=None)
    assert len(every) > MAX_CAPSULE_TRIPLETS  # nearly all 120 agree within the tolerance
    capped = _capsule_triplets(fa, fb)
    assert len(capped) == MAX_CAPSULE_TRIPLETS == 24
    err = lambda fits: np.median([registration_errors(F, T, ka)["rre_deg"] for F in fits])  # noqa: E731
    assert err(capped) < err(every)  # the kept triplets are the better ones
    assert len(_capsule_triplets(fa, fb, max_triplets=5)) == 5


def test_diverse_screening_skips_near_copies():
    from canocaps.heads.registration import _diverse
    from scipy.spatial.transform import Rotation

    def T(deg):
        M = np.eye(4)
        M[:3, :3] = Rotation.from_euler("z", deg, degrees=True).as_matrix()
        return M

    Ts = [T(0), T(10), T(90), T(100), T(180)]
    assert _diverse([0, 1, 2, 3, 4], Ts, 3, 30.0) == [0, 2, 4]
    assert _diverse([1, 0, 3, 2, 4], Ts, 2, 30.0) == [1, 3]
    assert _diverse([0, 1, 2, 3, 4], Ts, 3, 0.0) == [0, 1, 2]


def test_robust_score_and_core_distance_rank_alignments():
    from scipy.spatial import cKDTree

    from canocaps.heads.icp import core_distance, nearest_distances, robust_score

    rng = np.random.default_rng(0)
    tgt = rng.uniform(-1, 1, (2000, 3))
    tree = cKDTree(tgt)
    src = tgt[:500]
    shift = lambda d: np.block([[np.eye(3), np.array([[d], [0], [0]])], [np.zeros((1, 3)), np.ones((1, 1))]])
    d = {s: nearest_distances(src, tree, shift(s)) for s in (0.0, 0.01, 0.04)}
    assert np.allclose(d[0.0], 0.0)
    exact, near, far = (robust_score(d[s], 0.05) for s in (0.0, 0.01, 0.04))
    assert exact == pytest.approx(1.0)
    assert exact > near > far > 0.0
    # core distance: the mean of the smallest 10 % only
    dd = np.array([5.0] * 90 + [1.0] * 10)
    assert core_distance(dd, 0.1) == pytest.approx(1.0) and core_distance(dd, 0.2) == pytest.approx(3.0)


def test_nearest_neighbors_agree_with_scipy():
    from scipy.spatial import cKDTree

    from canocaps.heads.icp import NearestNeighbors

    rng = np.random.default_rng(1)
    tgt, q = rng.normal(size=(700, 3)), rng.normal(size=(300, 3))
    index, tree = NearestNeighbors(tgt), cKDTree(tgt)
    d, j = index.query(q)
    d_ref, j_ref = tree.query(q)
    assert d.shape == (300,) and j.dtype == np.int64
    assert np.allclose(d, d_ref) and (j == j_ref).all()
    d2, j2 = index.query(tgt, k=2)
    d2_ref, j2_ref = tree.query(tgt, k=2)
    assert d2.shape == (700, 2) and np.allclose(d2, d2_ref) and (j2 == j2_ref).all()
    assert np.allclose(d2[:, 0], 0.0)  # each target point finds itself first
    assert index.query(np.zeros((0, 3)))[0].shape == (0,)


def test_measure_matches_open3d_evaluation(pair):
    from canocaps.heads.icp import NearestNeighbors, core_distance, evaluate, measure, nearest_distances, \
        robust_score, to_pcd

    a, b, T = pair
    rng = np.random.default_rng(2)
    for T0 in (T, T @ np.block([[np.eye(3), rng.normal(scale=0.03, size=(3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]])):
        ref = evaluate(to_pcd(a), to_pcd(b), T0, 0.05)
        index = NearestNeighbors(b)
        out = measure(a, index, T0, 0.05)
        assert out.fitness == pytest.approx(ref.fitness, abs=1.0 / len(a))
        assert out.inlier_rmse == pytest.approx(ref.inlier_rmse, rel=1e-3)
        assert {tuple(p) for p in out.correspondence_set} == {tuple(p) for p in ref.correspondence_set}
        d = nearest_distances(a, index, T0)
        assert out.score == pytest.approx(robust_score(d, 0.05))
        assert out.core_distance == pytest.approx(core_distance(d))
    assert 0.0 < measure(a, NearestNeighbors(b), np.eye(4), 0.05).fitness < 0.9  # unaligned: few inliers


def test_partial_views_switch_to_the_core_distance_ranking(pair):
    a, b, T = pair
    full = pca_register(a, b)
    assert not full.low_overlap and full.fitness > 0.85
    # keep the part of B on one side of a plane: less than 85 % of A can find a partner
    bc = b - b.mean(axis=0)
    half = b[bc[:, 0] < np.quantile(bc[:, 0], 0.6)]
    res = pca_register(a, half)
    assert res.low_overlap and res.fitness < 0.85
    core = [c.core_distance for c in res.candidates]
    # round one refines its best only: the rest follow it by core distance, and it fits as tightly as any
    assert all(x <= y + 1e-4 * res.max_correspondence_distance for x, y in zip(core[1:], core[2:]))
    assert core[0] <= min(core) + 0.01 * res.max_correspondence_distance
    off = pca_register(a, half, overlap_threshold=0.0)
    assert not off.low_overlap
    score = [c.score for c in off.candidates]
    assert all(x >= y - 1e-4 for x, y in zip(score, score[1:]))


def test_whole_views_sparse_for_the_inlier_distance_are_not_taken_for_partial_ones(pair):
    from canocaps.heads.icp import NearestNeighbors
    from canocaps.heads.registration import _attainable_fitness

    a, b, T = pair
    dist = 0.046  # so sparse that about a fifth of B's points have no other within the inlier distance
    attainable = _attainable_fitness(NearestNeighbors(b.astype(np.float64)), dist)
    assert 0.75 <= attainable < 0.83
    res = pca_register(a, b, max_correspondence_distance=dist)
    # the right alignment fits less than 85 % of A, yet as much as two whole samples this sparse can
    assert res.fitness < 0.85 and res.fitness >= 0.92 * attainable and not res.low_overlap
    assert registration_errors(res.transformation, T, a)["rre_deg"] < 1.0
    absolute = pca_register(a, b, max_correspondence_distance=dist, overlap_threshold=0.85 / attainable)
    assert absolute.low_overlap  # what an absolute 0.85 said
    bc = b - b.mean(axis=0)
    crop = pca_register(a, b[bc[:, 0] < np.quantile(bc[:, 0], 0.6)], max_correspondence_distance=dist)
    assert crop.low_overlap


def test_translation_vote_finds_the_overlap_of_two_crops():
    from scipy.spatial.transform import Rotation

    from canocaps.heads.overlap import vote_translation, vote_translations

    a = shape(600, 3).astype(np.float64)
    b = shape(600, 4).astype(np.float64)
    # two different 65 % crops: their centroids moved apart with the crops
    a = a[a[:, 0] < np.quantile(a[:, 0], 0.65)]
    b = b[b[:, 1] > np.quantile(b[:, 1], 0.35)]
    R = Rotation.from_euler("xyz", [30, -50, 80], degrees=True).as_matrix()
    t_true = np.array([0.3, -0.1, 0.2])
    b = b @ R.T + t_true
    start = b.mean(axis=0) - a.mean(axis=0) @ R.T  # what centring both clouds would give
    assert np.linalg.norm(start - t_true) > 0.15  # outside the basin of a 0.05 ICP
    t = vote_translation(a, b, R, start, bin_size=0.05, extent=0.6)
    assert np.linalg.norm(t - t_true) < 0.03
    # a wrong rotation gets no such peak: the vote lands elsewhere
    wrong = Rotation.from_euler("z", 90, degrees=True).as_matrix() @ R
    assert np.linalg.norm(vote_translation(a, b, wrong, start, 0.05, 0.6) - t_true) > 0.03
    # nothing within reach: the start comes back
    assert np.allclose(vote_translation(a, b + 10.0, R, start, 0.05, 0.6), start)
    T0 = np.eye(4)
    T0[:3, :3], T0[:3, 3] = R, start
    assert np.allclose(vote_translations(a, b, T0[None], 0.05, 0.6)[0, :3, 3], t)


def test_partial_views_search_the_translation(pair):
    a, b, T = pair
    # crop both views on different sides: centring them misplaces B by a fifth of its size
    a_part = a[a[:, 0] < np.quantile(a[:, 0], 0.6)]
    bl = (b - T[:3, 3]) @ T[:3, :3]  # B back in A's frame, to crop it along A's axes
    b_part = b[bl[:, 1] > np.quantile(bl[:, 1], 0.4)]
    on = pca_register(a_part, b_part, partial_icp_points=0)  # every short ICP on all points
    off = pca_register(a_part, b_part, shift_search=False)
    assert on.low_overlap and off.low_overlap
    assert any(c.name.endswith("+shift") for c in on.candidates)
    assert not any(c.name.endswith("+shift") for c in off.candidates)
    e_on = registration_errors(on.transformation, T, a_part)
    assert e_on["rre_deg"] < 2.0 and e_on["rte"] < 0.02 and on.hypothesis.endswith("+shift")
    default = registration_errors(pca_register(a_part, b_part).transformation, T, a_part)
    assert default["rre_deg"] < 2.0 and default["rte"] < 0.02
    # without the search, the centred frames' translation leaves this pair misaligned
    assert registration_errors(off.transformation, T, a_part)["rre_deg"] > 5.0
    assert on.candidates[0].core_distance < off.candidates[0].core_distance


def test_partial_views_register_in_two_rounds(pair, monkeypatch):
    from canocaps.heads import icp as icp_module

    a, b, T = pair
    a_part = a[a[:, 0] < np.quantile(a[:, 0], 0.6)]
    bl = (b - T[:3, 3]) @ T[:3, :3]
    b_part = b[bl[:, 1] > np.quantile(bl[:, 1], 0.4)]
    calls: list[tuple[int, int]] = []  # (points of A moved, iterations) of every ICP
    real_icp = icp_module.icp_transform

    def counting(source, *args, **kwargs):
        calls.append((len(source.points), args[4] if len(args) > 4 else kwargs["max_iteration"]))
        return real_icp(source, *args, **kwargs)

    monkeypatch.setattr(icp_module, "icp_transform", counting)
    runs = {}
    for name, accept in (("one", np.inf), ("two", 0.0)):  # round one always / never enough
        calls.clear()
        res = pca_register(a_part, b_part, partial_accept=accept, partial_first=4, partial_icp_points=100,
                           screen_top=8, partial_top=16, partial_refine_top=4)
        runs[name] = (res, list(calls))
    (one, one_calls), (two, two_calls) = runs["one"], runs["two"]
    assert one.low_overlap and two.low_overlap
    # round one: 4 screened hypotheses and 8 shifted ones, short ICPs on 100 points, one refinement
    plain = [c.name for c in one.candidates if not c.name.endswith("+shift")]
    assert len(plain) == 4 and len(one.candidates) == 12
    assert [n for n, _ in one_calls].count(100) == 12 and [it for _, it in one_calls].count(50) == 1
    # round two: down to 16 of each ranking (as many as there are), four refinements
    assert len(two.candidates) > len(one.candidates) and [it for _, it in two_calls].count(50) == 4
    assert {c.name for c in one.candidates} <= {c.name for c in two.candidates}
    for res in (one, two):
        e = registration_errors(res.transformation, T, a_part)
        assert e["rre_deg"] < 2.0 and e["rte"] < 0.02
    # whole views: 4 on 100 points say so, then one round, every screened hypothesis on all points
    calls.clear()
    full = pca_register(a, b, partial_icp_points=100, screen_top=8, refine_top=3)
    assert not full.low_overlap and len(full.candidates) == 8
    assert not any(c.name.endswith("+shift") for c in full.candidates)
    assert calls.count((100, 10)) == 4 and calls.count((len(a), 10)) == 8 and calls.count((len(a), 50)) == 3
    # the same transform as the single round alone (no decision on few points)
    alone = pca_register(a, b, shift_search=False, screen_top=8, refine_top=3)
    np.testing.assert_allclose(full.transformation, alone.transformation)
