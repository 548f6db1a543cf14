"""canocaps.extras.trajectories: simulator, labeling functions, basketball format, metrics."""
from __future__ import annotations

import numpy as np
import pytest

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories import basketball, labeling
from canocaps.extras.trajectories.boids import BoidsConfig, mean_pairwise_distance, simulate, simulate_reference
from canocaps.extras.trajectories.labeling import (
    GRIDS,
    get_labeling_function,
    make_labeling_function,
    register_labeling_function,
)
from canocaps.extras.trajectories.metrics import (
    FriendlinessClassifier,
    rollout_stats,
    rollout_stats_reference,
)


@pytest.fixture(scope="module")
def flocks():
    return simulate(400, seed=11)


# --- simulator ------------------------------------------------------------------------------------


def test_simulate_shapes_and_labels(flocks):
    x, y = flocks
    assert x.shape == (400, 50, 16) and x.dtype == np.float32
    assert y.shape == (400,) and set(np.unique(y)) == {0, 1}
    start = 0.8 * np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]])
    np.testing.assert_allclose(x[:, 0].reshape(400, 8, 2), np.broadcast_to(start, (400, 8, 2)), atol=1e-6)


def test_simulate_is_deterministic_and_seed_dependent():
    a, la = simulate(20, seed=3)
    b, lb = simulate(20, seed=3)
    c, _ = simulate(20, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert np.abs(a - c).max() > 0.1


def test_vectorised_simulator_matches_per_boid_reference():
    a, la = simulate(4, seed=5)
    b, lb = simulate_reference(4, seed=5)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_speed_limit_and_boundedness(flocks):
    x, _ = flocks
    p = x.reshape(400, 50, 8, 2)
    step = np.linalg.norm(np.diff(p, axis=1), axis=-1)
    cfg = BoidsConfig()
    assert step.max() <= cfg.max_step + 1e-5
    assert step.max() > 0.9 * cfg.max_step  # the boost really varies up to its max
    # the return force at |p| > 2 keeps boids near the disk (never beyond 1 unit outside)
    assert np.linalg.norm(p, axis=-1).max() < cfg.bound + 1.0


def test_friendly_flocks_stay_closer_than_unfriendly():
    x, _ = simulate(200, seed=1, behavior=np.array([1, 0] * 100))
    d = mean_pairwise_distance(x)
    friendly, unfriendly = d[0::2], d[1::2]
    assert friendly[:, -1].mean() < 0.5 * unfriendly[:, -1].mean()
    assert (friendly[:, -1] < friendly[:, 0]).mean() > 0.8  # most friendly flocks contract (some split in two)
    assert (unfriendly[:, -1] > unfriendly[:, 0]).mean() > 0.9  # unfriendly ones spread


def test_simulator_rejects_bad_config():
    with pytest.raises(CanocapsInputError, match="n_agents"):
        simulate(2, config=BoidsConfig(n_agents=9))
    with pytest.raises(CanocapsInputError, match="behavior"):
        simulate(2, behavior=np.array([1, 2]))


# --- labeling functions --------------------------------------------------------------------------


def test_basketball_grid_orientation():
    g = GRIDS["basketball"]
    assert (g.nx, g.ny, g.cell, g.num_cells) == (9, 10, 5.0, 90)
    pts = np.array([[0, 0], [4.9, 49.9], [5, 0], [44.9, 49.9], [46, 0], [100, -3], [12, 27]])
    np.testing.assert_array_equal(g.index(pts), [0, 9, 10, 89, 80, 80, 2 * 10 + 5])
    np.testing.assert_allclose(g.center(np.array([0, 89])), [[2.5, 2.5], [42.5, 47.5]])


def _track():
    # speeds: 0.1 (still), 9.9, 10, 0.3 (still), 0.1 (still), 9.6, 10; last frame counts as still
    return np.array([[2, 2], [2.1, 2], [12, 2], [22, 2], [22.3, 2], [22.4, 2], [32, 2], [42, 2]], dtype=float)


def test_stationary_lf_on_hand_made_track():
    lf = get_labeling_function("stationary", arena="basketball")
    assert lf.num_classes == 90
    labels = lf(_track()[None, :, None, :])[0, :, 0]
    # anchors: t=0 (still -> moving), t=4 (still -> moving), t=7 (last frame)
    np.testing.assert_array_equal(labels, [0, 40, 40, 40, 40, 80, 80, 80])


def test_window_lf_on_hand_made_track():
    lf = get_labeling_function("window", window=3, arena="basketball")
    labels = lf(_track()[None, :, None, :])[0, :, 0]
    g = GRIDS["basketball"]
    c = g.index(_track())
    # anchors at t = 2, 5 (t+1 divisible by 3) and the last frame 7
    np.testing.assert_array_equal(labels, [c[2]] * 3 + [c[5]] * 3 + [c[7]] * 2)
    assert c[2] != c[5] != c[7]


def test_vectorised_lfs_match_authors_recursion():
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 0.6, size=(6, 30, 3, 2)) * (rng.random((6, 30, 3, 1)) < 0.6)
    pos = np.cumsum(steps, axis=1) * 4 + np.array([20.0, 25.0])
    g = GRIDS["basketball"]
    st = get_labeling_function("stationary", arena="basketball")(pos)
    wi = get_labeling_function("window", window=7, arena="basketball")(pos)
    for s in range(6):
        for a in range(3):
            np.testing.assert_array_equal(st[s, :, a], labeling.stationary_reference(pos[s, :, a], g, 0.5))
            np.testing.assert_array_equal(wi[s, :, a], labeling.window_reference(pos[s, :, a], g, 7))
    assert len(np.unique(st)) > 3  # the random walk does visit several cells


