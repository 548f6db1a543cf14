"""The bundled small data: fixed test transforms and the demo pair (and the tools that write them)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from canocaps.data import load_test_transforms
from canocaps.data.test_transforms import data_dir, make_test_transforms, write_test_transforms
from canocaps.errors import CanocapsInputError, OutputExistsError
from canocaps.geometry import apply_transform, compose_transforms, invert_transform
from canocaps.io import read_points
from tool_scripts import import_tool

REPO = Path(__file__).resolve().parents[1]


def test_bundled_test_transforms_match_the_documented_command():
    tt = load_test_transforms()
    assert len(tt) == 1000 and tt.T1.shape == tt.T2.shape == (1000, 4, 4) and tt.T1.dtype == torch.float32
    assert tt.attrs["seed"] == 0 and tt.attrs["count"] == 1000 and tt.attrs["max_translation"] == pytest.approx(0.2)
    T1, T2 = make_test_transforms(1000, 0)
    np.testing.assert_array_equal(tt.T1.numpy(), T1)
    np.testing.assert_array_equal(tt.T2.numpy(), T2)
    assert np.abs(tt.T1[:, :3, 3].numpy()).max() <= 0.2
    R = tt.T1[:, :3, :3].double()
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(1000, 3, 3), atol=1e-5)
    assert torch.allclose(compose_transforms(tt.T12.double(), tt.T1.double()), tt.T2.double(), atol=1e-5)
    a, b = tt.for_items([0, 1000, 1001])
    assert torch.equal(a[0], a[1]) and torch.equal(b[2], tt.T2[1])


def test_test_transforms_are_deterministic_and_seed_dependent(tmp_path):
    a = make_test_transforms(20, 5)
    b = make_test_transforms(20, 5)
    c = make_test_transforms(20, 6)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[0] - c[0]).max() > 0.1
    assert np.abs(a[0] - a[1]).max() > 0.1  # T1 and T2 are different draws


def test_write_and_load_roundtrip_and_bad_files(tmp_path, monkeypatch):
    p = write_test_transforms(tmp_path / "t.h5", count=7, seed=1)
    tt = load_test_transforms(p)
    assert len(tt) == 7
    with pytest.raises(OutputExistsError):
        write_test_transforms(p, count=7, seed=1)
    monkeypatch.setenv("CANOCAPS_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(CanocapsInputError, match="make_test_transforms"):
        load_test_transforms()  # no test_transforms.h5 in that folder
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("T1", data=np.zeros((3, 4, 4), np.float32))
    with pytest.raises(CanocapsInputError, match="missing dataset"):
        load_test_transforms(bad)
    with h5py.File(bad, "w") as f:
        f.create_dataset("T1", data=np.zeros((3, 4, 4), np.float32))
        f.create_dataset("T2", data=np.zeros((3, 4, 4), np.float32))
    with pytest.raises(CanocapsInputError, match="not rigid"):
        load_test_transforms(bad)
    with h5py.File(bad, "w") as f:
        f.create_dataset("T1", data=np.zeros((3, 3, 3), np.float32))
        f.create_dataset("T2", data=np.zeros((3, 3, 3), np.float32))
    with pytest.raises(CanocapsInputError, match=r"shape \(count, 4, 4\)"):
        load_test_transforms(bad)


def test_demo_pair_is_a_known_rigid_motion_of_two_independent_samples():
    demo = REPO / "data" / "demo"
    a = read_points(demo / "a.ply")
    b = read_points(demo / "b.ply")
    T = np.loadtxt(demo / "gt_transform.txt")
    assert a.shape == b.shape == (2048, 3) and T.shape == (4, 4)
    np.testing.assert_allclose(T[3], [0, 0, 0, 1])
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6)
    ta = apply_transform(torch.from_numpy(T), torch.from_numpy(a).double())
    bb = torch.from_numpy(b).double()
    d_gt = torch.cdist(ta, bb, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
    d_raw = torch.cdist(torch.from_numpy(a).double(), bb, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
    assert d_gt.min() > 1e-6  # independent samples: no point of b is a moved point of a
    assert d_gt.mean() < 0.05 and d_raw.mean() > 3 * d_gt.mean()  # but the same surface once T is applied
    assert np.linalg.norm(a, axis=1).max() <= 1 + 1e-5
    # the files are what the tool writes today (deterministic)
    a2, b2, T2 = import_tool("make_demo_pair").make_pair()
    np.testing.assert_allclose(a2, a, atol=1e-6)
    np.testing.assert_allclose(b2, b, atol=1e-6)
    np.testing.assert_allclose(T2, T, atol=1e-8)
    assert torch.allclose(invert_transform(invert_transform(torch.from_numpy(T))), torch.from_numpy(T))


def test_tools_refuse_to_overwrite(tmp_path, capsys):
    tool = import_tool("make_test_transforms")
    out = tmp_path / "t.h5"
    argv = ["--count", "3", "-o", str(out)]
    assert tool.main(argv) == 0 and len(load_test_transforms(out)) == 3
    assert tool.main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_shipped_files_are_package_data_found_from_anywhere(tmp_path):
    """The weights, test transforms and demo pair come with the package itself: a copy of
    ``canocaps/`` alone (no checkout around it), run from another folder, finds them all."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import canocaps

    site = tmp_path / "site"
    shutil.copytree(Path(canocaps.__file__).parent, site / "canocaps",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = ("import canocaps, sys\n"
            "from canocaps.pretrained import resolve_weights\n"
            "from canocaps.data import load_test_transforms\n"
            "from canocaps.commands.demo import demo_dir\n"
            "root = canocaps.__file__.rsplit('/', 1)[0]\n"
            "w = resolve_weights()\n"
            "assert str(w).startswith(root), w\n"
            "assert len(load_test_transforms()) == 1000\n"
            "assert str(demo_dir()).startswith(root) and (demo_dir() / 'a.ply').is_file()\n"
            "print('ok', w)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CANOCAPS_WEIGHTS_DIR", "CANOCAPS_DATA_DIR")}
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-2000:]


def test_pyproject_ships_the_resources():
    """Every file under canocaps/resources matches a package-data pattern of pyproject.toml."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["canocaps"]
    files = [p.relative_to(root / "canocaps").as_posix() for p in (root / "canocaps" / "resources").rglob("*")
             if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files
