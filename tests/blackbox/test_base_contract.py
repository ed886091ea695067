"""Contract suite every registered surrogate optimizer passes (STYLE.md §11, in the spirit of Optuna's sampler tests).

Shapes and bounds, determinism under a seed, improvement on a 2-D quadratic, the `maximize` flag, and that a saved
and reloaded optimizer continues exactly like the uninterrupted one (from `save` and from the JSON state). Named
mixed spaces (log floats, stepped floats, log integers, categoricals) round-trip as `{name: value}` dicts; failed
evaluations (NaN / None) are kept and skipped; points asked and not told are pending and survive a save; outcome
constraints decide `best()`. Then the input checks: bad `tell` / `ask` input and bad constructor arguments raise a
one-line `ConfigError` and change nothing, and `load` refuses files that would run code, damaged files and states
of another kind or dimension, while states saved before the format was versioned still load.
"""

from __future__ import annotations

import json
import math
import os
import pickle

import pytest
import torch

from rlsurrogate.blackbox import OPTIMIZERS, Categorical, Dim, Float, Integer, SearchSpace
from rlsurrogate.blackbox.base import state_from_json, state_to_json
from rlsurrogate.errors import ConfigError

BOUNDS_2D = [[-1.0, -1.0], [1.0, 1.0]]
BOUNDS_MF = [[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]]  # the last dimension is the fidelity
CENTRE = torch.tensor([0.3, -0.2], dtype=torch.float64)

# Small settings so each optimizer takes a fraction of a second per step; `bounds` lets a test change the space.
FACTORIES = {
    "random": lambda bounds=BOUNDS_2D, **kw: OPTIMIZERS.get("random")(bounds, **kw),
    "bo": lambda bounds=BOUNDS_2D, **kw: OPTIMIZERS.get("bo")(
        bounds, n_init=4, num_restarts=2, raw_samples=64, local_samples=16, **kw
    ),
    "mfbo": lambda bounds=BOUNDS_MF, **kw: OPTIMIZERS.get("mfbo")(
        bounds, n_init=5, num_fantasies=2, num_restarts=1, raw_samples=16, **kw
    ),
    "neural_ucb": lambda bounds=BOUNDS_2D, **kw: OPTIMIZERS.get("neural_ucb")(
        bounds, n_domain=512, n_init=4, train_steps=300, n_eval=256, **kw
    ),
    "neural_ts": lambda bounds=BOUNDS_2D, **kw: OPTIMIZERS.get("neural_ts")(
        bounds, n_domain=512, n_init=4, train_steps=300, n_eval=256, **kw
    ),
}
# Multi-fidelity KG takes seconds per step on a CPU, so its long improvement run is in the slow suite.
IMPROVE = [pytest.param(n, marks=pytest.mark.slow) if n == "mfbo" else n for n in sorted(FACTORIES)]


def quadratic(X: torch.Tensor) -> torch.Tensor:
    """`n x d` -> `n`: squared distance of the first two coordinates to CENTRE (extra dims, e.g. fidelity, ignored)."""
    return ((X[..., :2] - CENTRE) ** 2).sum(-1)


def run(opt, steps: int, batch: int = 1) -> torch.Tensor:
    for _ in range(steps):
        X = opt.ask(batch)
        opt.tell(X, quadratic(X))
    return opt.X


