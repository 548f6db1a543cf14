"""The input edge at the API (issue 14): any scale, odd argument types, degenerate clouds.

Scales 1e-20 .. 1e30 go through ``canocaps.register`` and the canonicalise-in-input-units
helper (``canocaps.heads.frames``, used by ``canonicalize_cloud``) with the shipped weights:
the answer in input units must be the answer at scale 1 scaled, because centring, scaling
and the transforms back are float64 and only the unit-sphere network input is float32.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import canocaps
from canocaps.errors import CanocapsError, CanocapsInputError, CanocapsWarning, CanocapsWeightsError
from canocaps.heads.canonical import canonicalize_cloud
from canocaps.heads.frames import canonicalize_in_input_units
from canocaps.heads.reconstruction import reconstruct
from canocaps.io import as_points, check_pose, unit_sphere

SCALES = [1e-20, 1e-6, 1.0, 1e6, 1e30]
R_GT = np.array([[0.36, 0.48, -0.8], [-0.8, 0.6, 0.0], [0.48, 0.64, 0.6]])  # a proper rotation
T_GT = np.array([0.1, -0.05, 0.2])


@pytest.fixture(scope="module")
def model():
    return canocaps.load_pretrained()


@pytest.fixture(scope="module")
def demo():
    from canocaps._resources import data_dir

    return canocaps.read_points(data_dir() / "demo" / "a.ply").astype(np.float64)


@pytest.fixture(scope="module")
def unit_frame(model, demo):
    return canonicalize_cloud(demo.astype(np.float32), model)


def _rot_err_deg(A, B):
    return float(np.degrees(np.arccos(np.clip((np.trace(A.T @ B) - 1) / 2, -1, 1))))


@pytest.mark.parametrize("s", SCALES)
def test_canonicalize_any_scale(model, demo, unit_frame, s):
    res = canonicalize_cloud((demo * s).astype(np.float32), model)
    T, T1 = res.transform, unit_frame.transform
    assert np.abs(T[:3, :3] - T1[:3, :3]).max() < 1e-4
    np.testing.assert_allclose(T[:3, 3] / s, T1[:3, 3], atol=1e-4)
    np.testing.assert_allclose(res.canonical_points / np.float32(s), unit_frame.canonical_points, atol=1e-4)
    np.testing.assert_allclose(res.keypoints / s, unit_frame.keypoints, atol=1e-4)


@pytest.mark.parametrize("s", SCALES)
def test_register_any_scale(model, demo, s):
    a = demo * s
    b = (demo @ R_GT.T + T_GT) * s
    r = canocaps.register(a.astype(np.float32), b.astype(np.float32), model=model)
    assert r.fitness > 0.99
    assert _rot_err_deg(r.transformation[:3, :3], R_GT) < 0.1
    np.testing.assert_allclose(r.transformation[:3, 3] / s, T_GT, atol=1e-4)
    assert r.max_correspondence_distance > 0 and np.isfinite(r.inlier_rmse / s)


def test_float64_centring_keeps_a_far_cloud_exact(model, demo, unit_frame):
    """A unit-size cloud 1e7 away: float32 would round it to a 1-unit grid; the helper centres in float64."""
    far = demo + 1e7
    (f,) = canonicalize_in_input_units(model, [as_points(far, dtype=np.float64, pose=True)])
    assert np.abs(f.transform[:3, :3] - unit_frame.transform[:3, :3]).max() < 1e-4
    moved = far @ f.transform[:3, :3].T + f.transform[:3, 3]
    np.testing.assert_allclose(moved, unit_frame.canonical_points, atol=1e-4)


def test_unit_sphere_at_float64_extremes():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(100, 3))
    c1, r1 = unit_sphere(p)
    for s in (1e-200, 1e200):
        c, r = unit_sphere(p * s)
        assert np.isfinite(r) and r == pytest.approx(r1 * s, rel=1e-12)
        np.testing.assert_allclose(c / s, c1, atol=1e-12)


def test_model_canonicalize_refuses_float32_overflow_in_one_line(model, demo):
    with pytest.raises(CanocapsInputError, match="overflow") as e:
        model.canonicalize(torch.as_tensor(demo[:256] * 1e30, dtype=torch.float32))
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ degenerate clouds


def _degenerate(kind: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    if kind == "equal":
        return np.tile([0.1, 0.2, 0.3], (64, 1))
    if kind == "collinear":
        return np.outer(rng.normal(size=64), [0.3, -0.2, 0.9]) + [1.0, 2.0, 3.0]
    return rng.normal(size=(64, 3)) @ np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 0]]) @ R_GT.T  # coplanar


@pytest.mark.parametrize("kind, words", [("equal", "all 64 points are equal"), ("collinear", "one line")])
@pytest.mark.parametrize("scale", [1e-20, 1.0, 1e30])
def test_undefined_pose_is_refused_in_one_line(model, kind, words, scale):
    pts = (_degenerate(kind) * scale).astype(np.float32)
    for call in (lambda: canonicalize_cloud(pts, model, name="cloud"),
                 lambda: canocaps.register(pts, pts, model=model, names=("cloud", "b")),
                 lambda: reconstruct(pts, model)):
        with pytest.raises(CanocapsInputError, match=words) as e:
            call()
        assert "\n" not in str(e.value)


def test_coplanar_cloud_warns_once_in_one_line(model):
    pts = _degenerate("plane").astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = canonicalize_cloud(pts, model, name="flat")
    ours = [w for w in caught if issubclass(w.category, CanocapsWarning)]
    assert len(ours) == 1 and "one plane" in str(ours[0].message) and "\n" not in str(ours[0].message)
    assert np.allclose(res.transform[:3, :3] @ res.transform[:3, :3].T, np.eye(3), atol=1e-6)


def test_check_pose_thresholds():
    rng = np.random.default_rng(2)
    thin = rng.normal(size=(200, 3)) * [1.0, 1.0, 1e-3]  # thin but 3-D: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_pose(thin)
    with pytest.raises(CanocapsInputError, match="radius"):
        check_pose(rng.normal(size=(20, 3)) * 1e-200)


# ------------------------------------------------------------------ odd argument types

GOOD = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
ODD = {
    "None": None, "int": 5, "float": 3.5, "missing path": "no/such/file.ply", "bytes": b"abc", "empty list": [],
    "ragged": [[1, 2], [3]], "dict": {}, "object": object(), "strings": np.array([["a", "b", "c"]] * 20),
    "complex": GOOD.astype(complex), "bool": np.ones((20, 3), bool), "int64 tensor": torch.ones(20, 3, dtype=torch.int64),
    "bfloat16 tensor": torch.as_tensor(GOOD).bfloat16(), "float16 tensor": torch.as_tensor(GOOD).half(),
    "4-d": GOOD[None, None], "(0, 3)": np.zeros((0, 3)), "set": {1, 2}, "generator": (i for i in range(3)),
    "nan": np.full((20, 3), np.nan), "meta tensor": torch.empty(20, 3, device="meta"),
    "complex tensor": torch.ones(20, 3, dtype=torch.complex64), "(N, 2)": GOOD[:, :2], "float64 1e300": GOOD.astype(np.float64) * 1e300,
}


@pytest.mark.parametrize("what", list(ODD))
def test_public_api_raises_only_canocaps_errors(model, what):
    """Each call either works or raises a CanocapsError subclass with one line: never TypeError & co."""
    v = ODD[what]
    calls = {
        "register": lambda: canocaps.register(v, GOOD, model=model, refine=False, hypotheses=("canonical",)),
        "register (b)": lambda: canocaps.register(GOOD, v, model=model, refine=False, hypotheses=("canonical",)),
        "canonicalize_cloud": lambda: canonicalize_cloud(v, model),
        "model.canonicalize": lambda: model.canonicalize(v),
        "as_points": lambda: as_points(v),
        "load_pretrained": lambda: canocaps.load_pretrained(v) if v is not None else None,
    }
    for name, call in calls.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CanocapsWarning)
                call()
        except CanocapsError as e:
            assert "\n" not in str(e), (name, str(e))
            if name == "load_pretrained":
                assert isinstance(e, CanocapsWeightsError), (name, e)
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name}({what}) raised {type(e).__name__}: {e}")


def test_bfloat16_and_int_inputs_work_and_load_pretrained_types(model):
    r = canocaps.register(torch.as_tensor(GOOD).bfloat16(), GOOD, model=model, refine=False, hypotheses=("canonical",))
    assert r.transformation.shape == (4, 4)
    with pytest.raises(CanocapsWeightsError, match="expected a name or a path, got int"):
        canocaps.load_pretrained(5)
