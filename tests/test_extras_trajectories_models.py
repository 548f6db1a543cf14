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
    GridEncoding,
    GroupGRUCell,
    GroupLinear,
    faithful_gaussian_nll,
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


# --- the macro-intent conditioning matters ------------------------------------------------------------------


def _two_way(n: int, T: int = 10, seed: int = 0) -> TrajectoryDataset:
    """Two agents; while the intent is 0 both move right, while it is 1 left (0.1 per frame,
    small noise), and the intent flips once at a random frame: only the intent tells when."""
    g = np.random.default_rng(seed)
    first = g.integers(0, 2, n)
    flip = g.integers(2, T - 2, n)
    m = np.where(np.arange(T)[None] < flip[:, None], first[:, None], 1 - first[:, None])  # (n, T)
    step = np.where(m[:, :-1] == 1, -0.1, 0.1)
    x = np.zeros((n, T, 4), np.float32)
    x[:, 1:, 0::2] = np.cumsum(step, 1)[..., None]
    x[..., 1::2] = np.array([0.5, -0.5])
    x += g.normal(0, 0.01, x.shape).astype(np.float32)
    return TrajectoryDataset(x, np.repeat(m[..., None], 2, 2), first)


@pytest.mark.parametrize("relative", [False, True])
def test_intent_input_changes_likelihood_and_rollouts(tiny, relative):
    """Cutting the intent out of the agents' conditioning (e.g. zeroing the one-hot) makes the
    per-agent NLL + KL independent of the intents and the fixed-intent rollouts identical."""
    train, _ = tiny
    torch.manual_seed(0)
    model = build_model("macro_vrnn", **_hp("macro_vrnn"), velocity_scale=10.0, relative=relative,
                        max_step=0.2).eval()
    x, m = train.x[:6], train.macro[:6]
    with torch.no_grad():
        torch.manual_seed(3)
        right = model.loss_terms(x, m)
        torch.manual_seed(3)
        flipped = model.loss_terms(x, 1 - m)
    assert float((right["neg_elbo_given_macro"] - flipped["neg_elbo_given_macro"]).abs().min()) > 1e-3
    prefix = x[:, :1]
    r0 = model.sample(prefix, T_SHORT, fix_macro=0, generator=torch.Generator().manual_seed(5))["x"]
    r1 = model.sample(prefix, T_SHORT, fix_macro=1, generator=torch.Generator().manual_seed(5))["x"]
    assert float((r0[:, 1:] - r1[:, 1:]).abs().max()) > 1e-3


def test_fixed_intent_rollouts_follow_the_intent(tmp_path):
    """Trained on data where only the intent says which way the agents go, rollouts with the
    intent fixed go that way; the NLL of the data is much better with the true intents than
    with the flipped ones."""
    train, val = _two_way(256), _two_way(64, seed=1)
    torch.manual_seed(0)
    model = build_model("macro_vrnn", n_agents=2, n_macro=2, z_dim=2, h_dim=16, rnn_dim=16, macro_rnn_dim=8,
                        velocity_scale=10.0, relative=True, max_step=0.2)
    Trainer(TrainConfig(epochs=10, batch_size=32, lr=3e-3, progress=False, device="cpu", monitor=None)).fit(
        model, train)
    model.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        true = model.loss_terms(val.x, val.macro)["neg_elbo_given_macro"].mean()
        torch.manual_seed(1)
        wrong = model.loss_terms(val.x, 1 - val.macro)["neg_elbo_given_macro"].mean()
    assert float(wrong - true) > 20.0, (float(true), float(wrong))  # exactly 0 if the intent is cut
    prefix = val.x[:, :1]
    means = []
    for intent, sign in ((0, 1.0), (1, -1.0)):
        roll = model.sample(prefix, 10, fix_macro=intent, generator=torch.Generator().manual_seed(intent))
        dx = (roll["x"][:, -1, 0::2] - roll["x"][:, 0, 0::2]).mean(1)  # (n,) mean x displacement (data: +-0.9)
        assert float((sign * dx > 0.2).float().mean()) >= 0.9, (intent, dx[:8])
        means.append(float(dx.mean()))
    assert means[0] - means[1] > 0.8, means


# --- step parameterisation, relative features, importance weighting ----------------------------------------