def test_flock_lf_agrees_with_simulator(flocks):
    x, y = flocks
    m = get_labeling_function("flock")(x)
    assert m.shape == (400, 50, 8) and (m == m[:, :1, :1]).all()
    assert (m[:, 0, 0] == y).mean() > 0.9


def test_custom_labeling_function_api():
    @register_labeling_function("test_quadrant")
    def quadrant():
        return make_labeling_function("test_quadrant", 4,
                                      lambda p: ((p[..., 0] > 0) * 2 + (p[..., 1] > 0)).astype(np.int64))

    lf = get_labeling_function("test_quadrant")
    out = lf(np.array([[[1.0, 1.0, -1.0, 1.0], [1.0, -1.0, -1.0, -1.0]]]))  # (S=1, T=2, 2A=4)
    np.testing.assert_array_equal(out, [[[3, 1], [2, 0]]])
    assert isinstance(lf, labeling.LabelingFunction)
    assert "test_quadrant" in labeling.list_labeling_functions()
    with pytest.raises(ValueError, match="already registered"):
        register_labeling_function("test_quadrant")(quadrant)
    bad = make_labeling_function("bad", 2, lambda p: np.full(p.shape[:3], 5))
    with pytest.raises(CanocapsInputError, match="outside"):
        bad(np.zeros((1, 3, 2)))


def test_labeling_errors():
    with pytest.raises(CanocapsInputError, match="unknown labeling function"):
        get_labeling_function("nope")
    with pytest.raises(CanocapsInputError, match="window"):
        get_labeling_function("window", window=0)
    with pytest.raises(CanocapsInputError, match="positions"):
        get_labeling_function("flock")(np.zeros((2, 5, 3)))
    with pytest.raises(CanocapsInputError, match="NaN"):
        get_labeling_function("flock")(np.full((1, 5, 4), np.nan))


# --- basketball ------------------------------------------------------------------------------------


def _court(rng, S=4):
    x = rng.uniform(0, 47, size=(S, 50, 11))
    y = rng.uniform(0, 50, size=(S, 50, 11))
    return np.stack([x, y], -1).reshape(S, 50, 22)


