"""The GP surrogate: `CachedPosteriorGP` gives GPyTorch's posterior (and BoTorch's acquisition values and gradients)
from cached factors, for both priors; a model it does not mirror is handed back as None."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.blackbox.gp import CachedPosteriorGP, fit_gp


def data(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    U = torch.rand(n, d, generator=gen, dtype=torch.float64)
    return U, torch.sin(5 * U[:, 0]) + U[:, 1:].pow(2).sum(-1) * 3.0 + 10.0


@pytest.mark.parametrize("gp_prior", ["gamma", "dim_scaled"])
@pytest.mark.parametrize("n", [8, 60])
def test_cached_posterior_matches_gpytorch(gp_prior, n):
    U, Y = data(n, 3)
    model = fit_gp(U, Y, gp_prior=gp_prior)
    cached = CachedPosteriorGP.from_model(model)
    assert cached is not None
    X = torch.cat([torch.rand(40, 1, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64), U[:5, None]])
    ours, theirs = cached.posterior(X), model.posterior(X)
    torch.testing.assert_close(ours.mean, theirs.mean, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours.variance, theirs.variance.clamp_min(1e-12), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("gp_prior", ["gamma", "dim_scaled"])
def test_log_ei_and_its_gradient_match_on_the_cached_posterior(gp_prior):
    from botorch.acquisition import LogExpectedImprovement

    U, Y = data(30, 4, seed=2)
    model = fit_gp(U, Y, gp_prior=gp_prior)
    cached = CachedPosteriorGP.from_model(model)
    X = torch.rand(16, 1, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grads = []
    for m in (model, cached):
        Xg = X.clone().requires_grad_(True)
        value = LogExpectedImprovement(m, Y.max())(Xg)
        (grad,) = torch.autograd.grad(value.sum(), Xg)
        grads.append((value.detach(), grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-8)


def test_written_out_gradient_passes_gradcheck():
    U, Y = data(12, 3, seed=4)
    cached = CachedPosteriorGP.from_model(fit_gp(U, Y))
    X = torch.rand(5, 1, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64).requires_grad_(True)

    def moments(X):
        post = cached.posterior(X)
        return post.mean, post.variance

    assert torch.autograd.gradcheck(moments, (X,))


def test_gradient_is_finite_at_a_training_point():
    U, Y = data(10, 2)
    cached = CachedPosteriorGP.from_model(fit_gp(U, Y))
    X = U[:1].unsqueeze(0).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(cached.posterior(X).mean.sum(), X)
    assert torch.isfinite(grad).all()


def test_other_models_are_not_mirrored():
    from botorch.models import SingleTaskGP
    from gpytorch.kernels import PeriodicKernel

    U, Y = data(8, 2)
    model = SingleTaskGP(U, Y.unsqueeze(-1), covar_module=PeriodicKernel()).eval()
    assert CachedPosteriorGP.from_model(model) is None


def test_one_hot_prior_shares_information_with_an_unseen_category():
    """With one-hot columns marked, a category never observed is predicted from the others (correlation across a
    change of category ~0.5 at the prior mode); under the unit-cube prior (mode 1/3) it stays near the prior mean."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, generator=gen, dtype=torch.float64)
    choice = torch.arange(24) % 2  # categories 0 and 1 observed, 2 never
    F = torch.cat([x, torch.nn.functional.one_hot(choice, 3).double()], dim=1)
    y = torch.sin(6 * x[:, 0])  # the same function in every category
    grid = torch.linspace(0.05, 0.95, 19, dtype=torch.float64).unsqueeze(-1)
    unseen = torch.cat([grid, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(19, 3)], dim=1)
    truth = torch.sin(6 * grid[:, 0])
    errors = {}
    for marked in (True, False):
        columns = torch.tensor([False, True, True, True]) if marked else None
        model = fit_gp(F, y, categorical_columns=columns)
        with torch.no_grad():
            errors[marked] = float((model.posterior(unseen).mean.squeeze(-1) - truth).abs().mean())
    constant = float((truth - y.mean()).abs().mean())  # the error of predicting the prior mean
    assert errors[False] > 0.8 * constant, (errors, constant)
    assert errors[True] < 0.7 * errors[False], (errors, constant)


def test_mixed_model_lengthscale_prior_has_mode_one_on_the_other_columns():
    """In a model with one-hot columns the continuous columns' prior has its mode at 1 (GPSampler's), not 1/3: from a
    few points of a smooth function the fitted lengthscale is pulled towards the mode of the prior in force."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, generator=gen, dtype=torch.float64)
    F = torch.cat([x, torch.nn.functional.one_hot(torch.arange(8) % 3, 3).double()], dim=1)
    y = torch.sin(3 * x[:, 0])
    fitted = {}
    for marked in (True, False):
        columns = torch.tensor([False, True, True, True]) if marked else None
        kernel = fit_gp(F, y, categorical_columns=columns).covar_module.base_kernel
        fitted[marked] = float(kernel.lengthscale.reshape(-1)[0])
    assert 0.6 < fitted[True] < 2.0, fitted
    assert fitted[False] < 0.5 * fitted[True], fitted
