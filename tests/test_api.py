"""The Python API: canocaps.load_pretrained, canocaps.register, canocaps.read_points."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import canocaps
from canocaps.errors import CanocapsInputError, CanocapsWeightsError
from canocaps.model import CanonicalCapsules, CapsulesConfig
from canocaps.pretrained import DEFAULT_WEIGHTS, WEIGHTS_ENV, available_weights, resolve_device, resolve_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    net = CanonicalCapsules(CapsulesConfig.preset("cpu", num_points=128, feat_dim=16, num_capsules=8,
                                                  canon_hidden=(32,), decoder_bottleneck=32, num_blocks=1))
    net.save(d / "tiny.pt")
    return d, net


def cloud(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return (v * [1.0, 0.5, 0.25]).astype(np.float32)


def test_load_by_path_and_by_name(weights, monkeypatch):
    d, net = weights
    m = canocaps.load_pretrained(d / "tiny.pt", device="cpu")
    assert isinstance(m, CanonicalCapsules) and not m.training
    for k, v in net.state_dict().items():
        torch.testing.assert_close(m.state_dict()[k], v)
    monkeypatch.setenv(WEIGHTS_ENV, str(d))
    assert resolve_weights("tiny") == d / "tiny.pt" == resolve_weights("tiny.pt")
    assert "tiny" in available_weights()
    m2 = canocaps.load_pretrained("tiny")
    x = cloud(128, 0)
    torch.testing.assert_close(m2.canonicalize(x).R, m.canonicalize(x).R)


def test_missing_weights_name_where_it_looked(weights, monkeypatch, tmp_path):
    d, _ = weights
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(CanocapsWeightsError) as ei:
        canocaps.load_pretrained("nope")
    msg = str(ei.value)
    assert str(tmp_path) in msg and "pretrained" in msg and "canocaps train" in msg and "\n" not in msg
    with pytest.raises(CanocapsWeightsError, match="not found"):
        canocaps.load_pretrained(tmp_path / "sub" / "x.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CanocapsWeightsError):
        canocaps.load_pretrained(bad)


def test_default_name_is_the_shipped_weights(weights, monkeypatch, tmp_path):
    d, net = weights
    net.save(tmp_path / f"{DEFAULT_WEIGHTS}.pt")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert resolve_weights() == tmp_path / f"{DEFAULT_WEIGHTS}.pt"
    a = cloud(300, 1)
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    b = a @ R.T + np.float32([0.1, 0.2, 0.0])
    res = canocaps.register(a, b)  # model=None -> the default weights
    assert res.transformation.shape == (4, 4) and 0 <= res.fitness <= 1
    assert res.time_s > 0 and res.hypothesis


def test_api_round_trip_with_files(weights, tmp_path):
    d, _ = weights
    a = cloud(256, 2)
    canocaps.write_points(tmp_path / "a.xyz", a)
    back = canocaps.read_points(tmp_path / "a.xyz")
    np.testing.assert_allclose(back, a, atol=1e-5)
    m = canocaps.load_pretrained(d / "tiny.pt")
    res = m.canonicalize(back)
    assert res.R.shape == (3, 3) and res.keypoints.shape == (8, 3)
    reg = canocaps.register(tmp_path / "a.xyz", a, model=m)
    assert reg.fitness > 0.99  # identical clouds
    assert np.abs(reg.transformation - np.eye(4)).max() < 1e-3


def test_device_resolution():
    assert resolve_device(None).type in ("cpu", "cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(CanocapsInputError):
        resolve_device("warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(CanocapsInputError, match="CUDA"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_register_on_cuda_matches_cpu(weights):
    d, _ = weights
    a = cloud(400, 3)
    R = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=np.float32)
    b = a @ R.T
    cpu = canocaps.register(a, b, model=canocaps.load_pretrained(d / "tiny.pt", device="cpu"), refine=False)
    gpu = canocaps.register(a, b, model=canocaps.load_pretrained(d / "tiny.pt", device="cuda"), refine=False)
    assert gpu.hypothesis == cpu.hypothesis
    np.testing.assert_allclose(gpu.transformation, cpu.transformation, atol=1e-3)


# ----------------------------------------------------------------- every cloud form the README names (issue 15)
def _forms(points: np.ndarray, tmp_path) -> dict:
    """The same (N, 3) cloud in every form the README promises (numpy, torch, Open3D, trimesh, files)."""
    import open3d as o3d
    import trimesh

    canocaps.write_points(tmp_path / "c.ply", points)
    return {
        "numpy float32": points,
        "numpy float64": points.astype(np.float64),
        "numpy float16": points.astype(np.float16),
        "(1, N, 3) array": points[None],
        "list of lists": points.tolist(),
        "tuple of tuples": tuple(map(tuple, points.tolist())),
        "trimesh TrackedArray": trimesh.caching.tracked_array(points),
        "trimesh PointCloud": trimesh.PointCloud(points),
        "torch float32": torch.as_tensor(points),
        "torch float64 requires_grad": torch.as_tensor(points, dtype=torch.float64).requires_grad_(True),
        "torch bfloat16": torch.as_tensor(points).to(torch.bfloat16),
        "open3d PointCloud": o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64))),
        "open3d.t PointCloud": o3d.t.geometry.PointCloud(o3d.core.Tensor(points)),
        "path str": str(tmp_path / "c.ply"),
        "pathlib.Path": tmp_path / "c.ply",
    }


def test_every_cloud_form_reads_as_the_same_points(tmp_path):
    from canocaps.io import as_points

    pts = cloud(300, 7)
    for name, obj in _forms(pts, tmp_path).items():
        got = as_points(obj, name)
        assert got.shape == (300, 3) and got.dtype == np.float32, name
        tol = 1e-2 if ("16" in name) else 1e-6
        np.testing.assert_allclose(got, pts, atol=tol, err_msg=name)


def test_register_takes_trimesh_vertices_and_surface_samples(weights):
    """The issue's failing calls: canocaps.register(mesh.vertices, ...) and sample_surface output."""
    import trimesh

    d, _ = weights
    model = canocaps.load_pretrained(d / "tiny.pt")
    mesh = trimesh.creation.box(extents=(1.0, 0.5, 0.25)).subdivide().subdivide()
    R = trimesh.transformations.rotation_matrix(0.7, [0, 0, 1])
    moved = mesh.copy()
    moved.apply_transform(R)
    assert type(mesh.vertices).__name__ == "TrackedArray"
    res = canocaps.register(mesh.vertices, moved.vertices, model=model)
    assert res.transformation.shape == (4, 4) and res.fitness > 0.5
    samples, _ = trimesh.sample.sample_surface(mesh, 400, seed=0)
    res = canocaps.register(samples, moved, model=model)  # a sampled array onto a mesh object
    assert res.transformation.shape == (4, 4) and res.quality in ("good", "doubtful")
    from canocaps.io import DEFAULT_MESH_POINTS, as_points

    assert as_points(moved).shape == (DEFAULT_MESH_POINTS, 3)  # a mesh object is sampled on its surface


# ----------------------------------------------------------------- weights are loaded once (issue 15)
def test_load_pretrained_returns_the_cached_model_until_the_file_changes(weights, tmp_path):
    import os

    d, net = weights
    path = tmp_path / "w.pt"
    net.save(path)
    a = canocaps.load_pretrained(path, device="cpu")
    assert canocaps.load_pretrained(path, device="cpu") is a  # same file, same device: the same object
    assert canocaps.load_pretrained(str(path), device="cpu") is a
    own = canocaps.load_pretrained(path, device="cpu", cache=False)
    assert own is not a and canocaps.load_pretrained(path, device="cpu") is a
    x = cloud(128, 0)
    before = a.canonicalize(x).R
    canocaps.register(x, x, model=a)  # inference leaves the shared model as it was
    assert not a.training
    torch.testing.assert_close(a.canonicalize(x).R, before)
    net.save(path, force=True)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a rewritten file (new mtime): loaded again
    assert canocaps.load_pretrained(path, device="cpu") is not a