def test_basketball_loader_roundtrip_and_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    data = _court(rng)
    np.savez(tmp_path / "bball.npz", data=data)
    got = basketball.load_basketball(tmp_path / "bball.npz")
    assert got.shape == (4, 50, 22) and got.dtype == np.float32
    np.testing.assert_allclose(got, data, rtol=1e-6)
    off = basketball.select(got, "offense")
    np.testing.assert_array_equal(off, got[..., 2:12])
    # shift by 25 ft first, then scale x by 94 and y by 50 (the authors' normalize)
    v = np.array([[25.0, 25.0, 119.0, 75.0, 0.0, 0.0]])
    np.testing.assert_allclose(basketball.normalize(v), [[0, 0, 1, 1, -25 / 94, -25 / 50]])
    np.testing.assert_allclose(basketball.unnormalize(basketball.normalize(off)), off, atol=1e-4)


@pytest.mark.parametrize("kind,match", [
    ("key", "no key 'data'"), ("shape", "must have shape"), ("nan", "NaN"), ("missing", "no such file"),
    ("garbage", "not a readable"),
])
def test_basketball_loader_errors(tmp_path, kind, match):
    rng = np.random.default_rng(1)
    path = tmp_path / "bad.npz"
    if kind == "key":
        np.savez(path, positions=_court(rng))
    elif kind == "shape":
        np.savez(path, data=_court(rng)[..., :20])
    elif kind == "nan":
        d = _court(rng)
        d[0, 3, 5] = np.nan
        np.savez(path, data=d)
    elif kind == "garbage":
        path.write_text("not a zip")
    with pytest.raises(CanocapsInputError, match=match) as info:
        basketball.load_basketball(path)
    assert "\n" not in str(info.value) and "bad.npz" in str(info.value)


def test_prepare_basketball_and_stationary_labels(tmp_path):
    from canocaps.extras.trajectories import datasets, experiments

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "bball_train.npz", data=_court(rng, 20))
    np.savez(tmp_path / "bball_test.npz", data=_court(rng, 5))
    out = tmp_path / "bb"
    meta = experiments.prepare_basketball(tmp_path / "bball_train.npz", tmp_path / "bball_test.npz", out,
                                          val_fraction=0.2)
    assert meta["sizes"] == {"train": 16, "val": 4, "test": 5} and meta["n_agents"] == 5
    rep = experiments.label_dataset(out, "stationary", progress=False)
    assert rep["num_classes"] == 90 and rep["params"]["arena"] == "basketball"
    ds, k = datasets.load_dataset(out, "train", "stationary")
    assert k == 90 and ds.macro.shape == (16, 50, 5)
    assert abs(float(ds.x.mean())) < 0.5  # normalised, not feet
    with pytest.raises(Exception, match="exists"):
        experiments.prepare_basketball(tmp_path / "bball_train.npz", tmp_path / "bball_test.npz", out)


# --- metrics -----------------------------------------------------------------------------------------


def test_rollout_stats_hand_made():
    T = 5
    p = np.zeros((1, T, 2, 2))
    p[0, :, 0, 0] = np.arange(T)  # agent 0 moves 1 unit per frame; agent 1 stays
    p[0, 3:, 1, 0] = 10.0  # agent 1 jumps out of the boids arena at frame 3 (10 units)
    s = rollout_stats(p, "boids")
    assert s["avg_speed"] == pytest.approx((4 * 1 + 10) / (4 * 2))
    assert s["path_length"] == pytest.approx((4 + 10) / 2)
    assert s["oob_rate"] == pytest.approx(2 / 5)  # frames 3, 4 (agent 0 is outside from x = 3 too)


def test_rollout_stats_match_reference(flocks):
    x, _ = flocks
    a, b = rollout_stats(x, "boids"), rollout_stats_reference(x, "boids")
    for k in a:
        assert a[k] == pytest.approx(b[k])


def test_friendliness_classifier(flocks):
    x, y = flocks
    clf = FriendlinessClassifier.fit(x[:300], y[:300])
    acc = (clf.predict(x[300:]) == y[300:]).mean()
    assert acc > 0.95
    clf2 = FriendlinessClassifier.from_dict(clf.to_dict())
    np.testing.assert_allclose(clf2.prob_friendly(x[300:]), clf.prob_friendly(x[300:]))
