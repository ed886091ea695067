"""Named mixed search spaces: the maps to the unit cube, model features and `{name: value}` dicts, and their checks."""

from __future__ import annotations

import math

import pytest
import torch

from rlsurrogate.blackbox import Categorical, Dim, Float, Integer, SearchSpace
from rlsurrogate.errors import ConfigError

SPACE = SearchSpace(
    [
        Float("lr", 1e-5, 1e-1, log=True),
        Float("momentum", 0.0, 0.99),
        Float("dropout", 0.0, 0.5, step=0.1),
        Integer("layers", 1, 8),
        Integer("units", 16, 1024, log=True),
        Integer("batch", 16, 128, step=16),
        Categorical("act", ["relu", "gelu", None, 3.5, True]),
    ]
)


def random_points(n: int, seed: int = 0) -> torch.Tensor:
    U = torch.rand(n, SPACE.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return SPACE.from_unit(U)


def test_unit_cube_round_trip_and_valid_values():
    X = random_points(2000)
    torch.testing.assert_close(SPACE.from_unit(SPACE.to_unit(X)), X)
    U = SPACE.to_unit(X)
    assert ((U > 0) & (U < 1)).all()
    lo, hi = SPACE.bounds
    assert ((X >= lo) & (X <= hi)).all()
    grid = (X[:, 2] / 0.1 - (X[:, 2] / 0.1).round()).abs()
    assert grid.max() < 1e-9 and torch.equal(X[:, 3:6], X[:, 3:6].round()) and (X[:, 5] % 16 == 0).all()


def test_log_scale_spreads_values_evenly_in_the_log():
    u = torch.linspace(0, 1, 5, dtype=torch.float64).unsqueeze(-1).expand(-1, SPACE.dim)
    lr = SPACE.from_unit(u)[:, 0]
    torch.testing.assert_close(lr.log10(), torch.tensor([-5.0, -4.0, -3.0, -2.0, -1.0], dtype=torch.float64))


@pytest.mark.parametrize(("dim", "values"), [(3, range(1, 9)), (4, range(16, 1025)), (5, range(16, 129, 16))])
def test_every_discrete_value_is_reachable_from_its_cell(dim, values):
    u = torch.linspace(0, 1, 20001, dtype=torch.float64).unsqueeze(-1).expand(-1, SPACE.dim)
    reached = set(SPACE.from_unit(u)[:, dim].long().tolist())
    assert reached == set(values)


def test_one_hot_features_and_back():
    X = random_points(500, seed=1)
    U = SPACE.to_unit(X)
    F = SPACE.one_hot(U)
    assert F.shape == (500, SPACE.n_features) and SPACE.n_features == 6 + 5
    torch.testing.assert_close(F[:, 6:].sum(-1), torch.ones(500, dtype=torch.float64))
    torch.testing.assert_close(SPACE.from_one_hot(F), U)
    relaxed = F.clone()
    relaxed[:, 6:] = relaxed[:, 6:] * 0.6 + 0.1  # a relaxed one-hot block keeps its argmax
    torch.testing.assert_close(SPACE.from_one_hot(relaxed), U)


def test_decode_and_encode_are_inverse_with_python_types():
    X = random_points(50, seed=2)
    rows = SPACE.decode(X)
    for row in rows:
        assert isinstance(row["lr"], float) and type(row["layers"]) is int and type(row["units"]) is int
        assert row["act"] in ["relu", "gelu", None, 3.5, True]
    torch.testing.assert_close(SPACE.encode(rows), X)
    torch.testing.assert_close(SPACE.encode(rows[0]), X[:1])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lr": 0.01}, "missing \\['k'\\]"),
        ({"lr": 0.01, "k": 1, "extra": 1}, "unknown \\['extra'\\]"),
        ({"lr": "fast", "k": 1}, "finite number"),
        ({"lr": float("nan"), "k": 1}, "finite number"),
        ([{"lr": 0.5, "k": 1}, 3], "must be a"),
    ],
)
def test_encode_refuses_bad_params(params, match):
    space = SearchSpace([Float("lr", 0.0, 1.0), Integer("k", 0, 3)])
    with pytest.raises(ConfigError, match=match):
        space.encode(params)


def test_encode_refuses_an_unknown_choice_and_matches_types():
    space = SearchSpace([Categorical("c", [1, "1", True])])
    torch.testing.assert_close(
        space.encode([{"c": 1}, {"c": "1"}, {"c": True}]).squeeze(-1), torch.arange(3.0).double()
    )
    with pytest.raises(ConfigError, match="not one of the choices"):
        space.encode({"c": 2})


def test_json_form_round_trips():
    spec = SPACE.to_dict()
    assert spec["lr"] == {"type": "float", "low": 1e-5, "high": 0.1, "log": True}
    assert spec["batch"] == {"type": "int", "low": 16, "high": 128, "step": 16}
    assert SearchSpace.from_dict(spec) == SPACE


@pytest.mark.parametrize(
    ("dims", "match"),
    [
        ([Float("lr", 0.0, 1.0, log=True)], "log-scaled dim needs low > 0"),
        ([Float("x", 0.0, 1.0, step=0.3)], "not a multiple"),
        ([Float("x", 1e-3, 1.0, log=True, step=0.1)], "takes no step"),
        ([Integer("k", 0, 10, step=2.5)], "whole number"),
        ([Float("x", 0.0, 1.0), Integer("x", 0, 3)], "used by 2 dims"),
        ([Categorical("c", ["a", "a"])], "duplicates"),
        ([Categorical("c", [])], "at least one choice"),
        ([Categorical("c", [[1, 2]])], "str, int, float, bool or None"),
        ([Dim("", 0.0, 1.0)], "non-empty string"),
    ],
)
def test_invalid_dims_are_named_with_a_fix(dims, match):
    with pytest.raises(ConfigError, match=match):
        SearchSpace(dims)


def test_categorical_needs_a_list():
    with pytest.raises(ConfigError, match="list of values"):
        Categorical("c", "abc")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({}, "non-empty"),
        ({"lr": {"low": 0, "high": 1}}, "needs 'type'"),
        ({"lr": {"type": "float", "low": 0}}, "needs 'low' and 'high'"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "lgo": True}}, "unknown keys"),
        ({"c": {"type": "categorical", "choices": "ab"}}, "list of values"),
    ],
)
def test_from_dict_refuses_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        SearchSpace.from_dict(spec)


def test_integer_log_cells_follow_the_log_scale():
    space = SearchSpace([Integer("k", 1, 100, log=True)])
    u = torch.linspace(0, 1, 100001, dtype=torch.float64).unsqueeze(-1)
    counts = torch.bincount(space.from_unit(u).squeeze(-1).long(), minlength=101)[1:]
    share = counts.double() / counts.sum()
    expected = torch.tensor([math.log((k + 0.5) / (k - 0.5)) for k in range(1, 101)], dtype=torch.float64) / math.log(
        100.5 / 0.5
    )
    torch.testing.assert_close(share, expected, atol=2e-4, rtol=0)
