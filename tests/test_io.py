"""Tests of canocaps.io: every readable/writable format, each bad-input class, atomic writes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import torch
import trimesh
from plyfile import PlyData, PlyElement

from canocaps.errors import CanocapsInputError, OutputExistsError
from canocaps.io import (
    DEFAULT_MESH_POINTS,
    READ_EXTENSIONS,
    read_mesh,
    read_points,
    sample_mesh,
    validate_points,
    write_points,
)


@pytest.fixture()
def cloud() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)


@pytest.fixture()
def box() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(2.0, 1.0, 0.5))


def on_box_surface(p: np.ndarray, extents=(2.0, 1.0, 0.5), tol=1e-5) -> bool:
    half = np.asarray(extents) / 2
    inside = (np.abs(p) <= half + tol).all(axis=1)
    on_face = (np.abs(np.abs(p) - half) < tol).any(axis=1)
    return bool((inside & on_face).all())


# ----------------------------------------------------------------------------- reading point clouds


@pytest.mark.parametrize("text", [False, True])
def test_read_ply_point_cloud_plyfile(tmp_path, cloud, text):
    vertex = np.empty(len(cloud), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = cloud.T
    vertex["red"] = 7
    f = tmp_path / "c.ply"
    PlyData([PlyElement.describe(vertex, "vertex")], text=text).write(str(f))
    assert (b"ascii" in f.read_bytes()[:100]) == text
    out = read_points(f)
    assert out.dtype == np.float32 and out.shape == (300, 3)
    np.testing.assert_allclose(out, cloud, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("ascii_", [False, True])
def test_read_pcd_via_open3d(tmp_path, cloud, ascii_):
    f = tmp_path / "c.pcd"
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64)))
    assert o3d.io.write_point_cloud(str(f), pcd, write_ascii=ascii_)
    np.testing.assert_allclose(read_points(f), cloud, atol=1e-5)


@pytest.mark.parametrize(
    "ext,sep,header",
    [(".xyz", " ", ""), (".pts", "\t", "300\n"), (".txt", ",", "x,y,z,intensity\n# comment\n")],
)
def test_read_text_formats(tmp_path, cloud, ext, sep, header):
    f = tmp_path / f"c{ext}"
    extra = np.arange(len(cloud))[:, None].astype(np.float32)
    rows = "\n".join(sep.join(f"{v:.9g}" for v in row) for row in np.hstack([cloud, extra]))
    f.write_text(header + rows + "\n")
    out = read_points(f)
    np.testing.assert_array_equal(out, cloud)


def test_read_npy_npz(tmp_path, cloud):
    np.save(tmp_path / "a.npy", cloud.astype(np.float64))
    np.testing.assert_array_equal(read_points(tmp_path / "a.npy"), cloud)
    np.save(tmp_path / "n.npy", np.hstack([cloud, -cloud]))  # xyz + normals: first 3 columns
    np.testing.assert_array_equal(read_points(tmp_path / "n.npy"), cloud)
    np.savez(tmp_path / "b.npz", labels=np.zeros(3), points=cloud)
    np.testing.assert_array_equal(read_points(tmp_path / "b.npz"), cloud)
    np.savez(tmp_path / "c.npz", data=cloud, other=np.zeros((5, 3)))
    np.testing.assert_array_equal(read_points(tmp_path / "c.npz"), cloud)
    np.savez(tmp_path / "d.npz", cloud)  # arr_0
    np.testing.assert_array_equal(read_points(tmp_path / "d.npz"), cloud)


def test_subsampling_seeded_and_first_n(tmp_path, cloud):
    f = tmp_path / "c.npy"
    np.save(f, cloud)
    a = read_points(f, num_points=100, seed=3)
    b = read_points(f, num_points=100, seed=3)
    c = read_points(f, num_points=100, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a, axis=0)) == 100  # without replacement
    assert {tuple(r) for r in a} <= {tuple(r) for r in cloud}
    np.testing.assert_array_equal(read_points(f, num_points=50, first_n=True), cloud[:50])
    assert read_points(f, num_points=1000).shape == (300, 3)  # fewer points: returned whole
    with pytest.raises(CanocapsInputError, match="at least 301"):
        read_points(f, min_points=301)


# ----------------------------------------------------------------------------- reading meshes


@pytest.mark.parametrize("ext", [".obj", ".off", ".stl", ".ply"])
def test_read_mesh_formats_sampled_on_surface(tmp_path, box, ext):
    f = tmp_path / f"box{ext}"
    box.export(str(f))
    pts = read_points(f)
    assert pts.shape == (DEFAULT_MESH_POINTS, 3)
    assert on_box_surface(pts)
    # uniform: the two 2x1 faces hold 2*2/(2*(2+1+0.5)) = 4/7 ~ 0.571 of the area
    frac = np.mean(np.abs(np.abs(pts[:, 2]) - 0.25) < 1e-5)
    assert abs(frac - 4 / 7) < 0.04
    np.testing.assert_array_equal(read_points(f, num_points=500, seed=1), read_points(f, num_points=500, seed=1))
    assert not np.array_equal(read_points(f, num_points=500, seed=1), read_points(f, num_points=500, seed=2))
    mesh = read_mesh(f)
    assert len(mesh.faces) == 12


def test_ascii_ply_mesh_and_as_mesh_false(tmp_path, box):
    f = tmp_path / "box.ply"
    box.export(str(f), encoding="ascii")
    assert b"format ascii" in f.read_bytes()[:200]
    assert on_box_surface(read_points(f, num_points=256))
    verts = read_points(f, as_mesh=False)
    assert verts.shape == (8, 3)
    np.testing.assert_allclose(np.sort(verts, axis=0), np.sort(box.vertices.astype(np.float32), axis=0))


def test_obj_without_faces_is_a_point_cloud(tmp_path):
    f = tmp_path / "p.obj"
    f.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    np.testing.assert_array_equal(read_points(f), np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    with pytest.raises(CanocapsInputError, match="no faces"):
        read_mesh(f)


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("ext", [".ply", ".pcd", ".xyz", ".pts", ".txt", ".npy", ".npz"])
def test_write_read_round_trip(tmp_path, cloud, ext):
    f = tmp_path / f"out{ext}"
    assert write_points(f, cloud) == f
    np.testing.assert_array_equal(read_points(f), cloud)
    # never overwritten without force
    other = cloud[::-1].copy()
    with pytest.raises(OutputExistsError):
        write_points(f, other)
    np.testing.assert_array_equal(read_points(f), cloud)
    write_points(f, other, force=True)
    np.testing.assert_array_equal(read_points(f), other)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name]  # no temp files left


def test_write_binary_ply_with_normals_colors(tmp_path, cloud):
    f = tmp_path / "c.ply"
    normals = cloud / np.linalg.norm(cloud, axis=1, keepdims=True)
    colors = np.random.default_rng(1).integers(0, 256, size=(len(cloud), 3), dtype=np.uint8)
    write_points(f, torch.from_numpy(cloud), normals=normals, colors=colors)
    ply = PlyData.read(str(f))
    assert not ply.text  # binary
    names = ply["vertex"].data.dtype.names
    assert {"x", "nx", "red"} <= set(names)
    np.testing.assert_array_equal(ply["vertex"]["red"], colors[:, 0])
    pcd = o3d.io.read_point_cloud(str(f))
    np.testing.assert_allclose(np.asarray(pcd.normals), normals, atol=1e-6)
    g = tmp_path / "c.npz"
    write_points(g, cloud, normals=normals, colors=colors / 255.0)
    with np.load(g) as z:
        np.testing.assert_allclose(z["normals"], normals)
        assert set(z.files) == {"points", "normals", "colors"}


def test_write_bad_inputs(tmp_path, cloud):
    with pytest.raises(CanocapsInputError, match="supported"):
        write_points(tmp_path / "c.obj", cloud)
    with pytest.raises(CanocapsInputError, match="NaN"):
        write_points(tmp_path / "c.ply", np.full((4, 3), np.nan))
    with pytest.raises(CanocapsInputError, match="rows"):
        write_points(tmp_path / "c.ply", cloud, normals=cloud[:5])
    with pytest.raises(CanocapsInputError, match="colors"):
        write_points(tmp_path / "c.ply", cloud, colors=cloud * 10)
    with pytest.raises(CanocapsInputError, match="npz"):
        write_points(tmp_path / "c.npy", cloud, normals=cloud)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_when_writer_fails(tmp_path, cloud, monkeypatch):
    f = tmp_path / "c.xyz"
    write_points(f, cloud)
    before = f.read_bytes()

    def boom(fname, *a, **k):
        Path(fname).write_text("partial")  # half-written temporary file
        raise OSError("disk full")

    monkeypatch.setattr(np, "savetxt", boom)
    with pytest.raises(OSError, match="disk full"):
        write_points(f, cloud[:10], force=True)
    assert f.read_bytes() == before
    with pytest.raises(OSError):
        write_points(tmp_path / "new.xyz", cloud)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.xyz"]


# ----------------------------------------------------------------------------- bad input files


def test_bad_files_one_line_errors(tmp_path):
    cases = {}
    cases["missing"] = (tmp_path / "nope.ply", "no such file")
    cases["directory"] = (tmp_path, "directory")
    (tmp_path / "empty.xyz").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.xyz", "empty")
    (tmp_path / "c.abc").write_text("1 2 3\n")
    cases["extension"] = (tmp_path / "c.abc", "supported: .npy")
    (tmp_path / "bad.ply").write_text("this is not a ply\n")
    cases["bad ply"] = (tmp_path / "bad.ply", "not a PLY file")
    (tmp_path / "bad.pcd").write_text("garbage\n")
    cases["bad pcd"] = (tmp_path / "bad.pcd", "not a PCD file")
    (tmp_path / "bad.obj").write_text("garbage\n")
    cases["bad obj"] = (tmp_path / "bad.obj", "no geometry")
    (tmp_path / "bad.stl").write_bytes(b"\x00\x01garbage" * 3)
    cases["bad stl"] = (tmp_path / "bad.stl", "bad.stl")
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    cases["bad npy"] = (tmp_path / "bad.npy", "cannot parse")
    (tmp_path / "words.xyz").write_text("hello world\nfoo bar baz\n")
    cases["no numbers"] = (tmp_path / "words.xyz", "no 'x y z'")
    (tmp_path / "ragged.xyz").write_text("1 2 3\n4 5\n")
    cases["ragged"] = (tmp_path / "ragged.xyz", "cannot parse")
    (tmp_path / "bin.xyz").write_bytes(b"\xff\xfe\x00\x81" * 10)
    cases["binary text"] = (tmp_path / "bin.xyz", "not a text file")
    np.save(tmp_path / "two.npy", np.zeros((5, 2)))
    cases["wrong shape"] = (tmp_path / "two.npy", r"shape \(N, 3\), got \(5, 2\)")
    np.save(tmp_path / "nan.npy", np.array([[0, 0, 0], [np.nan, 1, 1], [np.inf, 0, 0]]))
    cases["nan"] = (tmp_path / "nan.npy", "2 of 3 points contain NaN")
    (tmp_path / "nan.xyz").write_text("0 0 0\nnan 1 1\n")
    cases["nan text"] = (tmp_path / "nan.xyz", "1 of 2 points contain NaN")
    np.save(tmp_path / "zero.npy", np.zeros((0, 3)))
    cases["zero points"] = (tmp_path / "zero.npy", "empty")
    np.savez(tmp_path / "none.npz")
    cases["empty npz"] = (tmp_path / "none.npz", "holds no arrays")
    for label, (path, pattern) in cases.items():
        with pytest.raises(CanocapsInputError, match=pattern) as info:
            read_points(path)
        msg = str(info.value)
        assert "\n" not in msg, label
        assert Path(path).name in msg, label
    with pytest.raises(CanocapsInputError, match="at least 10"):
        np.save(tmp_path / "few.npy", np.zeros((4, 3)))
        read_points(tmp_path / "few.npy", min_points=10)
    assert ".pcd" in READ_EXTENSIONS and ".off" in READ_EXTENSIONS


def test_open3d_stays_quiet_on_bad_pcd(tmp_path):
    f = tmp_path / "bad.pcd"
    f.write_text("garbage\n")
    code = (
        "import sys\nfrom canocaps.io import read_points\n"
        "try:\n    read_points(sys.argv[1])\nexcept Exception as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ERR")
    assert "Open3D" not in out.stdout + out.stderr


# ----------------------------------------------------------------------------- validate_points


def test_validate_points_accepts_many_types(cloud, box):
    for obj in (cloud, cloud.astype(np.float64), torch.from_numpy(cloud), torch.from_numpy(cloud).double(),
                torch.from_numpy(cloud).requires_grad_(True), cloud.tolist(),
                o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64))),
                trimesh.PointCloud(cloud)):
        out = validate_points(obj)
        assert out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_allclose(out, cloud, atol=1e-7)
    out = validate_points(cloud)
    out[0] = 99.0
    assert cloud[0, 0] != 99.0  # a copy
    sampled = validate_points(box)
    assert sampled.shape == (DEFAULT_MESH_POINTS, 3) and on_box_surface(sampled)
    np.testing.assert_array_equal(sampled, sample_mesh(box, DEFAULT_MESH_POINTS, seed=0))
    assert validate_points(np.zeros((3, 3), dtype=np.int64)).dtype == np.float32


@pytest.mark.parametrize(
    "bad,pattern",
    [
        (np.zeros((0, 3)), "empty"),
        ([], "empty"),
        (np.zeros((5, 2)), r"got \(5, 2\)"),
        (np.zeros(3), r"got \(3,\)"),
        (np.zeros((2, 5, 3)), r"got \(2, 5, 3\)"),
        (np.array([[1, 2, 3], [np.nan, 0, 0]]), "1 of 2 points contain NaN"),
        (np.array([[1e300, 0, 0]]), "overflow"),
        (np.array([["a", "b", "c"]]), "real numbers"),
        ([[1, 2, 3], [1, 2]], "not an array"),
        (np.zeros((2, 3)), "at least 5"),
    ],
)
def test_validate_points_rejects(bad, pattern):
    with pytest.raises(CanocapsInputError, match=pattern) as info:
        validate_points(bad, min_points=5 if pattern == "at least 5" else 1, name="myarg")
    assert str(info.value).startswith("myarg")
    assert "\n" not in str(info.value)


def test_io_import_is_light():
    code = "import sys, canocaps.io; print(any(m.split('.')[0] in ('open3d', 'trimesh') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_damaged_files(tmp_path):
    full = tmp_path / "full.ply"
    write_points(full, np.random.default_rng(2).random((100, 3)))
    data = full.read_bytes()
    trunc = tmp_path / "trunc.ply"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CanocapsInputError, match="trunc.ply: truncated PLY: the header declares 100 vertices"):
        read_points(trunc)
    flat = tmp_path / "flat.ply"  # a "mesh" whose only face has zero area
    flat.write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n0 0 0\n0 0 0\n3 0 1 2\n"
    )
    with pytest.raises(CanocapsInputError, match="zero surface area"):
        read_points(flat)
    nanmesh = tmp_path / "nan.obj"
    nanmesh.write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(CanocapsInputError, match="NaN"):
        read_points(nanmesh)
    with pytest.raises(CanocapsInputError, match="NaN"):
        read_mesh(nanmesh)


def test_validate_points_bfloat16_tensor():
    t = torch.tensor([[0.5, 1.0, -2.0], [0.25, 0.0, 4.0]], dtype=torch.bfloat16)
    np.testing.assert_array_equal(validate_points(t), t.float().numpy())
