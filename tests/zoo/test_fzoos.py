from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.zoo.fzoos import (
    DerivedGP,
    FedZO,
    FedZOConfig,
    FZooS,
    FZooSConfig,
    RFFSurrogate,
    finite_difference_gradient,
    make_quadratic_clients,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # Small dense linear algebra: extra threads only add contention on shared CI cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    A = torch.diag(torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64))
    c = torch.tensor([0.3, 0.7, 0.5, 0.2], dtype=torch.float64)
    return ((x - c) @ A * (x - c)).sum(-1)


def _quadratic_grad(x: torch.Tensor) -> torch.Tensor:
    A = torch.diag(torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64))
    return 2 * (x - torch.tensor([0.3, 0.7, 0.5, 0.2], dtype=torch.float64)) @ A


def _points(n: int, d: int, center: torch.Tensor, radius: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return center + radius * (2 * torch.rand(n, d, generator=g, dtype=torch.float64) - 1)


def test_grad_mean_matches_finite_differences_of_the_mean():
    X = _points(30, 4, torch.full((4,), 0.5, dtype=torch.float64), 0.3)
    gp = DerivedGP(X, _quadratic(X) + torch.sin(5 * X[:, 0]))
    x = torch.tensor([[0.45, 0.55, 0.4, 0.6]], dtype=torch.float64)
    h = 1e-5
    fd = torch.stack([(gp.mean(x + h * e) - gp.mean(x - h * e)) / (2 * h) for e in torch.eye(4, dtype=torch.float64)])
    torch.testing.assert_close(gp.grad_mean(x)[0], fd[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_gradient_surrogate_matches_true_gradient_on_quadratic(seed):
    d = 4
    center = torch.tensor([0.6, 0.4, 0.8, 0.5], dtype=torch.float64)
    X = _points(3 * d + 4, d, center, 0.1, seed)  # >= 3d well-spread noise-free queries around x
    gp = DerivedGP(X, _quadratic(X))
    g_hat, g_true = gp.grad_mean(center[None])[0], _quadratic_grad(center)
    assert torch.nn.functional.cosine_similarity(g_hat, g_true, dim=0) >= 0.9
    assert (g_hat - g_true).norm() <= 0.2 * g_true.norm()


def test_fzoos_local_gradient_matches_true_gradient_after_a_run():
    clients, _ = make_quadratic_clients(d=4, n_clients=2, seed=1)
    x0 = torch.full((4,), 0.1, dtype=torch.float64)
    opt = FZooS(clients, FZooSConfig(rounds=2, local_iters=4, n_features=300, seed=0))
    x = opt.run(x0).x[-1]
    true = 2 * clients[0].a * (x - clients[0].c)
    est = opt.local_gradient(0, x)
    assert torch.nn.functional.cosine_similarity(est, true, dim=0) >= 0.9


def test_gradient_covariance_is_psd_and_shrinks_with_a_nearby_query():
    X = _points(15, 3, torch.full((3,), 0.5, dtype=torch.float64), 0.2)
    y = _quadratic(torch.cat([X, torch.zeros(15, 1, dtype=torch.float64)], 1))
    x = torch.tensor([[0.52, 0.47, 0.61]], dtype=torch.float64)
    gp = DerivedGP(X, y, lengthscale=0.3)
    cov = gp.grad_cov(x)[0]
    assert torch.linalg.eigvalsh(cov).min() >= -1e-9
    X2 = torch.cat([X, x + 0.01])
    gp2 = DerivedGP(X2, _quadratic(torch.cat([X2, torch.zeros(16, 1, dtype=torch.float64)], 1)), lengthscale=0.3)
    # Same kernel and scale: compare on the standardised scale.
    assert torch.trace(gp2.grad_cov(x)[0]) / gp2.y_std**2 < torch.trace(cov) / gp.y_std**2


def test_rff_gradient_matches_finite_differences_and_averaging_is_linear():
    rff = RFFSurrogate(d=3, n_features=500, lengthscale=0.5, seed=0)
    g = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(500, generator=g, dtype=torch.float64), torch.randn(500, generator=g, dtype=torch.float64)
    x = torch.tensor([[0.2, 0.5, 0.9]], dtype=torch.float64)
    h = 1e-6
    fd = torch.stack([(rff.value(x + h * e, w1) - rff.value(x - h * e, w1)) / (2 * h) for e in torch.eye(3).double()])
    torch.testing.assert_close(rff.grad(x, w1)[0], fd[:, 0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(rff.grad(x, (w1 + w2) / 2), (rff.grad(x, w1) + rff.grad(x, w2)) / 2)


def test_rff_fit_recovers_a_smooth_gradient():
    rff = RFFSurrogate(d=2, n_features=2000, lengthscale=0.5, seed=1)
    X = _points(200, 2, torch.full((2,), 0.5, dtype=torch.float64), 0.3)
    f = lambda X: (X - 0.3).pow(2).sum(-1)  # noqa: E731
    w = rff.fit(X, f(X), noise=1e-6)
    x = torch.tensor([[0.5, 0.6]], dtype=torch.float64)
    assert torch.nn.functional.cosine_similarity(rff.grad(x, w)[0], 2 * (x[0] - 0.3), dim=0) > 0.95


def test_finite_difference_gradient_is_exact_for_linear_functions_with_q_equal_d():
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    calls = []

    def f(x):
        calls.append(1)
        return float(c @ x)

    g, n = finite_difference_gradient(
        f, torch.zeros(3, dtype=torch.float64), 3, 0.01, torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(g, c)
    assert n == 4 == len(calls)


def test_gamma_zero_is_a_pure_local_method():
    clients, _ = make_quadratic_clients(d=3, n_clients=2, seed=0)
    x0 = torch.full((3,), 0.2, dtype=torch.float64)
    cfg = dict(rounds=2, local_iters=3, n_features=200, seed=0)
    # gamma = 0: the global surrogate never enters, so the RFF lengthscale cannot change the iterates.
    a = FZooS(clients, FZooSConfig(gamma=0.0, **cfg)).run(x0)
    b = FZooS(clients, FZooSConfig(gamma=0.0, rff_lengthscale=0.3, **cfg)).run(x0)
    torch.testing.assert_close(a.x[-1], b.x[-1])
    c = FZooS(clients, FZooSConfig(**cfg)).run(x0)
    assert not torch.allclose(a.x[-1], c.x[-1])  # with the correction on, the global surrogate matters


@pytest.mark.parametrize("heterogeneity", [0.0, 0.5])
def test_correction_estimates_the_client_drift(heterogeneity):
    clients, _ = make_quadratic_clients(d=4, n_clients=3, heterogeneity=heterogeneity, seed=0)
    opt = FZooS(clients, FZooSConfig(rounds=2, local_iters=3, n_features=500, seed=0))
    x = opt.run(torch.full((4,), 0.2, dtype=torch.float64)).x[-1]
    grads = [2 * c.a * (x - c.c) for c in clients]
    drift = sum(grads) / 3 - grads[0]  # grad F - grad f_0: what the correction should supply
    assert (opt.correction(0, x) - drift).norm() <= 0.1 * drift.norm() + 1e-3


def test_identical_clients_need_no_correction():
    clients, _ = make_quadratic_clients(d=4, n_clients=1, seed=3)
    opt = FZooS(clients * 3, FZooSConfig(rounds=2, local_iters=3, n_features=500, seed=0))
    x = opt.run(torch.full((4,), 0.2, dtype=torch.float64)).x[-1]
    grad = 2 * clients[0].a * (x - clients[0].c)
    for i in range(3):
        assert opt.correction(i, x).norm() <= 0.05 * grad.norm()


@pytest.mark.parametrize("method", ["fzoos", "fedzo"])
def test_methods_improve_and_count_queries(method):
    clients, F_star = make_quadratic_clients(d=4, n_clients=3, seed=2)
    x0 = torch.full((4,), 0.05, dtype=torch.float64)
    if method == "fzoos":
        cfg = FZooSConfig(rounds=3, local_iters=4, n_features=300, seed=0)
        result = FZooS(clients, cfg).run(x0)
        per_round = 3 * (cfg.local_iters + cfg.n_active * (cfg.local_iters - 1) + cfg.n_round_queries)
        assert result.queries[0] == 3 * cfg.n_inits
        assert result.floats_sent[-1] == 3 * 2 * 3 * (4 + 300)
    else:
        cfg = FedZOConfig(rounds=3, local_iters=4, seed=0)
        result = FedZO(clients, cfg).run(x0)
        per_round = 3 * cfg.local_iters * (cfg.n_directions + 1)
        assert result.queries[0] == 0
    assert [b - a for a, b in zip(result.queries, result.queries[1:])] == [per_round] * 3
    assert result.messages[-1] == (12 if method == "fzoos" else 6) * 3
    assert result.F[-1] - F_star < 0.8 * (result.F[0] - F_star)
    assert result.queries_to_reach(result.F[-1]) == result.queries[-1]


def test_invalid_configs():
    with pytest.raises(ConfigError):
        FZooSConfig(rounds=0, n_active=200)
    with pytest.raises(ConfigError):
        FedZOConfig(mu=0.0)