def test_bounded_steps_and_relative_features():
    torch.manual_seed(0)
    model = build_model("vrnn_indep", n_agents=3, z_dim=2, h_dim=8, rnn_dim=8, max_step=0.2, velocity_scale=10.0,
                        relative=True)
    big = torch.full((2, 3, 2), 1e3)
    assert float((model.core.mean(big, 0.0) - 0.2).abs().max()) < 1e-6
    y, yp = torch.randn(4, 6), torch.randn(4, 6)
    shift = torch.tensor([0.7, -1.3]).repeat(3)
    c, c_shift = model._joint(y, yp), model._joint(y + shift, yp + shift)
    torch.testing.assert_close(c[..., 2:], c_shift[..., 2:])  # relative positions and displacements: invariant
    torch.testing.assert_close(c_shift[..., :2] - c[..., :2], shift[:2].expand(4, 3, 2))  # own position moves
    torch.testing.assert_close(c[:, 1, 2:8], y - y[:, 2:4].repeat(1, 3))  # agent 1 sees everybody minus itself
    with pytest.raises(CanocapsInputError, match="max_step"):
        build_model("rnn_gauss", n_agents=3, max_step=0.2, residual=False)


ARENA = [-2.5, 2.5, -2.5, 2.5]


def test_grid_encoding_values_and_the_wall_pull_is_linear_in_it():
    enc = GridEncoding(11, ARENA)
    p = torch.tensor([[0.0, 0.0], [2.5, -2.5], [0.25, 0.0]])
    f = enc(p)
    assert f.shape == (3, 121)
    assert float(f[0, 5 * 11 + 5]) == pytest.approx(1.0)  # centre (0, 0): a = b = 5
    assert float(f[1, 10 * 11 + 0]) == pytest.approx(1.0)  # corner (2.5, -2.5)
    assert float(f[0, 6 * 11 + 5]) == pytest.approx(np.exp(-2.0), rel=1e-5)  # one spacing away: sigma = spacing / 2
    assert float(f[2, 5 * 11 + 5]) == pytest.approx(float(f[2, 6 * 11 + 5]))  # half-way between two centres
    # the boids' pull back to the origin beyond radius 2 is (nearly) a linear map of the features,
    # far less so of the raw coordinates: what the encoding is for
    rng = np.random.default_rng(0)
    q = rng.uniform(-2.4, 2.4, (4000, 2))
    q = q[np.linalg.norm(q, axis=1) < 2.4]
    r = np.linalg.norm(q, axis=1, keepdims=True)
    pull = -0.05 * q / r * (r > 2)

    def r2(feats: np.ndarray) -> float:
        a = np.c_[feats, np.ones(len(feats))]
        w, *_ = np.linalg.lstsq(a, pull, rcond=None)
        return float(1 - ((pull - a @ w) ** 2).sum() / ((pull - pull.mean(0)) ** 2).sum())

    grid_r2, raw_r2 = r2(enc(torch.tensor(q, dtype=torch.float32)).numpy()), r2(q)
    assert grid_r2 > 0.85 and grid_r2 > raw_r2 + 0.25, (grid_r2, raw_r2)


@pytest.mark.parametrize("name", ["vrnn_indep", "macro_vrnn"])
def test_absolute_position_reaches_per_agent_networks_through_the_grid(tiny, name):
    """Translating the whole flock leaves the relative inputs unchanged; with the raw own-position
    columns of every first layer zeroed, only the grid encoding can make the outputs move."""
    train, _ = tiny
    torch.manual_seed(0)
    model = build_model(name, **_hp(name), velocity_scale=10.0, max_step=0.2, relative=True, interaction=8,
                        position_grid=5, arena=ARENA).eval()
    y, yp = train.x[:4, 3], train.x[:4, 2]
    c = model._joint(y, yp)
    own = y.view(4, 8, 2)
    torch.testing.assert_close(c[..., -25:], GridEncoding(5, ARENA)(own))  # the last 25 inputs: own position's grid
    firsts = [model.core.enc.body.l1, model.core.prior.body.l1, model.core.dec.body.l1]
    if name == "macro_vrnn":
        firsts.append(model.policy_body.l1)
    with torch.no_grad():
        for layer in firsts:  # cut the raw absolute position (columns 0, 1): only the grid carries it
            layer.weight[..., :2] = 0.0
    shift = torch.tensor([1.1, -0.6]).repeat(8)
    x = train.x[:4]
    macro = train.macro[:4] if name == "macro_vrnn" else None
    with torch.no_grad():
        c_shift = model._joint(y + shift, yp + shift)
        torch.testing.assert_close(c[..., 2:-25], c_shift[..., 2:-25])  # relative inputs: translation invariant
        torch.manual_seed(1)
        base = model.loss_terms(x, macro)
        torch.manual_seed(1)
        moved = model.loss_terms(x + shift, macro)
        assert float((base["nll"] - moved["nll"]).abs().min()) > 1e-3, (base["nll"], moved["nll"])
        if name == "macro_vrnn":
            assert float((base["ce"] - moved["ce"]).abs().min()) > 1e-4  # the policy sees it too
        model.grid = None  # cutting the input must be visible: the networks expect its columns
        with pytest.raises(RuntimeError):
            model.loss_terms(x, macro)


