"""Real-format loaders on small files written here in the exact on-disk layouts."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import trimesh

from canocaps.data import build_dataset
from canocaps.data.base import normalize_unit_sphere, select_indices
from canocaps.data.convert import ConvertedH5, convert_meshes
from canocaps.data.shapenet import CAPSULES_CATEGORIES, SHAPENET_SYNSETS, resolve_category
from canocaps.errors import CanocapsInputError, OutputExistsError
from canocaps.io import write_points


def _cloud(rng, m=300, scale=3.0, offset=(5.0, -2.0, 1.0)):
    return (rng.normal(size=(m, 3)) * scale + np.asarray(offset)).astype(np.float32)


def _write_capsules_file(path, clouds):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        pcd = f.create_group("pcd")
        pts, nrm = pcd.create_group("point"), pcd.create_group("normal")
        for i, c in enumerate(clouds):
            pts[str(i)] = c
            nrm[str(i)] = np.tile([0.0, 0.0, 1.0], (len(c), 1)).astype(np.float32)


@pytest.fixture
def capsules_root(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "data_dump" / "ShapeNetAtlasNetH5"
    counts = {"train": {"airplane": 3, "chair": 2, "car": 4, "zebra": 1},
              "valid": {"airplane": 1, "chair": 2, "car": 1}}
    clouds = {}
    for split, cats in counts.items():
        for cat, n in cats.items():
            clouds[split, cat] = [_cloud(rng, 300 + 7 * i) for i in range(n)]
            _write_capsules_file(base / split / f"{cat}.h5", clouds[split, cat])
    return tmp_path / "data_dump", clouds


def test_shapenet_capsules_layout(capsules_root):
    root, clouds = capsules_root
    ds = build_dataset("shapenet", "train", num_points=128, root=root, sampling="first", normalize=False)
    # official label order (cat_id table: car 2, chair 4, plane 9), any spelling; unknown files last
    assert ds.class_names == ["car", "chair", "airplane", "zebra"]
    assert len(ds) == 10
    labels = [int(ds[i]["label"]) for i in range(len(ds))]
    assert labels == [0, 0, 0, 0, 1, 1, 2, 2, 2, 3]
    np.testing.assert_array_equal(ds[4]["points"].numpy(), clouds["train", "chair"][0][:128])
    # test -> valid (official), normalised into the unit sphere by default
    test = build_dataset("shapenet", "test", num_points=64, root=root / "ShapeNetAtlasNetH5", resample_views=True)
    assert len(test) == 4
    item = test[1]
    assert item["points"].shape == item["points_b"].shape == (64, 3)
    assert item["points"].norm(dim=1).max() <= 1 + 1e-5
    # the normalisation uses the whole stored cloud, so both views share one frame
    full = normalize_unit_sphere(clouds["valid", "chair"][0])
    for key in ("points", "points_b"):
        d = torch.cdist(item[key].double(), torch.from_numpy(full).double(), compute_mode="donot_use_mm_for_euclid_dist")
        assert d.min(1).values.max() < 1e-6


def test_shapenet_capsules_categories_and_cat_file(capsules_root):
    root, _ = capsules_root
    ds = build_dataset("shapenet", "train", 32, root=root, categories=["plane"])  # official name of "airplane"
    assert ds.class_names == ["airplane"] and len(ds) == 3 and int(ds[2]["label"]) == 0
    ds = build_dataset("shapenet", "train", 32, root=root, categories=["03001627", "02691156"])  # synsets
    assert ds.class_names == ["chair", "airplane"] and len(ds) == 5
    (root / "ShapeNetAtlasNetH5" / "train_cat.txt").write_text("airplane.h5\ncar.h5\n")
    ds = build_dataset("shapenet", "train", 32, root=root)
    assert ds.class_names == ["airplane", "car"] and len(ds) == 7
    import pickle  # DataLoader workers get a copy without open h5 handles

    fixed = build_dataset("shapenet", "train", 32, root=root, sampling="first")
    fixed[0]  # opens a file handle
    clone = pickle.loads(pickle.dumps(fixed))
    assert torch.equal(clone[3]["points"], fixed[3]["points"])
    with pytest.raises(CanocapsInputError, match="unknown category 'dragon'"):
        build_dataset("shapenet", "train", 32, root=root, categories=["dragon"])


def test_shapenet_capsules_bad_files(tmp_path):
    base = tmp_path / "ShapeNetAtlasNetH5"
    (base / "train").mkdir(parents=True)
    (base / "train" / "chair.h5").write_bytes(b"")
    with pytest.raises(CanocapsInputError, match="empty file"):
        build_dataset("shapenet", "train", 32, root=tmp_path)
    with h5py.File(base / "train" / "chair.h5", "w") as f:
        f.create_group("points")
    with pytest.raises(CanocapsInputError, match="missing group 'pcd/point'"):
        build_dataset("shapenet", "train", 32, root=tmp_path)
    _write_capsules_file(base / "train" / "chair.h5", [np.zeros((10, 2), np.float32)])
    ds = build_dataset("shapenet", "train", 32, root=tmp_path)
    with pytest.raises(CanocapsInputError, match=r"pcd/point/0 must have shape \(M, 3\)"):
        ds[0]
    with pytest.raises(CanocapsInputError, match="no train/ or valid/"):
        build_dataset("shapenet", "train", 32, root=tmp_path / "train")


def _write_flat(path, data, label, label_key="label"):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data)
        if label is not None:
            f.create_dataset(label_key, data=label)


def test_shapenet_flat_h5_release(tmp_path):
    rng = np.random.default_rng(1)
    _write_flat(tmp_path / "train0.h5", rng.normal(size=(5, 2048, 3)).astype(np.float32), np.arange(5) % 3)
    _write_flat(tmp_path / "train1.h5", rng.normal(size=(2, 2048, 3)).astype(np.float32), np.array([[1], [2]]))
    _write_flat(tmp_path / "test0.h5", rng.normal(size=(3, 2048, 3)).astype(np.float32), np.array([0, 1, 2]))
    ds = build_dataset("shapenet_h5", "train", 1024, root=tmp_path)
    assert len(ds) == 7 and ds.class_names == ["class_0", "class_1", "class_2"]
    assert [int(ds[i]["label"]) for i in range(7)] == [0, 1, 2, 0, 1, 1, 2]
    assert len(build_dataset("shapenet_h5", "test", 1024, root=tmp_path)) == 3
    with pytest.raises(CanocapsInputError, match=r"no \*val\*.h5"):
        build_dataset("shapenet_h5", "val", 1024, root=tmp_path)


@pytest.fixture
def modelnet_root(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "modelnet40_ply_hdf5_2048"
    root.mkdir()
    for name, s in (("ply_data_train0.h5", 4), ("ply_data_train1.h5", 3), ("ply_data_test0.h5", 2)):
        _write_flat(root / name, rng.normal(size=(s, 2048, 3)).astype(np.float32),
                    rng.integers(0, 40, size=(s, 1)).astype(np.uint8))
    return root


def test_modelnet40_h5(modelnet_root):
    ds = build_dataset("modelnet40", "train", 1024, root=modelnet_root)
    assert len(ds) == 7 and ds.num_classes == 40 and ds.class_names[0] == "airplane"
    with h5py.File(modelnet_root / "ply_data_train1.h5") as f:
        expected = int(f["label"][0, 0])
        raw = np.asarray(f["data"][0])
    item = ds[4]
    assert int(item["label"]) == expected and item["points"].shape == (1024, 3)
    first = build_dataset("modelnet", "train", 1024, root=modelnet_root, sampling="first")
    np.testing.assert_allclose(first[4]["points"].numpy(), normalize_unit_sphere(raw)[:1024], atol=1e-6)
    (modelnet_root / "shape_names.txt").write_text("\n".join(f"c{i}" for i in range(40)) + "\n")
    assert build_dataset("modelnet40", "test", 512, root=modelnet_root).class_names[39] == "c39"
    with pytest.raises(CanocapsInputError, match="no validation split"):
        build_dataset("modelnet40", "val", 512, root=modelnet_root)


def test_flat_h5_bad_data(tmp_path):
    root = tmp_path / "mn"
    root.mkdir()
    _write_flat(root / "ply_data_train0.h5", np.zeros((2, 16, 3), np.float32), None)
    with pytest.raises(CanocapsInputError, match="missing dataset 'label'"):
        build_dataset("modelnet40", "train", 8, root=root)
    _write_flat(root / "ply_data_train0.h5", np.zeros((2, 16), np.float32), np.zeros(2))
    with pytest.raises(CanocapsInputError, match=r"'data' must have shape \(S, N, 3\)"):
        build_dataset("modelnet40", "train", 8, root=root)
    _write_flat(root / "ply_data_train0.h5", np.zeros((2, 16, 3), np.float32), np.zeros(3))
    with pytest.raises(CanocapsInputError, match="'label' must have shape"):
        build_dataset("modelnet40", "train", 8, root=root)
    (root / "ply_data_train0.h5").write_bytes(b"")
    with pytest.raises(CanocapsInputError, match="empty file"):
        build_dataset("modelnet40", "train", 8, root=root)
    (root / "ply_data_train0.h5").write_bytes(b"garbage" * 10)
    with pytest.raises(CanocapsInputError, match="not a readable h5"):
        build_dataset("modelnet40", "train", 8, root=root)
    with pytest.raises(CanocapsInputError, match="needs root"):
        build_dataset("modelnet40", "train", 8)


@pytest.fixture
def shapenetcore_root(tmp_path):
    root = tmp_path / "ShapeNetCore.v2"
    for s, syn in enumerate(("02691156", "03001627")):
        for k in range(5):
            d = root / syn / f"model{k:02d}{'abcdef'[k]}" / "models"
            d.mkdir(parents=True)
            mesh = trimesh.creation.box(extents=(1 + k, 1 + s, 0.5)) if s == 0 else trimesh.creation.icosphere(1, 1 + k)
            mesh.export(d / "model_normalized.obj")
    return root


def test_shapenetcore_meshes(shapenetcore_root):
    train = build_dataset("shapenetcore", "train", 256, root=shapenetcore_root)
    valid = build_dataset("shapenetcore", "val", 256, root=shapenetcore_root)
    assert train.class_names == ["airplane", "chair"] == [SHAPENET_SYNSETS[s] for s in train.synsets]
    assert len(train) == 8 and len(valid) == 2  # the official 80/20 rule per category over sorted ids
    assert {p.parts[-3] for p in valid.paths} == {"model04e"}
    item = train[1]
    assert item["points"].shape == (256, 3) and int(item["label"]) == 0
    # points lie on the box surface (after normalisation, the box with extents (2, 1, 0.5))
    p = item["points"].numpy()
    half = np.array([2, 1, 0.5]) / 2 / np.linalg.norm([1, 0.5, 0.25])
    assert np.allclose(np.max(np.abs(p) / half, axis=1), 1.0, atol=0.05)
    chairs = build_dataset("shapenetcore", "train", 64, root=shapenetcore_root, categories=["chair"])
    assert len(chairs) == 4 and chairs.class_names == ["chair"]


def test_convert_meshes_resumes_and_reads_back(shapenetcore_root, tmp_path):
    dst = tmp_path / "out" / "core.h5"
    partial = convert_meshes(shapenetcore_root, dst, 300, chunk=3, limit=4, progress=False)
    assert partial.name == "core.h5.partial" and not dst.exists()
    with h5py.File(partial) as f:
        assert int(f.attrs["done"]) == 4
        first_four = np.asarray(f["data"][:4])
    out = convert_meshes(shapenetcore_root, dst, 300, chunk=3, progress=False)  # continues
    assert out == dst and dst.is_file() and not partial.exists()
    with h5py.File(dst) as f:
        assert f["data"].shape == (10, 300, 3) and int(f.attrs["done"]) == 10
        np.testing.assert_array_equal(np.asarray(f["data"][:4]), first_four)
        assert np.abs(np.asarray(f["data"])).sum(axis=(1, 2)).min() > 0  # every row filled
        assert json.loads(f.attrs["class_names"]) == ["airplane", "chair"]
    with pytest.raises(OutputExistsError):
        convert_meshes(shapenetcore_root, dst, 300, progress=False)
    ds = build_dataset("converted", "train", 128, root=dst)
    assert len(ds) == 8 and ds.model_ids[:4] == ["model00a", "model01b", "model02c", "model03d"]
    assert len(ConvertedH5(dst, "test", 128)) == 2 and len(ConvertedH5(dst, "all", 128, categories=["chair"])) == 5


def test_convert_marks_unreadable_meshes(tmp_path):
    src = tmp_path / "src"
    (src / "cube").mkdir(parents=True)
    trimesh.creation.box().export(src / "cube" / "a.obj")
    (src / "cube" / "b.obj").write_text("this is not a mesh\n")
    dst = convert_meshes(src, tmp_path / "x.h5", 64, progress=False)
    with h5py.File(dst) as f:
        assert f["label"][:].tolist() == [0, -1] and json.loads(f.attrs["failed"]) == ["cube/b"]
    assert len(ConvertedH5(dst, "all", 32)) == 1
    with pytest.raises(CanocapsInputError):
        convert_meshes(src, tmp_path / "y.h5", 64, progress=False, skip_errors=False)


def test_folder_of_files(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "scans"
    (root / "mugs").mkdir(parents=True)
    (root / "planes" / "deep").mkdir(parents=True)
    write_points(root / "mugs" / "a.ply", _cloud(rng, 500))
    np.savetxt(root / "mugs" / "b.xyz", _cloud(rng, 400))
    np.save(root / "planes" / "deep" / "c.npy", _cloud(rng, 600))
    trimesh.creation.box().export(root / "planes" / "d.obj")
    (root / "planes" / "notes.md").write_text("ignored")
    ds = build_dataset("folder", None, 200, root=root)
    assert ds.class_names == ["mugs", "planes"] and len(ds) == 4
    assert [int(ds[i]["label"]) for i in range(4)] == [0, 0, 1, 1]
    assert all(ds[i]["points"].shape == (200, 3) for i in range(4))
    flat = tmp_path / "flat"
    flat.mkdir()
    write_points(flat / "x.ply", _cloud(rng, 50))
    fds = build_dataset("folder", None, 100, root=flat, resample_views=True)  # fewer points than N: repeats
    assert fds.class_names == ["flat"] and fds[0]["points"].shape == (100, 3) and "points_b" in fds[0]
    (tmp_path / "split" / "test" / "k").mkdir(parents=True)
    write_points(tmp_path / "split" / "test" / "k" / "y.ply", _cloud(rng, 50))
    assert len(build_dataset("folder", "test", 10, root=tmp_path / "split")) == 1
    with pytest.raises(CanocapsInputError, match="no 'train' sub-folder"):
        build_dataset("folder", "train", 10, root=tmp_path / "split")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CanocapsInputError, match="no readable"):
        build_dataset("folder", None, 10, root=empty)
    (flat / "y.xyz").write_text("")
    with pytest.raises(CanocapsInputError):
        build_dataset("folder", None, 10, root=flat)[1]


def test_select_indices_rules():
    rng = np.random.default_rng(0)
    a, b = select_indices(100, 40, "random", rng, views=2)
    assert len(set(a) | set(b)) == 80  # disjoint when M >= 2N
    a, b = select_indices(50, 40, "random", rng, views=2)
    assert len(set(a)) == 40 and len(set(b)) == 40  # without replacement within a view
    (c,) = select_indices(30, 40, "random", rng)
    assert set(c) == set(range(30)) and len(c) == 40  # all points once, then repeats
    f1, f2 = select_indices(100, 40, "first", None, views=2)
    assert f1.tolist() == list(range(40)) and f2.tolist() == list(range(40, 80))
    with pytest.raises(CanocapsInputError):
        normalize_unit_sphere(np.ones((5, 3)))
    with pytest.raises(CanocapsInputError):
        normalize_unit_sphere(np.array([[0, 0, np.nan]]))


def test_category_table():
    assert len(SHAPENET_SYNSETS) == 55 and len(CAPSULES_CATEGORIES) == 13
    assert all(s in SHAPENET_SYNSETS for s in CAPSULES_CATEGORIES.values())
    assert resolve_category("Airplane", list(CAPSULES_CATEGORIES)) == "plane"
    assert resolve_category("sofa", list(CAPSULES_CATEGORIES)) == "couch"
    assert resolve_category("04530566", list(CAPSULES_CATEGORIES)) == "watercraft"


def test_open_dataset_detects_layouts_without_a_prefix(tmp_path, modelnet_root, capsules_root, shapenetcore_root):
    """``--data PATH``: the loaders' layouts are recognised from the path alone (small files in the real formats)."""
    from canocaps.data import open_dataset
    from canocaps.data.layout import detect_layout

    assert detect_layout(modelnet_root) == "modelnet40"
    ds = open_dataset(str(modelnet_root), "train", 256)
    assert type(ds).__name__ == "ModelNet40H5" and len(ds) == 7 and ds[0]["points"].shape == (256, 3)
    assert len(open_dataset(str(modelnet_root), "test", 256)) == 2
    root, _ = capsules_root
    assert detect_layout(root) == detect_layout(root / "ShapeNetAtlasNetH5") == "shapenet"
    assert type(open_dataset(str(root), "train", 128)).__name__ == "ShapeNetCapsulesH5"
    assert detect_layout(shapenetcore_root) == "shapenetcore"
    assert len(open_dataset(str(shapenetcore_root), "val", 64)) == 2
    flat = tmp_path / "flat_release"
    flat.mkdir()
    _write_flat(flat / "train0.h5", np.random.default_rng(4).normal(size=(3, 64, 3)).astype(np.float32), np.arange(3))
    assert detect_layout(flat) == "shapenet_h5" and len(open_dataset(str(flat), "train", 32)) == 3
    scans = tmp_path / "scans" / "mugs"
    scans.mkdir(parents=True)
    write_points(scans / "a.ply", _cloud(np.random.default_rng(5), 80))
    assert detect_layout(tmp_path / "scans") == "folder"
    from canocaps.data.realmesh import bundled_path

    assert detect_layout(bundled_path()) == "realmesh"
    assert type(open_dataset(str(bundled_path()), "test", 64)).__name__ == "RealMeshes"
    with pytest.raises(CanocapsInputError, match="no such file"):
        detect_layout(tmp_path / "nowhere")
