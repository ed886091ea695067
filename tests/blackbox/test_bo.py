"""BO on BoTorch: closed-form EI and UCB (Frazier 2018 §4.1, METHODS.md §9.6) and the optimizer's behaviour."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from rlsurrogate.blackbox import Categorical, Dim, Float, Integer, SearchSpace, get_benchmark
from rlsurrogate.blackbox.bo import (
    ACQUISITIONS,
    BayesianOptimization,
    expected_improvement,
    fit_gp,
    upper_confidence_bound,
)
from rlsurrogate.errors import ConfigError

FAST = {"num_restarts": 2, "raw_samples": 64, "local_samples": 16}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("mu", "sigma", "best", "expected"),
    [(0.3, 1.0, 0.0, 0.56676), (-0.7, 0.4, 0.1, 0.00340), (2.0, 0.1, 1.0, 1.0)],  # METHODS.md §10.1
)
def test_ei_hand_computed(mu, sigma, best, expected, dtype):
    ei = expected_improvement(torch.tensor(mu, dtype=dtype), torch.tensor(sigma, dtype=dtype), best)
    assert float(ei) == pytest.approx(expected, abs=5e-5)


def test_ei_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.3, -0.7, 2.0, -1.0, 0.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.4, 0.1, 2.0, 0.5], dtype=torch.float64)
    best = torch.tensor([0.0, 0.1, 1.0, 0.5, 0.0], dtype=torch.float64)
    z = torch.randn(400_000, 1, generator=gen, dtype=torch.float64)
    mc = (mu + sigma * z - best).clamp_min(0).mean(0)
    se = (mu + sigma * z - best).clamp_min(0).std(0) / math.sqrt(z.shape[0])
    ei = expected_improvement(mu, sigma, best)
    assert ((ei - mc).abs() < 4 * se + 1e-12).all()


@pytest.mark.filterwarnings("ignore::botorch.exceptions.warnings.NumericsWarning")
def test_ei_matches_botorch_analytic_ei_on_a_fitted_gp():
    from botorch.acquisition import ExpectedImprovement, LogExpectedImprovement

    gen = torch.Generator().manual_seed(0)
    U = torch.rand(12, 2, generator=gen, dtype=torch.float64)
    Y = torch.sin(6 * U[:, 0]) + U[:, 1] ** 2
    model = fit_gp(U, Y)
    Xt = torch.rand(50, 1, 2, generator=gen, dtype=torch.float64)
    post = model.posterior(Xt.squeeze(1))
    mean, sigma = post.mean.squeeze(-1), post.variance.clamp_min(0).sqrt().squeeze(-1)
    best_f = float(Y.max())
    ours = expected_improvement(mean, sigma, best_f)
    with torch.no_grad():
        torch.testing.assert_close(ours, ExpectedImprovement(model, best_f)(Xt), rtol=1e-6, atol=1e-10)
        keep = ours > 1e-8  # where EI underflows only the log form is meaningful
        assert keep.sum() > 10
        log_ei = LogExpectedImprovement(model, best_f)(Xt)
        torch.testing.assert_close(ours[keep].log(), log_ei[keep], rtol=1e-5, atol=1e-6)


def test_ei_zero_where_sigma_zero_and_mean_below_best():
    mu = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)
    ei = expected_improvement(mu, torch.zeros(4, dtype=torch.float64), best_f=0.5)
    torch.testing.assert_close(ei, torch.tensor([0.0, 0.0, 0.0, 1.5], dtype=torch.float64))  # [Delta]^+
    assert torch.isfinite(ei).all()


def test_ei_nonnegative_and_increasing_in_mean_and_sigma():
    grid = torch.linspace(-3, 3, 61, dtype=torch.float64)
    ei_mu = expected_improvement(grid, torch.full_like(grid, 0.7), 0.0)
    ei_sigma = expected_improvement(torch.full_like(grid, -0.5), grid.abs() + 1e-3, 0.0)
    assert (ei_mu >= 0).all() and (ei_mu.diff() > 0).all()
    order = (grid.abs() + 1e-3).argsort()
    assert (ei_sigma[order].diff() >= 0).all()


def test_ucb_at_least_mean_and_matches_botorch():
    from botorch.acquisition import UpperConfidenceBound

    gen = torch.Generator().manual_seed(1)
    U = torch.rand(10, 3, generator=gen, dtype=torch.float64)
    model = fit_gp(U, U.sum(-1))
    Xt = torch.rand(40, 1, 3, generator=gen, dtype=torch.float64)
    post = model.posterior(Xt.squeeze(1))
    mean, sigma = post.mean.squeeze(-1), post.variance.sqrt().squeeze(-1)
    for beta in (0.0, 0.5, 2.0):
        ucb = upper_confidence_bound(mean, sigma, beta)
        assert (ucb >= mean).all()
        with torch.no_grad():
            torch.testing.assert_close(ucb, UpperConfidenceBound(model, beta)(Xt))


def test_gp_is_float64_and_interpolates_noiseless_data():
    gen = torch.Generator().manual_seed(2)
    U = torch.rand(15, 2, generator=gen, dtype=torch.float64)
    Y = torch.cos(4 * U[:, 0]) * U[:, 1]
    model = fit_gp(U, Y)
    post = model.posterior(U)
    assert post.mean.dtype == torch.float64
    torch.testing.assert_close(post.mean.squeeze(-1), Y, atol=1e-2, rtol=0)
    far = model.posterior(torch.tensor([[5.0, 5.0]], dtype=torch.float64)).variance
    assert (post.variance < far).all()


@pytest.mark.parametrize("acquisition", ACQUISITIONS)
def test_every_acquisition_proposes_inside_the_box(acquisition):
    f = get_benchmark("branin")
    extra = {"num_fantasies": 4} if acquisition == "kg" else {}
    opt = BayesianOptimization(f.bounds, maximize=False, seed=0, n_init=5, acquisition=acquisition, **FAST, **extra)
    X = opt.ask(5)
    opt.tell(X, f(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the model-based step must not fall back to Sobol
        x = opt.ask(1)
    assert x.shape == (1, 2) and ((x >= f.bounds[0]) & (x <= f.bounds[1])).all()


def test_batch_proposals_are_distinct():
    f = get_benchmark("hartmann3")
    opt = BayesianOptimization(f.bounds, maximize=False, seed=0, n_init=6, **FAST)
    X = opt.ask(6)
    opt.tell(X, f(X))
    Xq = opt.ask(3)
    assert Xq.shape == (3, 3)
    assert torch.cdist(Xq, Xq)[~torch.eye(3, dtype=torch.bool)].min() > 1e-4


def test_duplicates_and_constant_outputs_do_not_crash():
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, **FAST)
    X = torch.tensor([[0.5, 0.5]] * 6, dtype=torch.float64)
    opt.tell(X, torch.ones(6))  # six identical points, one constant value
    opt.tell(torch.tensor([[0.1, 0.9], [0.1, 0.9]]), torch.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        x = opt.ask(2)
    assert x.shape == (2, 2) and torch.isfinite(x).all()


def _failing_fit(*args, **kwargs):
    from botorch.exceptions.errors import ModelFittingError

    raise ModelFittingError("All attempts to fit the model have failed.")


def test_failed_hyperparameter_fit_keeps_the_warm_start_and_still_proposes(monkeypatch):
    f = get_benchmark("branin")
    opt = BayesianOptimization(f.bounds, seed=0, n_init=5, **FAST)
    X = opt.ask(5)
    opt.tell(X, f(X))
    x = opt.ask(1)  # a successful fit: its hyper-parameters warm-start the next one
    opt.tell(x, f(x))
    fitted = {k: v.clone() for k, v in opt._hyper[0].items()}
    monkeypatch.setattr("botorch.fit.fit_gpytorch_mll", _failing_fit)
    with pytest.warns(UserWarning, match="GP hyper-parameter fit failed"):
        x = opt.ask(1)
    assert x.shape == (1, 2) and ((x >= f.bounds[0]) & (x <= f.bounds[1])).all()
    assert opt.model is not None  # a model-based proposal, not the Sobol fallback
    lengthscale = "covar_module.base_kernel.raw_lengthscale"
    assert torch.equal(opt.model.state_dict()[lengthscale], fitted[lengthscale])


def test_finds_branin_minimum():
    f = get_benchmark("branin")
    opt = BayesianOptimization(f.bounds, maximize=False, seed=0, n_init=6)
    for _ in range(20):
        X = opt.ask(1)
        opt.tell(X, f(X))
    assert f.regret(opt.best()[1]) < 0.05


def test_integer_and_categorical_dimensions_come_back_whole():
    space = SearchSpace([Dim("x", -2.0, 2.0), Dim("k", 0, 5, kind="integer"), Dim("c", kind="categorical", choices=3)])
    opt = BayesianOptimization(space, maximize=False, seed=0, n_init=4, **FAST)

    def f(X):
        return (X[:, 0] - 0.5) ** 2 + (X[:, 1] - 3) ** 2 + (X[:, 2] != 1).double()

    for _ in range(4):
        X = opt.ask(2)
        assert torch.equal(X[:, 1:], X[:, 1:].round()) and set(X[:, 2].tolist()) <= {0.0, 1.0, 2.0}
        opt.tell(X, f(X))


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_mixed_space_finds_the_best_choice_and_integer(encoding):
    space = SearchSpace(
        [Float("lr", 1e-4, 1.0, log=True), Integer("k", 0, 9), Categorical("c", ["a", "b", "c", "d", "e"])]
    )
    opt = BayesianOptimization(space, maximize=False, seed=0, n_init=6, categorical_encoding=encoding, **FAST)

    def loss(p):
        return (math.log10(p["lr"]) + 2) ** 2 + (p["k"] - 6) ** 2 / 10 + 2.0 * (p["c"] != "d")

    for _ in range(22):
        p = opt.ask_params()
        opt.tell(p, loss(p))
    best, y = opt.best_params()
    assert best["c"] == "d" and abs(best["k"] - 6) <= 1 and y < 0.3


def test_model_based_asks_use_the_fast_posterior_only_without_pending_points(monkeypatch):
    from rlsurrogate.blackbox import gp

    calls = []
    original = gp.CachedPosteriorGP.from_model
    monkeypatch.setattr(gp.CachedPosteriorGP, "from_model", lambda m: calls.append(1) or original(m))
    f = get_benchmark("branin")
    opt = BayesianOptimization(f.bounds, maximize=False, seed=0, n_init=5, **FAST)
    X = opt.ask(5)
    opt.tell(X, f(X))
    opt.ask(1)
    assert len(calls) == 1
    opt.ask(1)  # the first point is pending: qLogEI on the GPyTorch model
    assert len(calls) == 1


def test_constraints_need_a_constrained_acquisition():
    with pytest.raises(ConfigError, match="outcome constraints need one of"):
        BayesianOptimization([[0.0], [1.0]], acquisition="ucb", outcome_constraints={"c": 0.0})


def test_invalid_arguments_list_every_problem():
    with pytest.raises(ConfigError) as err:
        BayesianOptimization(
            [[0.0], [1.0]], acquisition="pi", gp_prior="flat", categorical_encoding="hash", num_restarts=0
        )
    assert len(err.value.problems) == 4


def test_hyperparameters_reoptimised_every_step_below_100_then_as_the_data_grow_by_2_percent(monkeypatch):
    import rlsurrogate.blackbox.bo as bo_module

    maxiters, sizes = [], []

    def spy(F, y, **kwargs):
        maxiters.append(kwargs["maxiter"])
        sizes.append(F.shape[0])
        return fit_gp(F, y, **kwargs)

    monkeypatch.setattr(bo_module, "fit_gp", spy)
    # random points told at once look like a stalled search: without restarts the GP sees every point
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=5, stall_window=None, **FAST)
    X = torch.rand(150, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = lambda X: -((X - 0.3) ** 2).sum(-1)  # noqa: E731
    opt.tell(X[:50], f(X[:50]))
    for n_told in (50, 150):
        opt.tell(X[opt.Y.numel() : n_told], f(X[opt.Y.numel() : n_told]))
        for _ in range(4):
            x = opt.ask(1)
            opt.tell(x, f(x))
    assert sizes == [50, 51, 52, 53, 150, 151, 152, 153]  # the GP always sees every observation
    refit = [m > 0 for m in maxiters]
    assert refit == [True] * 5 + [False, False, True]  # int(0.02 * 150) = 3 points between optimisations
    state = opt.state_dict()
    again = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=5, stall_window=None, **FAST)
    again.load_state_dict(state)
    assert again._fitted_n == opt._fitted_n == 153
