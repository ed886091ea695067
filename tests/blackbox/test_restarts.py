"""Restarts of a stalled BO search: the stall rule, what each restart owns, the basins it avoids, and how
BayesianOptimization uses them."""

from __future__ import annotations

import math

import pytest
import torch

import rlsurrogate.blackbox.bo as bo
from rlsurrogate.blackbox.bo import BayesianOptimization, _AvoidBasins
from rlsurrogate.blackbox.restarts import current_restart
from rlsurrogate.errors import ConfigError

FAST = {"num_restarts": 2, "raw_samples": 64, "local_samples": 16}


def _restart(values, n_init=2, window=3, polish_every=4, tol=1e-3):
    """(start, owned) of `current_restart`."""
    return current_restart(values, n_init=n_init, window=window, polish_every=polish_every, tol=tol)[:2]


def test_a_search_that_keeps_improving_never_restarts():
    values = [0.0, 1.0, 1.5, 2.0, 3.0, 3.5, 4.0, 4.2]
    assert _restart(values) == (None, list(range(8)))


def test_a_stall_is_window_evaluations_without_improvement():
    # window 3: after the 6th value the best of the last three (2.0) is no better than the best before (2.0)
    assert _restart([0.0, 1.0, 2.0, 2.0, 1.0, 2.0]) == (6, [])
    assert _restart([0.0, 1.0, 2.0, 2.0, 1.0]) == (None, [0, 1, 2, 3, 4])  # too few values to tell
    assert _restart([0.0, 1.0, 2.0, 2.0, 1.0, 2.5]) == (None, [0, 1, 2, 3, 4, 5])


def test_improvement_counts_above_tol_times_the_observed_range():
    flat = [0.0, 1.0, 2.0, 2.0, 2.0]  # tol 0.1: the margin is a tenth of the range, 2.15 or 2.3 with the last value
    assert _restart([*flat, 2.15], tol=0.1)[0] == 6
    assert _restart([*flat, 2.3], tol=0.1)[0] is None


def test_a_restart_owns_its_design_and_all_but_every_polish_everyth_proposal():
    stalled = [0.0, 1.0, 2.0, 2.0, 1.0, 2.0]  # the restart starts at observation 6
    later = [0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9, 2.1, 2.3]  # improving: no second restart
    start, owned = _restart(stalled + later, n_init=2, polish_every=4)
    # j = 0, 1: design; then j - 2 = 3 and 7 (observations 11 and 15) are the polishing proposals
    assert start == 6
    assert owned == [6, 7, 8, 9, 10, 12, 13, 14]


def test_a_restart_that_stalls_is_replaced_and_infeasible_values_never_stall():
    stalled = [0.0, 1.0, 2.0, 2.0, 1.0, 2.0]
    again = [0.5, 0.6, 0.6, 0.6, 0.6, 0.6]  # the restart owns j = 0 ... 4 and has stalled at j = 4
    assert _restart(stalled + again, polish_every=4) == (11, [11])
    infeasible = [-math.inf] * 12
    assert _restart(infeasible) == (None, list(range(12)))


def test_each_search_that_stalled_leaves_its_incumbent_as_a_basin_to_avoid():
    stalled = [0.0, 1.0, 2.0, 2.0, 1.0, 2.0]  # the first search's best is its first 2.0 (observation 2)
    assert current_restart(stalled, n_init=2, window=3, polish_every=4).stalled == [2]
    again = [0.5, 0.6, 0.6, 0.6, 0.6, 0.6]  # the restart's best, 0.6, first at observation 7; it stalls at 10
    assert current_restart(stalled + again, n_init=2, window=3, polish_every=4).stalled == [2, 7]
    assert current_restart([0.0, 1.0, 1.5, 2.0], n_init=2, window=3, polish_every=4).stalled == []


def _told(opt, values):
    X = torch.rand(len(values), 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opt.tell(X, torch.tensor(values, dtype=torch.float64))
    return X


def test_after_a_stall_bo_asks_the_restarts_design_then_fits_its_own_points():
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, stall_window=4, **FAST)
    values = [0.1, 0.5, 0.9, 0.3, 0.2, 0.4, 0.1, 0.8]  # 0.9 at the 3rd: 4 values without improvement after 5
    assert current_restart(values, n_init=3, window=4, polish_every=4) == (7, [7], [2])
    _told(opt, values[:7])
    design = opt.ask(1)  # the restart's first design point: a Sobol point, no model
    assert opt.model is None
    again = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, stall_window=4, **FAST)
    _told(again, values[:7])
    torch.testing.assert_close(again.ask(1), design)  # a function of the observations: a resumed run agrees
    f = lambda X: -((X - 0.7) ** 2).sum(-1)  # noqa: E731
    opt.tell(design, f(design))
    for _ in range(2):
        x = opt.ask(1)
        opt.tell(x, f(x))
    assert opt.model is None  # the three design points of the restart
    seen = []
    for _ in range(4):
        x = opt.ask(1)
        seen.append(opt.model.train_inputs[0].shape[0])
        opt.tell(x, f(x))
    # the restart's GP sees its own 3, 4, 5 points; the 4th proposal after its design polishes with every point
    assert seen == [3, 4, 5, 13]


