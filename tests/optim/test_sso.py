from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlsurrogate.errors import ConfigError
from rlsurrogate.optim.sso import SSO, target_armijo_step_size, target_step, target_surrogate


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: extra threads only add contention on shared CI cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _logistic_data(n: int = 40, d: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = (
        X @ torch.randn(d, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
        > 0
    ).double()
    return X, y


def _logistic_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(z, y, reduction="sum")


def _anchor(theta_t: torch.Tensor, X: torch.Tensor, loss_fn):
    z_t = (X @ theta_t).detach().requires_grad_()
    loss_t = loss_fn(z_t)
    (G,) = torch.autograd.grad(loss_t, z_t)
    return z_t.detach(), G, loss_t.detach()


@pytest.mark.parametrize("seed", range(3))
def test_surrogate_majorises_logistic_loss_and_touches_at_anchor(seed):
    X, y = _logistic_data(seed=seed)
    g = torch.Generator().manual_seed(10 + seed)
    theta_t = torch.randn(5, generator=g, dtype=torch.float64)
    z_t, G, loss_t = _anchor(theta_t, X, lambda z: _logistic_loss(z, y))
    eta = 4.0  # logistic loss is 1/4-smooth per example
    torch.testing.assert_close(target_surrogate(X @ theta_t, z_t, G, loss_t, eta), loss_t)
    thetas = theta_t + 3 * torch.randn(200, 5, generator=g, dtype=torch.float64)
    for theta in thetas:
        z = X @ theta
        assert target_surrogate(z, z_t, G, loss_t, eta) >= _logistic_loss(z, y) - 1e-9


def test_surrogate_majorises_squared_loss_and_fails_when_eta_too_large():
    X, _ = _logistic_data()
    y = torch.randn(40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def loss_fn(z):
        return (z - y).pow(2).sum()  # 2-smooth: the bound needs eta <= 1/2

    theta_t = torch.zeros(5, dtype=torch.float64)
    z_t, G, loss_t = _anchor(theta_t, X, loss_fn)
    g = torch.Generator().manual_seed(4)
    thetas = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(50)]
    assert all(target_surrogate(X @ t, z_t, G, loss_t, 0.5) >= loss_fn(X @ t) - 1e-9 for t in thetas)
    assert any(target_surrogate(X @ t, z_t, G, loss_t, 2.0) < loss_fn(X @ t) for t in thetas)


def test_surrogate_gradient_at_anchor_is_the_loss_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    X, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    z_t = model(X).detach().requires_grad_()
    loss_t = F.cross_entropy(z_t, y, reduction="sum")
    (G,) = torch.autograd.grad(loss_t, z_t)
    sur_grads = torch.autograd.grad(
        target_surrogate(model(X), z_t.detach(), G, loss_t.detach(), 0.3), list(model.parameters())
    )
    true_grads = torch.autograd.grad(F.cross_entropy(model(X), y, reduction="sum"), list(model.parameters()))
    for a, b in zip(sur_grads, true_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("eta", [0.1, 1.0, 5.0])
def test_one_gd_inner_step_equals_an_sgd_step(eta):
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    ref = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    ref.load_state_dict(ours.state_dict())
    X, y = torch.randn(12, 4, dtype=torch.float64), torch.randint(0, 3, (12,))
    alpha = 0.05
    sso = SSO(ours.parameters(), target_lr=eta, inner_steps=1, inner_optimizer="gd", inner_lr=alpha)
    sgd = torch.optim.SGD(ref.parameters(), lr=alpha * 2 * eta / (12 * 3))  # the surrogate's 2 eta / numel(z) scale
    for _ in range(3):
        sso.step(lambda: ours(X), lambda z: F.cross_entropy(z, y))
        sgd.zero_grad()
        F.cross_entropy(ref(X), y).backward()
        sgd.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)
    assert sso.counts["grad_calls"] == 3


def test_exact_inner_solve_is_least_squares_projection_of_target_step():
    X, y = _logistic_data(n=30, d=4)
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    z_t, G, _ = _anchor(theta.detach(), X, lambda z: _logistic_loss(z, y))
    eta = 1.0
    expected = torch.linalg.lstsq(X, target_step(z_t, G, eta).unsqueeze(-1)).solution.squeeze(-1)
    opt = SSO([theta], target_lr=eta, inner_steps=500, inner_optimizer="armijo", inner_tol=1e-10)
    opt.step(lambda: X @ theta, lambda z: _logistic_loss(z, y))
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eta", [1.0, 50.0])
def test_full_batch_mm_decreases_monotonically(eta):
    X, y = _logistic_data(n=60, d=6, seed=1)
    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = SSO([theta], target_lr=eta, inner_steps=20, majorize_minimize=True)
    losses = [float(opt.step(lambda: X @ theta, lambda z: _logistic_loss(z, y))) for _ in range(15)]
    assert all(b <= a + 1e-10 for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.7 * losses[0]


def test_target_line_search_accepts_an_armijo_step():
    X, y = _logistic_data()
    z_t, G, loss_t = _anchor(torch.zeros(5, dtype=torch.float64), X, lambda z: _logistic_loss(z, y))
    eta, n = target_armijo_step_size(lambda z: _logistic_loss(z, y), z_t, G, loss_t, eta0=1e3, c=0.1)
    assert n > 1 and eta < 1e3
    assert _logistic_loss(target_step(z_t, G, eta), y) <= loss_t - 0.1 * eta * G.pow(2).sum()
    # The previous (larger) candidate eta / 0.9 failed the condition.
    assert _logistic_loss(target_step(z_t, G, eta / 0.9), y) > loss_t - 0.1 * (eta / 0.9) * G.pow(2).sum()


@pytest.mark.parametrize("inner", ["armijo", "adam", "gd"])
@pytest.mark.parametrize("line_search", [False, True])
def test_stochastic_sso_reduces_training_loss(inner, line_search):
    X, y = _logistic_data(n=120, d=5, seed=2)
    theta = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    lr = {"armijo": 10.0, "adam": 0.1, "gd": 0.5}[inner]
    opt = SSO(
        [theta], target_lr=1.0, inner_steps=5, inner_optimizer=inner, inner_lr=lr, target_line_search=line_search
    )
    g = torch.Generator().manual_seed(0)
    start = _logistic_loss(X @ theta.detach(), y).item()
    for _ in range(30):
        idx = torch.randperm(120, generator=g)[:20]
        opt.step(lambda idx=idx: X[idx] @ theta, lambda z, idx=idx: _logistic_loss(z, y[idx]))
    assert _logistic_loss(X @ theta.detach(), y).item() < 0.8 * start
    assert opt.counts["grad_calls"] == 30


def test_invalid_arguments():
    with pytest.raises(ConfigError) as err:
        SSO([torch.zeros(1, requires_grad=True)], target_lr=-1, inner_steps=0, inner_optimizer="lbfgs")
    assert len(err.value.problems) == 3