def test_position_grid_needs_an_arena_and_is_in_the_recipe():
    from canocaps.extras.trajectories.experiments import default_hparams

    with pytest.raises(CanocapsInputError, match="position_grid"):
        build_model("vrnn_indep", n_agents=3, relative=True, position_grid=5)
    with pytest.raises(CanocapsInputError, match="position_grid"):
        build_model("vrnn_indep", n_agents=3, position_grid=1, arena=ARENA)
    for name, n_macro in (("vrnn_indep", None), ("macro_vrnn", 2)):
        hp = default_hparams(name, {"dataset": "boids", "n_agents": 8}, n_macro)
        assert hp["position_grid"] == 11 and hp["arena"] == ARENA
    court = default_hparams("macro_vrnn", {"dataset": "basketball", "n_agents": 5}, 90)["arena"]
    assert court == pytest.approx([-25 / 94, 69 / 94, -0.5, 0.5])  # the 94 x 50 ft court, normalised


def test_sampled_kl_is_unbiased_and_iw_bound_tightens(tiny):
    train, _ = tiny
    torch.manual_seed(0)
    model = build_model("vrnn_indep", **_hp("vrnn_indep"), velocity_scale=10.0, relative=True).eval()
    x = train.x[:2]
    with torch.no_grad():
        torch.manual_seed(1)
        analytic = model.loss_terms(x.repeat(2000, 1, 1))["kl"].mean()
        torch.manual_seed(1)
        sampled = model.loss_terms(x.repeat(2000, 1, 1), sampled_kl=True)["kl"]
        assert float((sampled.mean() - analytic).abs()) < 4 * float(sampled.std()) / 2000 ** 0.5 + 1e-3
        x = train.x[:8]
        torch.manual_seed(2)
        elbo = model.iw_bound(x, k=1)
        torch.manual_seed(2)
        iw16 = model.iw_bound(x, k=16)
        torch.manual_seed(2)  # the same k = 16 importance samples, averaged by hand
        manual = model.loss_terms(x.repeat(16, 1, 1), sampled_kl=True)["loss"].view(16, 8)
        torch.testing.assert_close(iw16, -(torch.logsumexp(-manual.double(), 0) - np.log(16)).float())
    assert float(iw16.mean()) < float(elbo.mean())  # tighter
    gauss = build_model("rnn_gauss", **_hp("rnn_gauss"))
    torch.testing.assert_close(gauss.iw_bound(x, k=4), gauss.loss_terms(x)["loss"])  # exact likelihood
    with pytest.raises(CanocapsInputError, match="importance samples"):
        model.iw_bound(x, k=0)
    report = evaluate_bound(model, TrajectoryDataset(x.numpy()), seed=0, iw_samples=4)
    assert report["iw_samples"] == 4 and report["iw_loss"] <= report["loss"] + 1.0


def test_rollout_score_and_temperature(tiny):
    from canocaps.extras.trajectories.selection import rollout_score

    real = {"avg_speed": 0.08, "oob_rate": 0.0}
    assert rollout_score({"avg_speed": 0.08, "oob_rate": 0.0}, real, [1.0, 1.0]) == 0.0
    assert rollout_score({"avg_speed": 0.12, "oob_rate": 0.1}, real, [0.8, 0.6]) == pytest.approx(0.5 + 0.1 + 0.3)
    assert rollout_score({"avg_speed": 0.04, "oob_rate": 0.0}, real, friendly_gap=-0.2) == pytest.approx(0.7)
    train, _ = tiny
    for name in ("rnn_gauss", "vrnn_indep"):
        model = build_model(name, **_hp(name)).eval().set_temperature(0.0)
        a = model.sample(train.x[:2, :1], 6, generator=torch.Generator().manual_seed(1))["x"]
        b = model.sample(train.x[:2, :1], 6, generator=torch.Generator().manual_seed(2))["x"]
        torch.testing.assert_close(a, b)  # no noise at temperature 0
    with pytest.raises(CanocapsInputError, match="temperature"):
        model.set_temperature(-1.0)