def test_a_restarts_design_point_that_failed_or_is_pending_is_not_asked_again():
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, stall_window=4, **FAST)
    _told(opt, [0.1, 0.5, 0.9, 0.3, 0.2, 0.4, 0.1])
    first = opt.ask(1)
    second = opt.ask(1)  # the first is pending
    opt.tell(first, [math.nan])
    third = opt.ask(1)  # the first failed, the second is pending
    assert opt.model is None  # all three from the restart's design
    points = torch.cat([first, second, third])
    assert torch.cdist(points, points).add(torch.eye(3)).min() > 1e-3


def test_without_restarts_the_gp_always_sees_every_observation():
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, stall_window=None, **FAST)
    _told(opt, [0.1, 0.5, 0.9, 0.3, 0.2, 0.4, 0.1, 0.2])
    opt.ask(1)
    assert opt.model.train_inputs[0].shape[0] == 8


def test_restart_arguments_are_checked():
    with pytest.raises(ConfigError) as err:
        BayesianOptimization([[0.0], [1.0]], stall_window=0, polish_every=1)
    assert len(err.value.problems) == 2


def test_by_default_only_a_space_of_plain_floats_restarts():
    from rlsurrogate.blackbox import Categorical, Float, Integer, SearchSpace

    floats = SearchSpace([Float("lr", 1e-4, 1e-1, log=True), Float("momentum", 0.0, 1.0)])
    assert BayesianOptimization(floats).stall_window == 10
    for extra in (Integer("layers", 1, 4), Float("dropout", 0.0, 0.5, step=0.1), Categorical("opt", ["sgd", "adam"])):
        assert BayesianOptimization(SearchSpace([*floats.dims, extra])).stall_window is None
    assert BayesianOptimization(SearchSpace([*floats.dims, Integer("layers", 1, 4)]), stall_window=7).stall_window == 7
    with pytest.raises(ConfigError, match="stall_window"):
        BayesianOptimization(floats, stall_window="sometimes")


def test_the_basin_penalty_is_a_bump_of_the_gp_lengthscales_around_each_old_incumbent():
    centres, lengthscale = torch.tensor([[0.2, 0.2], [0.8, 0.5]], dtype=torch.float64), torch.tensor([0.05, 0.4])
    flat = lambda X: torch.full(X.shape[:-2], -3.0, dtype=X.dtype)  # noqa: E731
    X = torch.tensor([[[0.2, 0.2]], [[0.25, 0.2]], [[0.2, 0.6]], [[0.5, 0.5]]], dtype=torch.float64)  # b x 1 x 2
    log_penalised = _AvoidBasins(flat, centres, lengthscale, log_values=True)(X)
    expected_bump = torch.tensor([1.0, math.exp(-0.5), math.exp(-0.5), 0.0], dtype=torch.float64)  # 0, 1, 1, 6 away
    torch.testing.assert_close(-3.0 - log_penalised, bo._BASIN_PENALTY * expected_bump, atol=1e-3, rtol=1e-6)
    positive = lambda X: torch.full(X.shape[:-2], 0.5, dtype=X.dtype)  # noqa: E731
    scaled = _AvoidBasins(positive, centres, lengthscale, log_values=False)(X)
    torch.testing.assert_close(scaled.log(), math.log(0.5) - bo._BASIN_PENALTY * expected_bump, atol=1e-3, rtol=1e-6)
    Z = X.clone().requires_grad_(True)
    _AvoidBasins(flat, centres, lengthscale, log_values=True)(Z).sum().backward()
    assert torch.isfinite(Z.grad).all() and Z.grad[1].abs().sum() > 0  # L-BFGS-B is pushed out of the basin


def _restart_proposal(penalty: float, monkeypatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first model-based proposal of a restart whose own points rise towards the first search's incumbent."""
    monkeypatch.setattr(bo, "_BASIN_PENALTY", penalty)
    opt = BayesianOptimization([[0.0, 0.0], [1.0, 1.0]], seed=0, n_init=3, stall_window=4, polish_every=100)
    old = torch.tensor([0.25, 0.25], dtype=torch.float64)
    X = torch.tensor([[0.9, 0.9], [0.6, 0.1], [0.25, 0.25], [0.1, 0.8], [0.8, 0.4], [0.5, 0.7], [0.4, 0.95]])
    opt.tell(X.double(), torch.tensor([0.1, 0.5, 1.0, 0.3, 0.2, 0.4, 0.1], dtype=torch.float64))  # stalls at 7
    bump = lambda X: torch.exp(-((X - old) ** 2).sum(-1) / 0.1)  # noqa: E731  the restart sees the same basin
    for _ in range(5):  # the restart's design (3 points), then two of its own proposals
        x = opt.ask(1)
        opt.tell(x, bump(x))
    x = opt.ask(1)
    assert opt.model.train_inputs[0].shape[0] == 5  # a restart's proposal: its GP sees its own points
    basins = opt._basins([2])
    assert basins is not None
    return x.reshape(-1), old, basins[1]


def test_a_restart_proposes_away_from_the_basin_of_the_search_that_stalled(monkeypatch):
    x, old, lengthscale = _restart_proposal(bo._BASIN_PENALTY, monkeypatch)
    assert ((x - old) / lengthscale).norm() > 1.5
    x_free, _, _ = _restart_proposal(0.0, monkeypatch)  # without the penalty it climbs back to the old incumbent
    assert ((x_free - old) / lengthscale).norm() < ((x - old) / lengthscale).norm() - 0.5
