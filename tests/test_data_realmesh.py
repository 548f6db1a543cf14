"""The real-mesh set: the builder on a fake pybullet_data folder, the dataset, the bundled subset."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import trimesh

from canocaps.data import build_dataset
from canocaps.data.realmesh import RealMeshes
from canocaps.data.realmesh_build import CLASS_NAMES, build_realmesh, write_bundle
from canocaps.errors import CanocapsInputError, OutputExistsError

REPO = Path(__file__).resolve().parents[1]
P = 512


def _hull(rng: np.random.Generator, n: int = 100) -> trimesh.Trimesh:
    return trimesh.convex.convex_hull(rng.normal(size=(n, 3)) * rng.uniform(0.5, 2.0, 3))


@pytest.fixture(scope="module")
def fake_source(tmp_path_factory) -> Path:
    """A tiny pybullet_data: 9 random objects, a robot with a visual/collision duplicate and a
    mirror-image part, a licence file, and things that must be left out."""
    root = tmp_path_factory.mktemp("pb")
    src = root / "pybullet_data"
    rng = np.random.default_rng(0)
    for k in range(9):
        d = src / "random_urdfs" / f"{k:03d}"
        d.mkdir(parents=True)
        _hull(rng).export(d / f"{k:03d}.obj")
    robot = src / "xarm" / "meshes"
    (robot / "visual").mkdir(parents=True)
    (robot / "collision").mkdir(parents=True)
    link = _hull(rng, 60)
    link.apply_translation([5.0, -3.0, 2.0])  # off-centre: the builder must centre it
    link.export(robot / "visual" / "link1.stl")
    link.export(robot / "collision" / "link1.obj")  # exact duplicate: the visual copy is kept
    mirrored = link.copy()
    mirrored.apply_transform(np.diag([-1.0, 1.0, 1.0, 1.0]))
    mirrored.export(robot / "visual" / "link1_mirror.stl")  # a mirror image is another shape
    (src / "xarm" / "LICENSE.txt").write_text("\nTest Licence 1.0\nmore text\n")
    trimesh.creation.icosphere(2).export(src / "bunny.obj")  # scan-repository name: excluded
    (src / "toys").mkdir()
    trimesh.creation.icosphere(2).export(src / "toys" / "teapot_big.obj")  # scan-repository name: excluded
    trimesh.creation.box((10, 10, 0.1)).export(src / "plane.obj")  # ground plane: excluded
    trimesh.creation.box().export(src / "cube.obj")  # 12 faces: degenerate
    sheet = trimesh.creation.box((1.0, 1.0, 1e-6)).subdivide().subdivide()
    sheet.export(src / "toys" / "sheet.obj")  # flat: degenerate
    trimesh.creation.capsule(1.0, 0.4).export(src / "toys" / "capsule.obj")
    (src / "toys" / "broken.obj").write_text("this is not a mesh\n")
    (src / "duck.dae").write_text("<COLLADA/>\n")  # never read
    meta = root / "pybullet-9.9.9.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: pybullet\nVersion: 9.9.9\n")
    return src


@pytest.fixture(scope="module")
def built(fake_source, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("out") / "rm.h5"
    rep = build_realmesh(fake_source, dst, P, chunk=4, progress=False, command="test")
    assert rep.complete and rep.path == dst and not dst.with_name("rm.h5.partial").exists()
    return dst


def _strings(ds) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in ds[()]]


def test_builder_fields_exclusions_and_splits(built, fake_source):
    with h5py.File(built) as f:
        names, splits, groups, lic = (_strings(f[k]) for k in ("name", "split", "group", "license"))
        pts = np.asarray(f["points"], dtype=np.float64)
        labels = np.asarray(f["label"])
        excluded = dict(map(tuple, json.loads(f.attrs["excluded"])))
        degenerate = [x[0] for x in json.loads(f.attrs["degenerate"])]
        failed = [x[0] for x in json.loads(f.attrs["failed"])]
        duplicates = json.loads(f.attrs["duplicates"])
        assert f["points"].dtype == np.float16 and pts.shape == (len(names), P, 3)
        assert f.attrs["source_version"] == "9.9.9" and f.attrs["num_points"] == P and f.attrs["build_command"] == "test"
        assert "bunny" in json.loads(f.attrs["exclusions"])
        assert json.loads(f.attrs["class_names"]) == list(CLASS_NAMES)
    assert sorted(names) == sorted([f"random_urdfs/{k:03d}/{k:03d}.obj" for k in range(9)]
                                   + ["xarm/meshes/visual/link1.stl", "xarm/meshes/visual/link1_mirror.stl",
                                      "toys/capsule.obj"])
    assert "scan-repository" in excluded["bunny.obj"] and "scan-repository" in excluded["toys/teapot_big.obj"]
    assert excluded["plane.obj"] == "ground plane" and "pycollada" in excluded["duck.dae"]
    assert sorted(degenerate) == ["cube.obj", "toys/sheet.obj"] and failed == ["toys/broken.obj"]
    assert duplicates == [["xarm/meshes/collision/link1.obj", "xarm/meshes/visual/link1.stl"]]
    # unit sphere: bounding-box centre at 0, farthest vertex at radius 1 (samples lie within it)
    norms = np.linalg.norm(pts, axis=2)
    assert norms.max() <= 1.002 and norms.max(1).min() > 0.9
    mesh = trimesh.load(fake_source / "xarm/meshes/visual/link1.stl", force="mesh")
    centre = mesh.bounds.mean(0)
    radius = np.linalg.norm(mesh.vertices - centre, axis=1).max()
    back = pts[names.index("xarm/meshes/visual/link1.stl")] * radius + centre  # undo the normalisation
    # the mesh is convex: a point on its surface has max signed distance 0 over the face planes
    signed = ((back[:, None] - mesh.triangles[None, :, 0]) * mesh.face_normals[None]).sum(-1).max(1)
    assert np.abs(signed).max() < 2e-3 * radius
    # whole groups per split; the 9 random objects reach all three splits; labels by folder
    assert set(splits) == {"train", "val", "test"}
    for g in set(groups):
        assert len({s for s, h in zip(splits, groups) if h == g}) == 1
    rnd = [s for s, n in zip(splits, names) if n.startswith("random_urdfs")]
    assert {"train", "val", "test"} <= set(rnd) and rnd.count("train") >= 5
    by_name = dict(zip(names, labels))
    assert CLASS_NAMES[by_name["xarm/meshes/visual/link1.stl"]] == "robot_part"
    assert CLASS_NAMES[by_name["random_urdfs/000/000.obj"]] == "random_object"
    assert dict(zip(names, lic))["xarm/meshes/visual/link1.stl"] == "Test Licence 1.0 [xarm/LICENSE.txt]"
    assert dict(zip(names, lic))["toys/capsule.obj"].startswith("pybullet_data (zlib")
    # the mirror image is kept as its own shape: it matches the original only once mirrored back
    a, b = (pts[names.index(f"xarm/meshes/visual/link1{s}.stl")] for s in ("", "_mirror"))

    def chamfer(x, y):
        return np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)).min(1).mean()

    assert chamfer(a, b * [-1, 1, 1]) < 0.5 * chamfer(a, b)


def test_dataset_reads_the_file(built):
    ds = RealMeshes(built, "train", 128, resample_views=True, seed=3)
    assert len(ds) >= 5 and ds.class_names == list(CLASS_NAMES) and all(n.endswith((".obj", ".stl")) for n in ds.names)
    item, again = ds[0], ds[0]
    p, q = item["points"].numpy(), item["points_b"].numpy()
    assert p.shape == q.shape == (128, 3) and int(item["label"]) == ds.labels[0]
    assert np.linalg.norm(p, axis=1).max() <= 1.0 + 1e-5
    # independent samples of one surface: no shared point, but the same shape (close in Chamfer terms)
    assert not (np.abs(p[:, None] - q[None]).sum(-1) < 1e-7).any()
    d = np.sqrt(((p[:, None] - q[None]) ** 2).sum(-1))
    assert d.min(1).mean() < 0.2
    np.testing.assert_array_equal(p, again["points"].numpy())  # deterministic under a seed
    np.testing.assert_array_equal(q, again["points_b"].numpy())
    assert not np.array_equal(p, RealMeshes(built, "train", 128, seed=4)[0]["points"].numpy())
    with pytest.raises(CanocapsInputError):
        RealMeshes(built.with_name("missing.h5"), "test")


def test_resumed_build_equals_one_shot(fake_source, built, tmp_path):
    dst = tmp_path / "r.h5"
    rep = build_realmesh(fake_source, dst, P, chunk=2, limit=5, progress=False, command="test")
    assert not rep.complete and rep.path.name == "r.h5.partial" and not dst.exists()
    with h5py.File(rep.path) as f:
        assert int(f.attrs["done"]) == 5
    rep = build_realmesh(fake_source, dst, P, chunk=3, progress=False, command="test")
    assert rep.complete
    with h5py.File(dst) as a, h5py.File(built) as b:
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key][()], b[key][()])
        assert {k: str(v) for k, v in a.attrs.items()} == {k: str(v) for k, v in b.attrs.items()}
    with pytest.raises(OutputExistsError):
        build_realmesh(fake_source, dst, P, progress=False)


def test_bundle_and_fallback_to_the_bundled_subset(built, tmp_path, monkeypatch):
    out = tmp_path / "data" / "realmesh_test.h5"
    n = write_bundle(built, out, num_points=200, max_items=2)
    with h5py.File(built) as f:
        test_names = [m for m, s in zip(_strings(f["name"]), _strings(f["split"])) if s == "test"]
    assert n == min(2, len(test_names))
    monkeypatch.setenv("CANOCAPS_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("CANOCAPS_DATA_DIR", str(out.parent))
    ds = build_dataset("realmesh", "test", 64)
    assert len(ds) == n and ds.points.shape == (n, 200, 3) and set(ds.names) <= set(test_names)
    with pytest.raises(CanocapsInputError, match="build_realmesh_set"):
        build_dataset("realmesh", "train", 64)  # only the test split is bundled


def test_shipped_bundle_loads():
    """data/realmesh_test.h5 (shipped): the benchmark runs without pybullet."""
    ds = build_dataset("realmesh", "test", 1024, root=REPO / "data" / "realmesh_test.h5", resample_views=True, seed=0)
    assert 20 <= len(ds) <= 96 and ds.points.shape[1:] == (4096, 3) and ds.points.dtype == np.float16
    assert not any(bad in n.lower() for n in ds.names for bad in ("bunny", "dragon", "armadillo", "teapot"))
    assert len(set(ds.labels.tolist())) >= 2 and ds.attrs["source_version"] != "unknown"
    assert ds[0]["points_b"].shape == (1024, 3)


def test_tool_errors_are_one_line(built, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "tools"))  # as when the tool runs as a script (in-process: fast)
    tool = importlib.import_module("build_realmesh_set")
    assert tool.main([str(tmp_path / "x.h5"), "--source", str(tmp_path / "nowhere"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("build_realmesh_set: error: ") and err.count("\n") == 1 and "pybullet_data folder" in err
    assert tool.main([str(built), "--source", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert tool.main([str(built), "--bundle-test", str(tmp_path / "b.h5"), "--bundle-points", "100"]) == 0
    with h5py.File(tmp_path / "b.h5") as f:
        assert f["points"].shape[1] == 100 and set(_strings(f["split"])) == {"test"}