# --- teacher-forced diagnosis -------------------------------------------------------------------------


def test_force_responses_see_the_simulator_rules_and_one_step_predictions(tiny):
    from canocaps.extras.trajectories.diagnose import force_responses, one_step_predictions

    x, y = simulate(64, seed=3)
    real = x.reshape(64, 50, 8, 2)
    perfect = force_responses(real, real[:, 1:], y)
    coast = np.concatenate([real[:, 1:2], 2 * real[:, 1:-1] - real[:, :-2]], 1)  # frames 1..T-1, no force
    inertial = force_responses(real, coast, y)
    wall = perfect["wall"][-1]
    assert wall["n"] > 0 and wall["real"] < -0.03 and wall["model"] == wall["real"]  # the pull beyond r = 2
    unfr, fr = perfect["neighbours"]
    assert unfr["real"] > 0.01 and fr["real"] < -0.005  # pushed away / pulled in
    assert abs(inertial["wall"][-1]["model"]) < 1e-6 and abs(inertial["neighbours"][0]["model"]) < 1e-6
    train, _ = tiny
    model = build_model("macro_vrnn", **_hp("macro_vrnn"), velocity_scale=10.0, max_step=0.2, relative=True)
    pred = one_step_predictions(model, train.x[:3], train.macro[:3])
    assert pred.shape == (3, T_SHORT - 1, 8, 2) and model.core.trace is None
    post = one_step_predictions(model, train.x[:3], train.macro[:3], latent="posterior")
    assert model.core.trace_latent == "prior" and float((post - pred).abs().max()) > 1e-5  # z at q's mean: differs
    assert float((pred - train.x[:3, :-1].view(3, -1, 8, 2)).abs().max()) <= 0.2 + 1e-6  # bounded steps
    with pytest.raises(CanocapsInputError, match="VRNN"):
        one_step_predictions(build_model("rnn_gauss", **_hp("rnn_gauss")), train.x[:3])


def test_faithful_nll_keeps_the_value_and_fits_the_mean_by_least_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g)
    mean = torch.randn(6, 2, generator=g).requires_grad_()
    std = (torch.rand(6, 2, generator=g) + 0.05).requires_grad_()
    value = faithful_gaussian_nll(x, mean, std)
    torch.testing.assert_close(value, gaussian_nll(x, mean, std))  # same value: the bound is unchanged
    value.sum().backward()
    # every point pulls the mean with the same weight (least squares at the NLL's mean scale) ...
    torch.testing.assert_close(mean.grad, (mean - x).detach() / (std.detach() ** 2).mean())
    # ... and the std gets the NLL's own gradient at the (detached) mean
    std_ref = std.detach().clone().requires_grad_()
    gaussian_nll(x, mean.detach(), std_ref).sum().backward()
    torch.testing.assert_close(std.grad, std_ref.grad)
    plain = mean.detach().clone().requires_grad_()
    gaussian_nll(x, plain, std.detach()).sum().backward()
    assert not torch.allclose(plain.grad, mean.grad)  # the plain NLL weighs points by 1 / std^2


@pytest.mark.parametrize("name", ["vrnn_indep", "macro_vrnn"])
def test_faithful_models_have_the_same_loss_and_a_least_squares_decoder_mean(tiny, name):
    """``faithful=true`` changes the decoder's gradients, not the model: with the std's own MLP set to
    the mean's, the same loss value; a different mean-layer gradient; the std sends nothing back."""
    train, _ = tiny
    x = train.x[:8]
    macro = train.macro[:8] if name == "macro_vrnn" else None
    hp = dict(**_hp(name), velocity_scale=10.0, max_step=0.2, relative=True, interaction=8)
    torch.manual_seed(0)
    faithful = build_model(name, **hp, faithful=True)
    plain = build_model(name, **hp)
    plain.load_state_dict(faithful.state_dict(), strict=False)  # all but the faithful std's own MLP
    with torch.no_grad():  # the same std: the plain head reads the mean's features, the faithful one its own
        faithful.core.dec.std_body.load_state_dict(faithful.core.dec.body.state_dict())
    assert faithful.hparams()["faithful"] is True and build_model(name, **faithful.hparams()).core.faithful
    losses = []
    for model in (faithful, plain):
        torch.manual_seed(1)
        loss = model.loss_terms(x, macro)["loss"].mean()
        loss.backward()
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    fd, pd = faithful.core.dec, plain.core.dec
    torch.testing.assert_close(fd.std.weight.grad, pd.std.weight.grad)  # the std: the NLL's gradient either way
    assert not torch.allclose(fd.mean.weight.grad, pd.mean.weight.grad, rtol=1e-3, atol=0.0)
    inp = torch.randn(3, fd.body.l1.weight.shape[0], fd.body.l1.weight.shape[-1], requires_grad=True)
    std_only = torch.autograd.grad(fd(inp)[1].sum(), [inp, *fd.body.parameters()], allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0.0 for g in std_only)  # neither the mean's features nor the input