def test_every_registered_optimizer_is_covered():
    assert set(OPTIMIZERS.names()) == set(FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shapes_and_bounds(name):
    opt = FACTORIES[name](maximize=False, seed=0)
    d = opt.space.dim
    for batch in (3, 1, 2):  # initial design, then model-based batches
        X = opt.ask(batch)
        assert X.shape == (batch, d) and X.dtype == torch.float64
        lo, hi = opt.space.bounds
        assert ((X >= lo) & (X <= hi)).all()
        opt.tell(X, quadratic(X))
    x_best, y_best = opt.best()
    assert x_best.shape == (d,) and isinstance(y_best, float)
    assert y_best == pytest.approx(float(quadratic(x_best.unsqueeze(0))))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_deterministic_under_seed(name):
    X1 = run(FACTORIES[name](maximize=False, seed=3), steps=6)
    X2 = run(FACTORIES[name](maximize=False, seed=3), steps=6)
    X3 = run(FACTORIES[name](maximize=False, seed=4), steps=6)
    torch.testing.assert_close(X1, X2)
    assert not torch.allclose(X1, X3)


@pytest.mark.parametrize("name", IMPROVE)
def test_improves_on_quadratic(name):
    opt = FACTORIES[name](maximize=False, seed=0)
    run(opt, steps=14)
    first = float(opt.Y[:4].min())
    assert opt.best()[1] < first
    assert opt.best()[1] < 0.1  # the quadratic ranges over [0, 3.7] on the box


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_save_load_round_trip(name, tmp_path):
    reference = FACTORIES[name](maximize=False, seed=1)
    run(reference, steps=6)
    reference.save(tmp_path / "state.pt")
    resumed = FACTORIES[name](maximize=False, seed=99)  # the seed comes back from the file
    resumed.load(tmp_path / "state.pt")
    torch.testing.assert_close(resumed.X, reference.X)
    torch.testing.assert_close(resumed.best()[0], reference.best()[0])
    assert resumed.best()[1] == reference.best()[1]
    torch.testing.assert_close(resumed.ask(1), reference.ask(1))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_maximize_flag(name):
    opt = FACTORIES[name](maximize=True, seed=0)
    X = opt.ask(4)
    opt.tell(X, -quadratic(X))
    assert opt.best()[1] == pytest.approx(float((-quadratic(X)).max()))


# -- named mixed spaces, failed evaluations, pending points, outcome constraints, JSON state -------------------------
MIXED = [
    Float("lr", 1e-4, 1e-1, log=True),
    Integer("layers", 1, 6),
    Integer("units", 8, 256, log=True),
    Float("dropout", 0.0, 0.5, step=0.1),
    Categorical("act", ["relu", "gelu", None]),
]
# The fidelity is the last dim of a multi-fidelity space, and must be continuous.
MIXED_SPACES = {name: SearchSpace(MIXED + ([Float("s", 0.0, 1.0)] if name == "mfbo" else [])) for name in FACTORIES}


def mixed_loss(p: dict) -> float:
    """A tuning-style loss: best at lr 1e-2.5, 3 layers, 64 units, dropout 0.2, "gelu"."""
    loss = (math.log10(p["lr"]) + 2.5) ** 2 + (p["layers"] - 3) ** 2 / 4 + (math.log2(p["units"]) - 6) ** 2 / 9
    return loss + (p["dropout"] - 0.2) ** 2 + (p["act"] != "gelu")


def check_params(p: dict, name: str) -> None:
    assert isinstance(p["lr"], float) and 1e-4 <= p["lr"] <= 1e-1
    assert type(p["layers"]) is int and 1 <= p["layers"] <= 6
    assert type(p["units"]) is int and 8 <= p["units"] <= 256
    assert isinstance(p["dropout"], float) and abs(p["dropout"] * 10 - round(p["dropout"] * 10)) < 1e-9
    assert p["act"] in ("relu", "gelu", None)
    assert set(p) == {d.name for d in MIXED_SPACES[name].dims}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_named_mixed_space_asks_and_tells_dicts(name):
    opt = FACTORIES[name](bounds=MIXED_SPACES[name], maximize=False, seed=0)
    for batch in (3, 2, 1):  # initial design, then model-based steps
        params = opt.space.decode(opt.ask(batch)) if batch > 1 else [opt.ask_params()]
        for p in params:
            check_params(p, name)
        opt.tell(params, [mixed_loss(p) for p in params])
    assert opt.X.shape == (6, opt.space.dim) and opt.X_pending.shape[0] == 0
    best, y = opt.best_params()
    check_params(best, name)
    assert y == pytest.approx(min(mixed_loss(p) for p in opt.space.decode(opt.X)))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_failed_evaluations_are_kept_but_not_modelled(name):
    opt = FACTORIES[name](maximize=False, seed=0)
    for step in range(6):
        X = opt.ask(2)
        Y = quadratic(X).tolist()
        Y[0] = None if step % 2 else float("nan")  # one failure per batch, as None or NaN
        opt.tell(X, Y)
    assert opt.X_failed.shape == (6, opt.space.dim) and opt.X.shape == (6, opt.space.dim)
    assert torch.isfinite(opt.Y).all() and opt.X_pending.shape[0] == 0
    assert opt.best()[1] == pytest.approx(float(opt.Y.min()))
    state = opt.state_dict()
    resumed = FACTORIES[name](maximize=False, seed=5)
    resumed.load_state_dict(state)
    torch.testing.assert_close(resumed.X_failed, opt.X_failed)


def test_only_failures_is_a_clear_error_for_best():
    opt = FACTORIES["random"](seed=0)
    opt.tell(opt.ask(2), [None, float("nan")])
    with pytest.raises(ConfigError, match="no successful observations yet \\(2 failed\\)"):
        opt.best()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_pending_points_until_told_and_through_a_save(name, tmp_path):
    opt = FACTORIES[name](maximize=False, seed=0)
    run(opt, steps=5)  # past the initial design for every optimizer but the neural ones
    X1 = opt.ask(2)
    X2 = opt.ask(1)  # an asynchronous worker asks before the first two are told
    torch.testing.assert_close(opt.X_pending, torch.cat([X1, X2]))
    opt.tell(X1[1], float(quadratic(X1[1:])))  # told out of order: only that row leaves
    torch.testing.assert_close(opt.X_pending, torch.cat([X1[:1], X2]))
    opt.save(tmp_path / "state.pt")
    resumed = FACTORIES[name](maximize=False, seed=0)
    resumed.load(tmp_path / "state.pt")
    torch.testing.assert_close(resumed.X_pending, opt.X_pending)
    torch.testing.assert_close(resumed.ask(1), opt.ask(1))


def test_bo_does_not_propose_a_pending_point_again():
    opt = FACTORIES["bo"](maximize=False, seed=0)
    run(opt, steps=8)
    x1 = opt.ask(1)
    reference = FACTORIES["bo"](maximize=False, seed=0)
    reference.load_state_dict(opt.state_dict())
    reference.set_pending(torch.empty(0, 2))
    x_without = reference.ask(1)  # the same step with nothing pending
    x2 = opt.ask(1)  # the next worker, with x1 pending
    assert float((x2 - x1).norm()) > 1e-3
    assert not torch.allclose(x2, x_without)


@pytest.mark.parametrize("name", sorted(set(FACTORIES) - {"mfbo"}))
def test_outcome_constraints_decide_the_best_point(name):
    opt = FACTORIES[name](maximize=False, seed=0, outcome_constraints={"x0": 0.0})  # x0 <= 0
    for _ in range(5):
        X = opt.ask(2)
        opt.tell(X, quadratic(X), constraints=X[:, :1])
    feasible = opt.X[:, 0] <= 0
    assert feasible.any() and torch.equal(opt.feasible, feasible)
    x, y = opt.best()
    assert x[0] <= 0 and y == pytest.approx(float(opt.Y[feasible].min()))
    opt.tell([-0.5, 0.0], 0.0, constraints={"x0": 0.7})  # an infeasible point never wins, however good
    assert opt.best()[1] == y


def test_outcome_constraints_are_checked():
    opt = FACTORIES["random"](seed=0, outcome_constraints={"latency": 100.0})
    x = mid(opt)
    refused(opt, lambda: opt.tell(x, 1.0), "constraints missing")
    refused(opt, lambda: opt.tell(x, 1.0, constraints={"latncy": 5.0}), "need exactly the names")
    refused(opt, lambda: opt.tell(x, 1.0, constraints={"latency": float("nan")}), "must be finite")
    opt.tell(x, None)  # a failed evaluation needs no constraint values
    opt.tell(x, 1.0, constraints={"latency": 120.0})
    with pytest.raises(ConfigError, match="none of the 1 observations satisfies"):
        opt.best()
    plain = FACTORIES["random"](seed=0)
    refused(plain, lambda: plain.tell(x, 1.0, constraints={"latency": 5.0}), "no outcome_constraints")
    with pytest.raises(ConfigError, match="outcome_constraints"):
        OPTIMIZERS.get("random")(BOUNDS_2D, outcome_constraints={"latency": float("inf")})


def test_bo_respects_an_outcome_constraint():
    opt = FACTORIES["bo"](maximize=False, seed=0, outcome_constraints={"x0": 0.0})  # optimum moves to (0, -0.2)
    for _ in range(16):
        X = opt.ask(1)
        opt.tell(X, quadratic(X), constraints=X[:, :1])
    x, y = opt.best()
    assert x[0] <= 0 and y < 0.09 + 0.02  # the constrained minimum is 0.3^2 = 0.09
    assert opt.feasible[-6:].float().mean() >= 0.5  # late proposals stay mostly feasible


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_json_state_continues_exactly(name):
    reference = FACTORIES[name](maximize=False, seed=1)
    run(reference, steps=6)
    reference.tell(reference.ask(1), None)
    reference.ask(1)  # left pending
    text = json.dumps(state_to_json(reference.state_dict()))
    resumed = FACTORIES[name](maximize=False, seed=99)
    resumed.load_state_dict(state_from_json(json.loads(text)))
    assert same_state(resumed.state_dict(), reference.state_dict())
    torch.testing.assert_close(resumed.ask(1), reference.ask(1))


def test_tell_rejects_bad_input():
    opt = FACTORIES["random"](seed=0)
    with pytest.raises(ConfigError, match="one value per row"):
        opt.tell(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ConfigError, match="inf"):
        opt.tell(torch.zeros(1, 2), [float("inf")])
    with pytest.raises(ConfigError, match="no successful observations"):
        opt.best()


def test_search_space_round_trip_and_rounding():
    space = SearchSpace(
        [Dim("lr", 1e-4, 1e-1), Dim("layers", 1, 4, kind="integer"), Dim("act", kind="categorical", choices=3)]
    )
    X = torch.tensor([[0.05, 3.0, 2.0], [1e-4, 1.0, 0.0], [0.1, 4.0, 1.0]], dtype=torch.float64)
    U = space.to_unit(X)
    assert ((U >= 0) & (U <= 1)).all()
    torch.testing.assert_close(space.from_unit(U), X)
    # Every unit-cube point maps to whole integers and valid category indices.
    V = torch.rand(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    Z = space.from_unit(V)
    assert torch.equal(Z[:, 1], Z[:, 1].round()) and Z[:, 1].min() >= 1 and Z[:, 1].max() <= 4
    assert set(Z[:, 2].tolist()) <= {0.0, 1.0, 2.0}
    # Each integer value owns an equal share of the unit interval.
    counts = torch.bincount(
        space.from_unit(torch.linspace(0, 1, 4001, dtype=torch.float64).unsqueeze(-1).expand(-1, 3))[:, 1].long()
    )
    assert counts[1:].min() >= 999


def test_search_space_validation_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        SearchSpace([Dim("a", 1.0, 0.0), Dim("b", kind="categorical", choices=0), Dim("c", kind="ordinal")])
    assert len(err.value.problems) == 3


def test_unknown_optimizer_suggests_a_name():
    with pytest.raises(ConfigError, match='Did you mean "random"'):
        OPTIMIZERS.get("randon")


# -- input checks: one-line ConfigError, nothing recorded -------------------------------------------------------------
def same_state(a, b) -> bool:
    """Deep equality of two `state_dict()`s (tensors compared exactly)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_state, a, b))
    return a == b


def refused(opt, action, match: str) -> str:
    """Runs `action`, expects a one-line ConfigError matching `match` and an unchanged optimizer; returns the line."""
    before = opt.state_dict()
    with pytest.raises(ConfigError, match=match) as err:
        action()
    assert "\n" not in str(err.value)
    assert same_state(opt.state_dict(), before)
    return str(err.value)


def mid(opt) -> torch.Tensor:
    """`d`: the centre of the optimizer's box, a valid point."""
    return opt.space.bounds.mean(0)


def with_first(x: torch.Tensor, value: float) -> torch.Tensor:
    x = x.clone()
    x[0] = value
    return x


# Each case builds (X, Y) for an optimizer and names a word its error message must contain.
BAD_TELLS = {
    "rows that would fold into more points": (lambda o: (torch.zeros(2, 2 * o.space.dim), torch.zeros(4)), "shape"),
    "a 3-D X": (lambda o: (mid(o).expand(2, 1, -1), torch.zeros(2)), "shape"),
    "a vector of the wrong length": (lambda o: (torch.zeros(o.space.dim + 1), 0.0), "shape"),
    "an empty list": (lambda o: ([], []), "shape"),
    "NaN in X": (lambda o: (with_first(mid(o), float("nan")), [0.0]), "not finite"),
    "inf in X": (lambda o: (with_first(mid(o), float("inf")), [0.0]), "not finite"),
    "X outside the bounds": (lambda o: (o.space.bounds[1:] + 1.0, [0.0]), "outside"),
    "strings in X": (lambda o: ([["a"] * o.space.dim], [0.0]), "real numbers"),
    "None as X": (lambda o: (None, [0.0]), "real numbers"),
    "a bool X": (lambda o: (torch.ones(1, o.space.dim, dtype=torch.bool), [0.0]), "dtype"),
    "a complex X": (lambda o: (mid(o).to(torch.complex128), [0.0]), "dtype"),
    "fewer values than rows": (lambda o: (mid(o).expand(3, -1), torch.zeros(2)), "one value per row"),
    "inf in Y": (lambda o: (mid(o), [float("-inf")]), "is inf"),
    "Y of shape n x 2": (lambda o: (mid(o).expand(2, -1), torch.zeros(2, 2)), "shape"),
    "strings in Y": (lambda o: (mid(o), ["a"]), "real numbers"),
    "a bool Y": (lambda o: (mid(o), torch.tensor([True])), "dtype"),
}


@pytest.mark.parametrize("case", sorted(BAD_TELLS))
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_tell_refuses_bad_input_and_records_nothing(name, case):
    opt = FACTORIES[name](seed=0)
    make, match = BAD_TELLS[case]
    X, Y = make(opt)
    refused(opt, lambda: opt.tell(X, Y), match)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_tell_accepts_a_point_as_a_vector_n_by_1_values_and_no_rows(name):
    opt = FACTORIES[name](seed=0)
    x = mid(opt)
    opt.tell(torch.empty(0, opt.space.dim), torch.empty(0))  # every evaluation of a batch failed and was dropped
    assert opt.X.shape == (0, opt.space.dim)
    opt.tell(x, 1.0)  # one point as a `d` vector and a scalar
    opt.tell(x.unsqueeze(0).float(), torch.ones(1, 1, dtype=torch.float32))  # float32 and `n x 1` values
    opt.tell(x.unsqueeze(0).numpy().tolist(), [2])  # nested lists, an int value
    torch.testing.assert_close(opt.X, x.expand(3, -1))
    assert opt.Y.tolist() == [1.0, 1.0, 2.0]


def test_tell_checks_whole_numbers_on_integer_and_categorical_dims():
    space = SearchSpace([Dim("x"), Dim("k", 0, 5, kind="integer"), Dim("c", kind="categorical", choices=3)])
    opt = OPTIMIZERS.get("random")(space, seed=0)
    refused(opt, lambda: opt.tell([0.5, 2.5, 1.0], 0.0), "integer dim k takes whole numbers")
    refused(opt, lambda: opt.tell([0.5, 2.0, 3.0], 0.0), "outside c's bounds")
    opt.tell([0.5, 2.0, 2.0], 0.0)
    one_d = OPTIMIZERS.get("random")([[0.0], [1.0]], seed=0)
    one_d.tell(torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3))  # in a 1-D space a vector holds one value per point
    assert one_d.X.shape == (3, 1)


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", True, None])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_ask_refuses_bad_n(name, n):
    opt = FACTORIES[name](seed=0)
    refused(opt, lambda: opt.ask(n), "n must be an int >= 1")


# Arguments each optimizer must refuse, with the name its error must give; BASE_BAD_ARGS apply to every optimizer.
BASE_BAD_ARGS = [{"seed": "0"}, {"seed": 1.5}, {"seed": 2**40}, {"maximize": "false"}, {"maximize": None}]
NEURAL_BAD_ARGS = [
    {"n_init": -1},
    {"n_init": 0},
    {"n_domain": 0},
    {"n_domain": 10, "n_init": 20},
    {"lr": -1.0},
    {"n_eval": 0},
    {"lam": float("nan")},
    {"widht": 8},
]
BAD_ARGS = {
    "random": [{"sobol": "yes"}],
    "bo": [
        {"n_init": -1},
        {"n_init": 0},
        {"n_init": 2.5},
        {"num_restarts": 0},
        {"num_restarts": 8, "raw_samples": 4},
        {"local_samples": -1},
        {"num_fantasies": 0},
        {"beta": float("nan")},
        {"local_scale": float("inf")},
        {"min_noise": 0.0},
    ],
    "mfbo": [
        {"n_init": -1},
        {"fidelity_dim": 3},
        {"fidelity_dim": 1.5},
        {"fidelity_dim": "last"},
        {"fixed_cost": float("nan")},
        {"num_restarts": 0},
        {"num_fantasies": 0},
    ],
    "neural_ucb": NEURAL_BAD_ARGS,
    "neural_ts": NEURAL_BAD_ARGS,
}
BAD_ARG_CASES = [(name, args) for name in sorted(BAD_ARGS) for args in BASE_BAD_ARGS + BAD_ARGS[name]]


def test_every_registered_optimizer_has_bad_argument_cases():
    assert set(OPTIMIZERS.names()) == set(BAD_ARGS)


@pytest.mark.parametrize(("name", "args"), BAD_ARG_CASES, ids=[f"{n}-{a}" for n, a in BAD_ARG_CASES])
def test_constructor_refuses_bad_arguments(name, args):
    bounds = BOUNDS_MF if name == "mfbo" else BOUNDS_2D
    with pytest.raises(ConfigError, match=max(args, key=len)):
        OPTIMIZERS.get(name)(bounds, **args)


@pytest.mark.parametrize(
    "bounds",
    [
        [[0.0, 0.0], [float("inf"), 1.0]],
        [[float("nan"), 0.0], [1.0, 1.0]],
        [[1.0, 0.0], [0.0, 1.0]],
        [["a", 0.0], [1.0, 1.0]],
        [[0.0, 0.0], [1.0]],
        [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
        [[], []],
        None,
        torch.ones(2, 2, dtype=torch.bool),
    ],
)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_constructor_refuses_bad_bounds(name, bounds):
    with pytest.raises(ConfigError):
        OPTIMIZERS.get(name)(bounds)


def test_search_space_refuses_fractional_integer_bounds_and_choices():
    with pytest.raises(ConfigError) as err:
        SearchSpace([Dim("k", 0.5, 3.5, kind="integer"), Dim("c", kind="categorical", choices=2.5), "x"])
    assert len(err.value.problems) == 3


# -- safe loading -----------------------------------------------------------------------------------------------------
class RunsCode:
    """Unpickling this object runs `os.system`: what a crafted state file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["pickle", "torch.save"])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_refuses_a_file_that_would_run_code(name, container, tmp_path):
    marker, path = tmp_path / "code_ran", tmp_path / "state.pt"
    opt = FACTORIES[name](seed=0)
    state = {**opt.state_dict(), "X": RunsCode(marker)}
    if container == "pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path)
    line = refused(opt, lambda: opt.load(path), "refused")
    assert not marker.exists()
    assert "save()" in line  # says which files load


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_refuses_a_state_of_another_dimension(name, tmp_path):
    opt = FACTORIES[name](seed=0)
    X = opt.ask(2)
    opt.tell(X, quadratic(X))
    opt.save(tmp_path / "state.pt")
    lo, hi = opt.space.bounds.tolist()
    wider = FACTORIES[name](bounds=[lo + [0.0], hi + [1.0]], seed=0)
    line = refused(wider, lambda: wider.load(tmp_path / "state.pt"), "dimensions differ")
    assert f"{opt.space.dim}-D" in line and f"{wider.space.dim}-D" in line
    # A state saved before the format recorded the space: the shape of X gives the dimension away.
    state = opt.state_dict()
    del state["format"], state["space"]
    torch.save(state, tmp_path / "old.pt")
    refused(wider, lambda: wider.load(tmp_path / "old.pt"), "dimensions differ")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_refuses_a_state_of_another_kind(name, tmp_path):
    names = sorted(FACTORIES)
    other = FACTORIES[names[(names.index(name) + 1) % len(names)]](seed=0)
    other.save(tmp_path / "state.pt")
    opt = FACTORIES[name](seed=0)
    line = refused(opt, lambda: opt.load(tmp_path / "state.pt"), "cannot be loaded into")
    assert type(other).__name__ in line and type(opt).__name__ in line


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_refuses_other_bounds(name, tmp_path):
    opt = FACTORIES[name](seed=0)
    opt.save(tmp_path / "state.pt")
    lo, hi = opt.space.bounds.tolist()
    moved = FACTORIES[name](bounds=[lo, [hi[0] + 1.0, *hi[1:]]], seed=0)
    refused(moved, lambda: moved.load(tmp_path / "state.pt"), "search space the state was saved from")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_saved_before_versioning_loads_and_resumes(name, tmp_path):
    reference = FACTORIES[name](maximize=False, seed=1)
    run(reference, steps=3)
    state = reference.state_dict()
    del state["format"], state["space"]  # the fields this format added
    state["extra"].pop("n_domain", None)
    torch.save(state, tmp_path / "old.pt")
    resumed = FACTORIES[name](maximize=False, seed=99)
    resumed.load(tmp_path / "old.pt")
    torch.testing.assert_close(resumed.X, reference.X)
    torch.testing.assert_close(resumed.ask(1), reference.ask(1))


def _damaged(kind: str, good: bytes, tmp_path):
    path = tmp_path / "state.pt"
    if kind == "missing":
        return path
    if kind == "a directory":
        return tmp_path
    state = torch.load(tmp_path / "good.pt", weights_only=True)
    payload = {
        "empty": b"",
        "garbage": b"\x80\x04not a state",
        "truncated": good[: len(good) // 2],
    }
    if kind in payload:
        path.write_bytes(payload[kind])
        return path
    changed = {
        "a tensor, not a dict": torch.zeros(3),
        "missing keys": {"X": state["X"]},
        "a newer format": {**state, "format": 99},
        "NaN in the stored X": {
            **state,
            "X": torch.full((1, state["X"].shape[1]), float("nan"), dtype=torch.float64),
            "Y": torch.zeros(1, dtype=torch.float64),
        },  # fmt: skip
        "fewer values than points": {**state, "X": state["X"].new_zeros(2, state["X"].shape[1])},
        "a string as step": {**state, "step": "3"},
        "a list as extra": {**state, "extra": [1, 2]},
    }
    torch.save(changed[kind], path)
    return path


DAMAGED = {
    "missing": "no such file",
    "a directory": "a directory",
    "empty": "not a file written by save",
    "garbage": "not a file written by save",
    "truncated": "not a file written by save",
    "a tensor, not a dict": "not a dict",
    "missing keys": "lacks",
    "a newer format": "upgrade",
    "NaN in the stored X": "not finite",
    "fewer values than points": "one value per row",
    "a string as step": "step",
    "a list as extra": "extra",
}


@pytest.mark.parametrize("kind", sorted(DAMAGED))
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_load_refuses_damaged_files(name, kind, tmp_path):
    opt = FACTORIES[name](seed=0)
    opt.save(tmp_path / "good.pt")
    path = _damaged(kind, (tmp_path / "good.pt").read_bytes(), tmp_path)
    refused(opt, lambda: opt.load(path), DAMAGED[kind])


def test_save_to_a_missing_directory_is_a_clear_error(tmp_path):
    opt = FACTORIES["random"](seed=0)
    with pytest.raises(ConfigError, match="cannot write"):
        opt.save(tmp_path / "no" / "state.pt")
    opt.save(tmp_path / "state.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # the temporary file is gone
