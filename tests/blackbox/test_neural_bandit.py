"""NeuralUCB / NeuralTS properties from METHODS.md §4.3 (INSTINCT)."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.blackbox.neural_bandit import (
    NeuralTS,
    NeuralUCB,
    NeuralUCBOptimizer,
    ucb_bonus_diag,
    ucb_bonus_full,
)
from rlsurrogate.errors import ConfigError


def features(n: int = 64, dim: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def target(F: torch.Tensor) -> torch.Tensor:
    return -((F - 0.5) ** 2).sum(-1)


def fitted(cls=NeuralUCB, n_obs: int = 6, **kw) -> tuple[NeuralUCB, torch.Tensor]:
    F = features()
    bandit = cls(dim=5, width=16, train_steps=40, seed=0, **kw)
    for i in range(n_obs):
        bandit.update(F[i], float(target(F[i : i + 1])))
    return bandit, F


def test_defaults_follow_instinct():
    bandit = NeuralUCB(dim=3)
    assert (bandit.nu, bandit.lam, bandit.width, bandit.train_steps, bandit.lr, bandit.n_eval) == (
        1.0, 0.1, 100, 1000, 1e-3, 1000,
    )  # fmt: skip
    assert bandit.exploration == "diag"
    torch.testing.assert_close(bandit.U, torch.full((bandit.n_params,), 0.1, dtype=torch.float64))


@pytest.mark.parametrize("exploration", ["diag", "full"])
def test_ucb_at_least_mean(exploration):
    bandit, F = fitted(exploration=exploration)
    mean, bonus = bandit.predict(F)
    assert mean.shape == bonus.shape == (64,)
    assert (bonus >= 0).all() and (mean + bonus >= mean).all() and (bonus > 0).any()


@pytest.mark.parametrize("exploration", ["diag", "full"])
def test_bonus_of_selected_candidate_shrinks_after_update(exploration):
    """With the network held at its initial weights (no training), only U changes: sigma(x) must drop."""
    F = features()
    bandit = NeuralUCB(dim=5, width=16, train_steps=0, exploration=exploration, seed=0)
    i = bandit.select(F)
    before = bandit.predict(F[i : i + 1])[1]
    bandit.update(F[i], 1.0)
    bandit.features, bandit.values = [], []  # keep the feature standardisation fixed for the comparison
    after = bandit.predict(F[i : i + 1])[1]
    assert after < before


def test_diag_bonus_formula_and_update():
    G = torch.tensor([[1.0, 2.0], [0.5, 0.0]], dtype=torch.float64)
    U = torch.tensor([0.1, 0.1], dtype=torch.float64)
    expected = torch.sqrt(0.1 * 1.0 * torch.tensor([1 / 0.1 + 4 / 0.1, 0.25 / 0.1], dtype=torch.float64))
    torch.testing.assert_close(ucb_bonus_diag(G, U, lam=0.1, nu=1.0), expected)
    assert (ucb_bonus_diag(G, U + G[0] ** 2, 0.1, 1.0) <= ucb_bonus_diag(G, U, 0.1, 1.0)).all()


def test_full_matrix_sherman_morrison_matches_direct_inverse():
    bandit = NeuralUCB(dim=2, width=3, exploration="full", seed=0)  # p = 13 parameters
    gs = torch.randn(5, bandit.n_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for g in gs:
        bandit._grow(g)
    U = 0.1 * torch.eye(bandit.n_params, dtype=torch.float64) + gs.T @ gs
    torch.testing.assert_close(bandit.U_inv, torch.linalg.inv(U))
    torch.testing.assert_close(bandit.U, U.diagonal())
    G = torch.randn(3, bandit.n_params, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    direct = torch.sqrt(0.1 * 2.0 * (G @ torch.linalg.solve(U, G.T)).diagonal())
    torch.testing.assert_close(ucb_bonus_full(G, bandit.U_inv, lam=0.1, nu=2.0), direct)


def test_nu_zero_is_greedy():
    bandit, F = fitted(nu=0.0)
    mean, bonus = bandit.predict(F)
    assert (bonus == 0).all()
    assert bandit.select(F) == int(mean.argmax())


def test_select_respects_exclude():
    bandit, F = fitted()
    first = bandit.select(F)
    second = bandit.select(F, exclude=[first])
    assert second != first
    with pytest.raises(ConfigError, match="excluded"):
        bandit.select(F[:2], exclude=[0, 1])


def test_retraining_is_deterministic_and_restarts_from_init():
    a, F = fitted()
    b, _ = fitted()
    torch.testing.assert_close(a.predict(F)[0], b.predict(F)[0])
    # Retraining always starts from the same initial weights: training twice on the same data gives the same net.
    before = a.predict(F)[0]
    a._train()
    torch.testing.assert_close(a.predict(F)[0], before)


def test_gradients_match_autograd_loop():
    bandit, F = fitted(n_obs=3)
    G = bandit._gradients(F[:4])
    for k in range(4):
        bandit.net.zero_grad()
        bandit.net(F[k : k + 1]).sum().backward()
        ref = torch.cat([p.grad.reshape(-1) for p in bandit.net.parameters()])
        torch.testing.assert_close(G[k], ref)


def test_training_fits_the_observations():
    F = features(n=20)
    bandit = NeuralUCB(dim=5, width=32, train_steps=0, seed=0)
    for i in range(20):
        bandit.update(F[i], float(target(F[i : i + 1])))
    y = target(F)
    mse_init = ((bandit.predict(F)[0] - y) ** 2).mean()
    bandit.train_steps = 1000  # INSTINCT's default, run once on all 20 observations
    bandit._train()
    mse = ((bandit.predict(F)[0] - y) ** 2).mean()
    assert mse < 0.05 * mse_init


def test_minimize_flips_the_sign():
    F = features()
    bandit = NeuralUCB(dim=5, width=16, train_steps=40, seed=0, maximize=False)
    for i in range(6):
        bandit.update(F[i], float(-target(F[i : i + 1])))
    mean, _ = bandit.predict(F[:6])
    assert torch.corrcoef(torch.stack([mean, -target(F[:6])]))[0, 1] > 0.5  # mean is in the objective's sign


def test_thompson_sampling_is_seeded_and_random():
    a, F = fitted(NeuralTS)
    b, _ = fitted(NeuralTS)
    picks_a = [a.select(F) for _ in range(5)]
    picks_b = [b.select(F) for _ in range(5)]
    assert picks_a == picks_b
    assert len(set(picks_a)) > 1  # fresh draws at each call


def test_n_eval_subsamples_candidates():
    bandit, F = fitted(n_eval=8)
    chosen = {bandit.select(F) for _ in range(10)}
    assert len(chosen) > 1  # different random subsets give different argmaxes


def test_invalid_arguments_raise_one_error():
    with pytest.raises(ConfigError) as err:
        NeuralUCB(dim=4, lam=0.0, exploration="block")
    assert len(err.value.problems) == 2
    with pytest.raises(ConfigError, match="diag"):
        NeuralUCB(dim=5120, exploration="full")


def test_update_refuses_a_feature_of_the_wrong_size_or_non_finite():
    bandit = NeuralUCB(dim=3, width=4, train_steps=1, seed=0)
    with pytest.raises(ConfigError, match="3 finite values"):
        bandit.update(torch.zeros(4), 0.0)
    with pytest.raises(ConfigError, match="3 finite values"):
        bandit.update(torch.tensor([0.0, float("nan"), 0.0]), 0.0)
    assert bandit.features == []


@pytest.mark.parametrize(
    ("other", "match"),
    [({"width": 8}, "width 16"), ({"exploration": "full"}, "exploration"), ({"dim": 4}, "dim 5")],
)
def test_load_state_dict_refuses_a_state_of_another_network(other, match):
    source, _ = fitted(n_obs=2)
    target_kw = {"dim": 5, "width": 16, "train_steps": 40, "seed": 0}
    state = NeuralUCB(**{**target_kw, **other}).state_dict()
    bandit = NeuralUCB(**target_kw)
    with pytest.raises(ConfigError, match=match):
        bandit.load_state_dict(state)
    bandit.load_state_dict(source.state_dict())
    assert len(bandit.features) == 2


def test_optimizer_refuses_to_ask_beyond_its_pool():
    opt = NeuralUCBOptimizer([[0.0, 0.0], [1.0, 1.0]], n_domain=8, n_init=2, train_steps=1, width=4)
    opt.ask(6)
    with pytest.raises(ConfigError, match="only 2 of the n_domain = 8"):
        opt.ask(3)
    assert opt.step == 1 and opt.ask(2).shape == (2, 2)


def test_loaded_direction_reaches_the_bandit(tmp_path):
    kw = {"n_domain": 16, "n_init": 2, "train_steps": 1, "width": 4}
    saved = NeuralUCBOptimizer([[0.0, 0.0], [1.0, 1.0]], maximize=True, **kw)
    saved.save(tmp_path / "state.pt")
    resumed = NeuralUCBOptimizer([[0.0, 0.0], [1.0, 1.0]], maximize=False, **kw)
    resumed.load(tmp_path / "state.pt")
    assert resumed.maximize and resumed.bandit.maximize


def test_optimizer_refuses_a_state_of_another_pool_size(tmp_path):
    kw = {"n_init": 2, "train_steps": 1, "width": 4}
    NeuralUCBOptimizer([[0.0, 0.0], [1.0, 1.0]], n_domain=16, **kw).save(tmp_path / "state.pt")
    with pytest.raises(ConfigError, match="n_domain=16"):
        NeuralUCBOptimizer([[0.0, 0.0], [1.0, 1.0]], n_domain=32, **kw).load(tmp_path / "state.pt")


def test_initial_weights_are_n01_or_scaled_by_fan_in():
    paper, fan_in = NeuralUCB(dim=400, width=200, init="normal"), NeuralUCB(dim=400, width=200, init="fan_in")
    paper.net.requires_grad_(False)
    fan_in.net.requires_grad_(False)
    assert abs(float(paper.net[0].weight.std()) - 1.0) < 0.02 and abs(float(paper.net[2].weight.std()) - 1.0) < 0.2
    assert abs(float(fan_in.net[0].weight.std()) * 400**0.5 - 1.0) < 0.02
    assert abs(float(fan_in.net[2].weight.std()) * 200**0.5 - 1.0) < 0.2
    with pytest.raises(ConfigError, match="init = 'xavier'"):
        NeuralUCB(dim=3, init="xavier")


def test_standardise_false_feeds_the_features_as_given():
    X = torch.randn(20, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    own, given = NeuralUCB(dim=4, width=8, train_steps=0), NeuralUCB(dim=4, width=8, train_steps=0, standardise=False)
    before_own, before_given = own.predict(X)[0], given.predict(X)[0]
    for bandit in (own, given):  # observations far from the candidates: shifts the observed statistics only
        bandit.update(X[0] + 50.0, 0.0)
        bandit.update(X[1] - 50.0, 1.0)
    torch.testing.assert_close(given.predict(X)[0], before_given)
    assert not torch.allclose(own.predict(X)[0], before_own)