# --- multi-step (rollout) training term ----------------------------------------------------------------


def _rollout_model(name: str, steps: int, weight: float = 1.0, **extra):
    torch.manual_seed(0)
    return build_model(name, **_hp(name), velocity_scale=10.0, max_step=0.2, relative=True, interaction=8,
                       rollout_steps=steps, rollout_weight=weight, **extra)


def _teacher_forced_states(model, x, m, seed: int) -> list:
    """The recurrent states ``states[t - 1]`` before each frame t of a teacher-forced pass (seeded)."""
    model.core.keep = []
    torch.manual_seed(seed)
    with torch.no_grad():
        model.loss_terms(x, m)
    states = [h.detach() for h, _ in model.core.keep]
    model.core.keep = None
    return states


@pytest.mark.parametrize("name", ["vrnn_indep", "macro_vrnn"])
def test_rollout_term_is_added_to_training_only_and_its_gradient_reaches_the_decoder(tiny, name):
    """``rollout_steps=0``: the training loss is the plain bound. H > 0: the bound is unchanged
    (reported as ``"bound"``, and as the validation ``"loss"``), a positive term is added, and
    that term alone sends gradient to the decoder mean and the neighbour summary."""
    train, _ = tiny
    batch = {"x": train.x[:8], "macro": train.macro[:8] if name == "macro_vrnn" else None}
    plain, on = _rollout_model(name, 0), _rollout_model(name, 3, weight=0.5)
    torch.manual_seed(1)
    ref = plain.loss_terms(batch["x"], batch["macro"])["loss"].mean().detach()
    torch.manual_seed(1)
    assert float(plain.training_step(batch, 0)["loss"].detach()) == pytest.approx(float(ref), rel=1e-6)
    assert "rollout" not in plain.training_step(batch, 0)
    torch.manual_seed(1)
    out = on.training_step(batch, 0)
    val_of = {k: float(v.detach()) for k, v in out.items()}
    assert val_of["bound"] == pytest.approx(float(ref), rel=1e-6)  # same weights, same z samples
    assert val_of["rollout"] > 0.0 and val_of["rollout_mse"] > 0.0
    assert val_of["loss"] == pytest.approx(val_of["bound"] + val_of["rollout"], rel=1e-6)
    torch.manual_seed(1)
    val = on.validation_step(batch)
    assert float(val["loss"]) == pytest.approx(float(ref), rel=1e-6) and float(val["rollout"]) > 0.0
    assert float(val["elbo"]) == pytest.approx(-float(ref), rel=1e-6)
    on.zero_grad()
    out["rollout"].backward()
    for p in (on.core.dec.mean.weight, on.pair.l1.weight, on.core.prior.mean.weight):
        assert p.grad is not None and float(p.grad.abs().max()) > 0.0
    if name == "macro_vrnn":  # intents are given: the policy is not part of the term
        assert on.policy_out.weight.grad is None or float(on.policy_out.weight.grad.abs().max()) == 0.0
    assert build_model(name, **on.hparams()).rollout_steps == 3
    with pytest.raises(CanocapsInputError, match="rollout_steps"):
        _rollout_model(name, -1)
    with pytest.raises(CanocapsInputError, match="rollout_steps"):
        _rollout_model(name, 2, weight=-1.0)


