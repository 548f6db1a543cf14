"""The bundled procedural shapes: determinism, classes, normalisation, pose, cache, dataset contract."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from canocaps.data import build_dataset
from canocaps.data.procedural import CLASS_NAMES, ProceduralShapes, cache_path, load_or_generate, sample_shape
from canocaps.data.procedural.generator import make_mesh, shape_rng
from canocaps.data.procedural.mesh import box, concat, sample_surface, sample_surface_naive, torus
from canocaps.errors import CanocapsInputError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CANOCAPS_CACHE", str(tmp_path / "cache"))


def test_at_least_12_distinct_classes():
    assert len(CLASS_NAMES) >= 12 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_shape_is_deterministic_normalised_and_varies(name):
    a = sample_shape(name, seed=0, split="train", index=3, num_points=512)
    b = sample_shape(name, seed=0, split="train", index=3, num_points=512)
    c = sample_shape(name, seed=0, split="train", index=4, num_points=512)
    d = sample_shape(name, seed=0, split="test", index=3, num_points=512)
    assert a.shape == (512, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-2 and np.abs(a - d).max() > 1e-2
    r = np.linalg.norm(a, axis=1)
    assert r.max() <= 1.0 + 1e-5 and r.max() > 0.85  # in the unit sphere, touching it
    assert np.abs(a.mean(0)).max() < 0.08  # centred (mesh centroid, up to sampling noise)
    # the surface is fully normalised: exact bound over the mesh vertices
    mesh = make_mesh(name, shape_rng(0, "train", name, 3))
    assert np.isclose(np.linalg.norm(mesh.vertices[np.unique(mesh.faces)], axis=1).max(), 1.0)


def test_canonical_pose_conventions():
    """+y up: tall classes are tallest along y; airplanes/cars/boats are longest along z (front +z)."""
    def extents(name):
        e = np.array([np.ptp(sample_shape(name, 0, "val", i, 1024), axis=0) for i in range(6)])
        return e.mean(0)

    for tall in ("bottle", "rocket", "guitar"):
        ex = extents(tall)
        assert ex[1] > ex[0] and ex[1] > ex[2], tall
    for long_ in ("car", "boat"):
        ex = extents(long_)
        assert ex[2] > ex[0] and ex[2] > ex[1], long_
    # airplane: the nose is at +z, so the thin front part (fuselage only) is at +z, wings behind it
    p = np.concatenate([sample_shape("airplane", 0, "val", i, 2048) for i in range(6)])
    front = p[p[:, 2] > np.quantile(p[:, 2], 0.95)]
    assert np.ptp(front[:, 0]) < 0.5 * np.ptp(p[:, 0])


def test_surface_sampler_is_area_weighted_like_the_reference():
    # two boxes of very different areas far apart: the share of points follows the area
    small, big = box((-3, 0, 0), (1, 1, 1)), box((3, 0, 0), (2, 2, 2))
    mesh = concat([small, big, torus(1.0, 0.2).transformed(t=(0, 5, 0))])
    rng = np.random.default_rng(0)
    fast = sample_surface(mesh, 20000, rng)
    ref = sample_surface_naive(mesh, 3000, np.random.default_rng(1))
    areas = np.array([small.face_areas().sum(), big.face_areas().sum(), 0.0])
    areas[2] = mesh.face_areas().sum() - areas[:2].sum()
    for pts, tol in ((fast, 0.015), (ref, 0.03)):
        share = np.array([(pts[:, 0] < -2).mean(), (pts[:, 0] > 1.5).mean(), (pts[:, 1] > 3).mean()])
        np.testing.assert_allclose(share, areas / areas.sum(), atol=tol)
    # the points lie on the box surfaces: one coordinate at +-half size
    s = fast[fast[:, 0] > 1.5] - np.array([3, 0, 0])
    assert np.allclose(np.abs(s).max(1), 1.0)


def test_tiny_dataset_contract_and_cache(tmp_path):
    ds = ProceduralShapes("train", num_points=256, per_class=2, progress=False)
    assert len(ds) == 2 * len(CLASS_NAMES) and ds.num_classes == len(CLASS_NAMES)
    assert sorted(set(ds.labels.tolist())) == list(range(len(CLASS_NAMES)))
    item = ds[5]
    assert set(item) == {"points", "label", "index"}
    assert item["points"].shape == (256, 3) and item["points"].dtype == torch.float32
    assert item["label"].dtype == torch.long and item["label"].ndim == 0 and item["index"] == 5
    assert item["points"].norm(dim=1).max() <= 1.0 + 1e-5
    path = cache_path("train", 2)
    assert path.is_file() and path.parent == tmp_path / "cache" / "procedural"
    assert not list(path.parent.glob(".*"))  # no temporary file left behind
    with h5py.File(path) as f:
        assert f["points"].shape == (len(ds), 2048, 3) and f["points"].dtype == np.float16
        f_points = np.asarray(f["points"])
    # the cache is read back, not regenerated: identical content, and a prefix of a bigger set
    again, _ = load_or_generate("train", 2)
    np.testing.assert_array_equal(again, f_points)
    np.testing.assert_allclose(f_points[0].astype(np.float32), sample_shape(CLASS_NAMES[0], 0, "train", 0), atol=1e-3)


def test_corrupt_cache_is_regenerated():
    path = cache_path("val", 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an h5 file")
    pts, labels = load_or_generate("val", 1, progress=False)
    assert pts.shape == (len(CLASS_NAMES), 2048, 3)
    with h5py.File(path) as f:
        assert f["points"].shape == pts.shape


def test_resample_views_are_disjoint_samples_and_seeded_selection():
    ds = build_dataset("procedural", "test", num_points=512, per_class=1, resample_views=True, seed=3,
                       progress=False)
    a, b = ds[0], ds[0]
    assert torch.equal(a["points"], b["points"]) and torch.equal(a["points_b"], b["points_b"])
    pa, pb = a["points"], a["points_b"]
    d = torch.cdist(pa, pb, compute_mode="donot_use_mm_for_euclid_dist")
    assert d.min() > 0  # 2048 stored points, two disjoint halves of 512
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["points"], pa)
    first = build_dataset("procedural", "test", num_points=100, per_class=1, sampling="first", progress=False)
    np.testing.assert_array_equal(first[0]["points"].numpy(), first[0]["points"].numpy())
    unseeded = build_dataset("procedural", "test", num_points=100, per_class=1, progress=False)
    torch.manual_seed(0)
    x = unseeded[0]["points"]
    torch.manual_seed(0)
    assert torch.equal(unseeded[0]["points"], x)


def test_class_subset_and_bad_arguments():
    ds = ProceduralShapes("val", 128, per_class=1, classes=["chair", "mug"], progress=False)
    assert [CLASS_NAMES[i] for i in ds.labels] == ["chair", "mug"]
    with pytest.raises(CanocapsInputError, match="unknown procedural class"):
        ProceduralShapes("val", 128, per_class=1, classes=["dragon"], progress=False)
    with pytest.raises(CanocapsInputError, match="split"):
        ProceduralShapes("holdout", 128, per_class=1)
    with pytest.raises(CanocapsInputError, match="num_points"):
        ProceduralShapes("val", 0, per_class=1, progress=False)
    with pytest.raises(CanocapsInputError, match="unknown dataset"):
        build_dataset("shapenet55", "train")


def test_dataloader_batches_feed_the_pair_sampler():
    from torch.utils.data import DataLoader

    from canocaps.data import SE3PairSampler
    from canocaps.geometry import apply_transform

    ds = build_dataset("procedural", "val", num_points=128, per_class=1, resample_views=True, progress=False)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["points"].shape == batch["points_b"].shape == (4, 128, 3)
    assert batch["label"].tolist() == [0, 1, 2, 3] and batch["index"].tolist() == [0, 1, 2, 3]
    pb = SE3PairSampler()(batch["points"], batch["points_b"], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(apply_transform(pb.T1, batch["points"]), pb.view1, atol=1e-5)
