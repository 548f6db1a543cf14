"""Headless pictures and Open3D geometries."""
from __future__ import annotations

import numpy as np
import pytest

from canocaps import viz
from canocaps.errors import CanocapsInputError, OutputExistsError


def read_png(path):
    import matplotlib.image as mpimg

    return mpimg.imread(str(path))


def cloud(n=400, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3))
    return (pts / np.linalg.norm(pts, axis=1, keepdims=True) * [1.0, 0.5, 0.3]).astype(np.float32)


def test_registration_png_has_size_content_and_no_clobber(tmp_path):
    a = cloud()
    b = a + [0.5, 0.0, 0.0]
    out = tmp_path / "reg.png"
    viz.save_registration_png(a, b, b, out)
    img = read_png(out)
    assert img.shape[:2] == (320, 640)           # 2 panels x 3.2 in x 100 dpi
    assert img[..., :3].std() > 0.02              # not blank
    with pytest.raises(OutputExistsError):
        viz.save_registration_png(a, b, b, out)
    viz.save_registration_png(a, b, a, out, force=True)
    assert not list(tmp_path.glob(".reg.png*")), "temporary file left behind"


def test_capsule_picture_shows_capsule_colours(tmp_path):
    pts = cloud(600)
    assignment = (pts[:, 0] > 0).astype(int) + 2 * (pts[:, 1] > 0)
    keypoints = np.stack([pts[assignment == k].mean(0) for k in range(4)])
    out = viz.save_capsules_png(pts, assignment, keypoints, tmp_path / "caps.png")
    img = read_png(out)[..., :3].reshape(-1, 3)
    palette = viz.colors.palette_for(4)
    for color in palette:  # every capsule colour is actually drawn
        assert (np.abs(img - color).max(axis=1) < 0.08).sum() > 20


def test_blank_panel_differs_from_drawn_panel(tmp_path):
    empty = viz.render_panels([viz.Panel("empty", [])], tmp_path / "e.png")
    drawn = viz.render_panels([viz.cloud_panel(cloud(), "cloud")], tmp_path / "d.png")
    assert read_png(drawn)[..., :3].std() > read_png(empty)[..., :3].std() + 0.01


def test_other_pictures_write(tmp_path):
    pts = cloud()
    viz.save_canonical_png(pts, pts[:, [2, 1, 0]], tmp_path / "c.png")
    viz.save_reconstruction_png(pts, pts + 0.01, tmp_path / "r.png")
    viz.save_stability_png([pts, pts * 0.9], [pts, pts], tmp_path / "s.png", baseline=[pts, -pts])
    assert read_png(tmp_path / "r.png").shape[:2] == (320, 960)
    assert read_png(tmp_path / "s.png").shape[1] == 960


def test_open3d_geometries():
    pts = cloud(100)
    assignment = np.arange(100) % 5
    keypoints = np.stack([pts[assignment == k].mean(0) for k in range(5)])
    from canocaps.viz.geometries import capsule_geometries, registration_geometries

    geoms = capsule_geometries(pts, assignment, keypoints)
    assert len(geoms) == 1 + 5
    colors = np.asarray(geoms[0].colors)
    np.testing.assert_allclose(colors[7], viz.colors.palette_for(5)[2])
    reg = registration_geometries(pts, pts, pts, spacing=3.0)
    np.testing.assert_allclose(np.asarray(reg[2].points), pts + [3.0, 0, 0], atol=1e-6)


def test_show_without_display_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    pts = cloud(50)
    assert viz.show_registration(pts, pts, pts) is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no display" in err[0]


def test_training_curves_from_trainer_run(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    from canocaps.train import Trainer, TrainConfig

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3))

        def training_step(self, batch, step):
            (x,) = batch
            return {"loss": ((x - self.w) ** 2).mean(), "aux": self.w.abs().sum()}

    data = TensorDataset(torch.randn(32, 3) + 1)
    Trainer(TrainConfig(epochs=3, batch_size=8, progress=False, log_every=1), out_dir=tmp_path / "run").fit(
        Tiny(), data, data)
    out = viz.plot_training_curves(tmp_path / "run", tmp_path / "curves.png")
    assert read_png(out)[..., :3].std() > 0.02
    with pytest.raises(CanocapsInputError, match="metrics.csv"):
        viz.plot_training_curves(tmp_path / "nothing", tmp_path / "x.png")