def test_rollout_error_is_the_one_step_error_then_feeds_its_own_predictions_back(tiny):
    """H = 1 is the teacher-forced one-step prediction (diagnose's); from the second frame on
    the unroll reads its own predictions, with gradients through them."""
    from canocaps.extras.trajectories.diagnose import one_step_predictions

    train, _ = tiny
    model = _rollout_model("macro_vrnn", 2).eval()
    x, m = train.x[:4], train.macro[:4]
    states = _teacher_forced_states(model, x, m, seed=2)
    starts = torch.tensor([1, 2, 5, T_SHORT - 2])
    torch.manual_seed(2)  # the same posterior samples, hence the same recurrent states
    pred = one_step_predictions(model, x, m).reshape(4, T_SHORT - 1, 16)
    rows = torch.arange(4)
    one = model.rollout_error(x, m, states, 1, starts)
    torch.testing.assert_close(one, ((pred[rows, starts - 1] - x[rows, starts]) ** 2).sum(1))
    # a plain per-sequence loop that feeds the predictions back (the reference)
    three = model.rollout_error(x, m, states, 3, starts.clamp(max=T_SHORT - 3))
    for b, s0 in enumerate(starts.clamp(max=T_SHORT - 3).tolist()):
        h, y, y_prev, err = states[s0 - 1][b:b + 1], x[b:b + 1, s0 - 1], x[b:b + 1, max(s0 - 2, 0)], 0.0
        for t in range(s0, s0 + 3):
            cond = model._intent_cond(y, y_prev, m[b:b + 1, t - 1])
            x_hat, h = model.core.predict(cond, h, model._targets(y))
            err = err + float(((x_hat.reshape(1, -1) - x[b:b + 1, t]) ** 2).sum().detach())
            y_prev, y = y, x_hat.reshape(1, -1)
        assert float(three[b].detach()) == pytest.approx(err, rel=1e-5)
    second = model.rollout_error(x, m, states, 2, starts) - one
    tf_second = ((pred[rows, starts] - x[rows, starts + 1]) ** 2).sum(1)  # the same frame, teacher-forced
    assert float((second - tf_second).detach().abs().max()) > 1e-6
    # gradients run through the fed-back prediction: with the recurrence cut from its input, frame
    # start - 2 reaches the second frame's error only through the first prediction
    with torch.no_grad():
        model.core.rnn.ih.weight.zero_()
    xg = x.clone().requires_grad_()
    second = model.rollout_error(xg, m, states, 2, starts) - model.rollout_error(xg, m, states, 1, starts)
    (grad,) = torch.autograd.grad(second[1:3].sum(), xg)
    assert float(grad[rows[1:3], starts[1:3] - 2].abs().max()) > 0.0


def test_rollout_step_weight_adds_the_step_length_error_of_the_same_unroll(tiny):
    """``rollout_step_weight`` = s adds ``s * sum (|x_hat_t - x_hat_{t-1}| - |x_t - x_{t-1}|)^2`` per agent
    along the very unroll whose position error is summed (a per-sequence reference loop); 0 is off."""
    train, _ = tiny
    x, m = train.x[:4], train.macro[:4]
    plain, steps = _rollout_model("macro_vrnn", 3), _rollout_model("macro_vrnn", 3, rollout_step_weight=50.0)
    steps.load_state_dict(plain.state_dict())
    plain.eval(), steps.eval()
    states = _teacher_forced_states(plain, x, m, seed=3)
    starts = torch.tensor([1, 3, 4, T_SHORT - 3])
    with torch.no_grad():
        pos_only = plain.rollout_error(x, m, states, 3, starts)
        both = steps.rollout_error(x, m, states, 3, starts)
    for b, s0 in enumerate(starts.tolist()):
        h, y, y_prev, pos, length = states[s0 - 1][b:b + 1], x[b:b + 1, s0 - 1], x[b:b + 1, max(s0 - 2, 0)], 0.0, 0.0
        for t in range(s0, s0 + 3):
            with torch.no_grad():
                x_hat, h = steps.core.predict(steps._intent_cond(y, y_prev, m[b:b + 1, t - 1]), h, steps._targets(y))
            x_hat = x_hat.reshape(1, -1)
            pos += float(((x_hat - x[b:b + 1, t]) ** 2).sum())
            step_hat = (x_hat - y).reshape(-1, 2).norm(dim=-1)
            step_real = (x[b, t] - x[b, t - 1]).reshape(-1, 2).norm(dim=-1)
            length += float(((step_hat - step_real) ** 2).sum())
            y_prev, y = y, x_hat
        assert float(pos_only[b]) == pytest.approx(pos, rel=1e-5)
        assert float(both[b]) == pytest.approx(pos + 50.0 * length, rel=1e-5)
        assert length > 0.0
    assert build_model("macro_vrnn", **steps.hparams()).rollout_step_weight == 50.0
    with pytest.raises(CanocapsInputError, match="rollout_step_weight"):
        _rollout_model("macro_vrnn", 2, rollout_step_weight=-1.0)
