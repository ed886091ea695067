"""Multi-fidelity BO: cost accounting, fidelity handling and the cost-aware acquisitions."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.blackbox import get_benchmark
from rlsurrogate.blackbox.multi_fidelity import MultiFidelityBO, fidelity_cost
from rlsurrogate.errors import ConfigError

FAST = {"num_fantasies": 2, "num_restarts": 1, "raw_samples": 16}


def test_cost_model_is_affine():
    s = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(fidelity_cost(s, 0.1), torch.tensor([0.1, 0.6, 1.1], dtype=torch.float64))


def test_cost_spent_sums_every_told_evaluation():
    f = get_benchmark("mf_branin")
    opt = MultiFidelityBO(f.bounds, fidelity_dim=2, fixed_cost=f.fixed_cost, maximize=False, n_init=4, **FAST)
    X = opt.ask(4)
    opt.tell(X, f(X))
    assert opt.cost_spent == pytest.approx(float(f.cost(X).sum()))
    X2 = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.25]], dtype=torch.float64)
    opt.tell(X2, f(X2))
    assert opt.cost_spent == pytest.approx(float(f.cost(X).sum()) + 1.1 + 0.35)


@pytest.mark.parametrize("acquisition", ["mfkg", "mfmes"])
def test_model_based_step_and_recommendation(acquisition):
    f = get_benchmark("mf_branin")
    opt = MultiFidelityBO(
        f.bounds, fidelity_dim=2, fixed_cost=f.fixed_cost, maximize=False, n_init=6, acquisition=acquisition, **FAST
    )
    X = opt.ask(6)
    opt.tell(X, f(X))
    x = opt.ask(1)
    assert x.shape == (1, 3) and ((x >= f.bounds[0]) & (x <= f.bounds[1])).all()
    rec = opt.recommend()
    assert rec.shape == (3,) and float(rec[2]) == 1.0  # recommendations are at the target fidelity


def test_failed_hyperparameter_fit_still_gives_a_model_based_step(monkeypatch):
    from botorch.exceptions.errors import ModelFittingError

    def failing_fit(*args, **kwargs):
        raise ModelFittingError("All attempts to fit the model have failed.")

    f = get_benchmark("mf_branin")
    opt = MultiFidelityBO(f.bounds, fidelity_dim=2, fixed_cost=f.fixed_cost, maximize=False, n_init=6, **FAST)
    X = opt.ask(6)
    opt.tell(X, f(X))
    monkeypatch.setattr("botorch.fit.fit_gpytorch_mll", failing_fit)
    with pytest.warns(UserWarning, match="GP hyper-parameter fit failed") as record:
        x = opt.ask(1)
    assert not any("using a Sobol point" in str(w.message) for w in record)
    assert x.shape == (1, 3) and ((x >= f.bounds[0]) & (x <= f.bounds[1])).all()


def test_best_prefers_target_fidelity_observations():
    opt = MultiFidelityBO([[0.0, 0.0], [1.0, 1.0]], maximize=False, n_init=2, **FAST)
    opt.tell(torch.tensor([[0.2, 0.0]]), [-5.0])  # low fidelity, looks better
    assert opt.best()[1] == -5.0  # nothing at target fidelity yet: fall back to all observations
    opt.tell(torch.tensor([[0.3, 1.0]]), [1.0])
    assert opt.best()[1] == 1.0


def test_invalid_arguments_raise():
    with pytest.raises(ConfigError) as err:
        MultiFidelityBO([[0.0, 0.0], [1.0, 1.0]], fidelity_dim=5, fixed_cost=0.0, acquisition="mfucb")
    assert len(err.value.problems) == 3
