"""canocaps.extras.trajectories models: helpers, training through canocaps.train.Trainer, sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories.boids import BoidsConfig, simulate
from canocaps.extras.trajectories.datasets import TrajectoryDataset
from canocaps.extras.trajectories.labeling import get_labeling_function
from canocaps.extras.trajectories.metrics import evaluate_bound
from canocaps.extras.trajectories.models import build_model
from canocaps.extras.trajectories.models.common import (
    GroupGRUCell,
    GroupLinear,
    gaussian_kl,
    gaussian_nll,
    gaussian_nll_reference,
)
from canocaps.train import Callback, TrainConfig, Trainer

T_SHORT = 12
SMALL = dict(rnn_dim=24, h_dim=24)


def _hp(name: str) -> dict:
    hp = dict(n_agents=8, **SMALL)
    if name != "rnn_gauss":
        hp["z_dim"] = 4
    if name == "macro_vrnn":
        hp.update(n_macro=2, macro_rnn_dim=16)
    return hp


@pytest.fixture(scope="module")
def tiny():
    x, y = simulate(96, seed=7, config=BoidsConfig(seq_len=T_SHORT))
    m = get_labeling_function("flock")(x)
    return TrajectoryDataset(x[:64], m[:64], y[:64]), TrajectoryDataset(x[64:], m[64:], y[64:])


# --- helpers ------------------------------------------------------------------------------------------


def test_gaussian_helpers_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, m1, m2 = (torch.randn(5, 3, generator=g) for _ in range(3))
    s1, s2 = (torch.rand(5, 3, generator=g) + 0.1 for _ in range(2))
    torch.testing.assert_close(gaussian_nll(x, m1, s1), gaussian_nll_reference(x, m1, s1))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, s1), torch.distributions.Normal(m2, s2))
    torch.testing.assert_close(gaussian_kl(m1, s1, m2, s2), ref)
    assert float(gaussian_kl(m1, s1, m1, s1).abs().max()) < 1e-6


@pytest.mark.parametrize("groups", [1, 5])
def test_group_linear_matches_per_group_loop(groups):
    torch.manual_seed(0)
    layer = GroupLinear(groups, 7, 3)
    x = torch.randn(4, 5, 7)
    torch.testing.assert_close(layer(x), layer.forward_reference(x))


def test_group_gru_cell_matches_torch_gru_cell():
    torch.manual_seed(0)
    ref = torch.nn.GRUCell(6, 4)
    cell = GroupGRUCell(1, 6, 4)
    with torch.no_grad():
        cell.ih.weight[0] = ref.weight_ih  # GroupedLinear: weight (G, out, in), bias (G, out, 1)
        cell.ih.bias[0, :, 0] = ref.bias_ih
        cell.hh.weight[0] = ref.weight_hh
        cell.hh.bias[0, :, 0] = ref.bias_hh
    x, h = torch.randn(3, 2, 6), torch.randn(3, 2, 4)
    torch.testing.assert_close(cell(x, h), ref(x.reshape(6, 6), h.reshape(6, 4)).reshape(3, 2, 4))


# --- training through the shared Trainer -----------------------------------------------------------------


class _OptimizerIds(Callback):
    def __init__(self):
        self.ids = set()

    def on_step_end(self, trainer, module, outputs):
        self.ids.add(id(trainer.optimizer))


@pytest.mark.parametrize("name", ["rnn_gauss", "vrnn_single", "vrnn_indep", "macro_vrnn"])
def test_loss_decreases_through_trainer(name, tiny, tmp_path):
    train, val = tiny
    torch.manual_seed(0)
    model = build_model(name, **_hp(name))
    before = evaluate_bound(model, val, seed=1)
    ids = _OptimizerIds()
    cfg = TrainConfig(epochs=6, batch_size=8, lr=1e-3, grad_clip_norm=10.0, progress=False, monitor="val/loss",
                      device="cpu", log_every=1)
    result = Trainer(cfg, callbacks=[ids], out_dir=tmp_path).fit(model, train, val)
    after = evaluate_bound(model, val, seed=1)
    assert result.global_step == 6 * 8
    assert len(ids.ids) == 1  # one optimizer for the whole run
    assert (tmp_path / "best.pt").is_file() and result.best_score is not None
    assert after["loss"] < before["loss"] - 40.0, (before["loss"], after["loss"])
    if name == "macro_vrnn":  # the macro-intent policy is trained too
        assert after["ce"] < 0.75 * before["ce"], (before["ce"], after["ce"])
        assert after["loss"] == pytest.approx(after["nll"] + after["kl"] + after["ce"], rel=1e-5)
    val_metrics = [h for h in result.history if "val/loss" in h]
    assert val_metrics and all("val/elbo" in h for h in val_metrics)
    assert result.best_score == pytest.approx(min(h["val/loss"] for h in val_metrics))


# --- sampling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn_gauss", "vrnn_single", "vrnn_indep", "macro_vrnn"])
def test_sampling_shapes_prefix_and_determinism(name, tiny):
    train, _ = tiny
    torch.manual_seed(0)
    model = build_model(name, **_hp(name)).eval()
    prefix = train.x[:3, :4]
    a = model.sample(prefix, 20, generator=torch.Generator().manual_seed(5))
    b = model.sample(prefix, 20, generator=torch.Generator().manual_seed(5))
    assert a["x"].shape == (3, 20, 16) and torch.isfinite(a["x"]).all()
    torch.testing.assert_close(a["x"][:, :4], prefix)
    torch.testing.assert_close(a["x"], b["x"])
    c = model.sample(prefix, 20, generator=torch.Generator().manual_seed(6))
    assert (a["x"][:, 4:] - c["x"][:, 4:]).abs().max() > 0
    if name == "macro_vrnn":
        assert a["macro"].shape == (3, 20, 8) and int(a["macro"].max()) < 2 and int(a["macro"].min()) >= 0
        fixed = model.sample(prefix, 20, fix_macro=1, generator=torch.Generator().manual_seed(5))
        assert (fixed["macro"] == 1).all()
        forced = model.sample(prefix, 20, macro=torch.zeros(3, 20, 8, dtype=torch.long))
        assert (forced["macro"] == 0).all()
    with pytest.raises(CanocapsInputError, match="prefix"):
        model.sample(prefix[:, :, :15], 20)


def test_absolute_parameterisation_and_shared_weights_train(tiny):
    train, val = tiny
    for hp in ({"residual": False}, {"share_weights": True}):
        torch.manual_seed(0)
        model = build_model("vrnn_indep", **_hp("vrnn_indep"), **hp)
        before = evaluate_bound(model, val, seed=1)["loss"]
        Trainer(TrainConfig(epochs=3, batch_size=8, lr=1e-3, progress=False, device="cpu", monitor=None)).fit(
            model, train)
        assert evaluate_bound(model, val, seed=1)["loss"] < before - 30.0


def test_model_input_errors(tiny):
    train, _ = tiny
    model = build_model("macro_vrnn", **_hp("macro_vrnn"))
    with pytest.raises(CanocapsInputError, match="macro-intents"):
        model.training_step({"x": train.x[:2]}, 0)
    with pytest.raises(CanocapsInputError, match=r"\[0, 2\)"):
        model.training_step({"x": train.x[:2], "macro": torch.full((2, T_SHORT, 8), 3)}, 0)
    with pytest.raises(CanocapsInputError, match="trajectories"):
        build_model("rnn_gauss", **_hp("rnn_gauss")).training_step({"x": torch.zeros(2, T_SHORT, 10)}, 0)
    with pytest.raises(CanocapsInputError, match="unknown model"):
        build_model("lstm", n_agents=8)
    assert np.isfinite(float(build_model("vrnn_single", **_hp("vrnn_single")).validation_step(
        {"x": train.x[:4]})["elbo"]))
