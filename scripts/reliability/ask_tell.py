"""Bad inputs for the surrogate core's ask/tell surface: `tell`, `ask`, the constructors, `save` and `load`.

Each case builds a small optimizer (no GP is fitted: every case stays inside the initial design), feeds it one input
and reports what the user saw:
- "clear_error": refused with an `RLSurrogateError`; for `tell`, `ask` and `load` also one line, and the optimizer is
  unchanged (a refused call that still moved the state is reported as "traceback").
- "handled": a valid but unusual input (a `d` vector as one point, a tell with no rows, float32, numpy, a file saved
  before the state format was versioned) was accepted and recorded correctly.
- "traceback": any other exception; also a bad input accepted without an error (detail "accepted: ...") or a valid
  one refused (detail "refused a valid input: ..."), since the protocol has no kind for a wrong answer, and a crafted
  state file whose code ran.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlsurrogate.blackbox import OPTIMIZERS, Dim, SearchSpace
from rlsurrogate.errors import RLSurrogateError

from . import Case, Outcome, clear_error, handled, traceback

__all__ = ["CASES"]

SURFACE = "ask_tell"
BOUNDS = [[-1.0, -1.0], [1.0, 1.0]]
BOUNDS_MF = [[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]]  # the last dimension is the fidelity
# Small settings: building an optimizer and telling it a point take milliseconds.
SMALL: dict[str, dict[str, Any]] = {
    "random": {},
    "bo": {"n_init": 4, "num_restarts": 2, "raw_samples": 64, "local_samples": 16},
    "mfbo": {"n_init": 5, "num_fantasies": 2, "num_restarts": 1, "raw_samples": 16},
    "neural_ucb": {"n_domain": 64, "n_init": 4, "train_steps": 5, "width": 8},
    "neural_ts": {"n_domain": 64, "n_init": 4, "train_steps": 5, "width": 8},
}
NAN, INF = float("nan"), float("inf")


def _make(name: str, bounds: Any = None, **kw: Any) -> Any:
    return OPTIMIZERS.get(name)(bounds if bounds is not None else _bounds(name), **{**SMALL[name], **kw})


def _bounds(name: str) -> list[list[float]]:
    return BOUNDS_MF if name == "mfbo" else BOUNDS


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _refused(opt: Any, action: Callable[[], Any]) -> Outcome:
    """Expects `action` to raise a one-line `RLSurrogateError` and to leave `opt` (if given) unchanged."""
    before = opt.state_dict() if opt is not None else None
    try:
        action()
    except RLSurrogateError as err:
        if before is not None and "\n" in str(err):
            return traceback(f"multi-line error: {err}")
        if before is not None and not _same(opt.state_dict(), before):
            return traceback(f"refused but changed the optimizer: {err}")
        return clear_error(err)
    except Exception as err:  # noqa: BLE001 (any other exception is what this corpus looks for)
        return traceback(f"{type(err).__name__}: {err}")
    recorded = f"; X is now {tuple(opt.X.shape)}" if opt is not None else ""
    return traceback(f"accepted: no error{recorded}")


def _accepted(action: Callable[[], Any], check: Callable[[], str]) -> Outcome:
    """Expects `action` to succeed and `check()` to return "" (else a description of what is wrong)."""
    try:
        action()
    except RLSurrogateError as err:
        return traceback(f"refused a valid input: {err}")
    except Exception as err:  # noqa: BLE001
        return traceback(f"{type(err).__name__}: {err}")
    wrong = check()
    return traceback(f"wrong result: {wrong}") if wrong else handled("accepted and recorded correctly")


def _case(name: str, run: Callable[[], Outcome], *tags: str) -> Case:
    return Case(SURFACE, name, run, tags=list(tags))


# -- tell -----------------------------------------------------------------------------------------------------------
# (X, Y) pairs, for a d-dimensional optimizer on [-1, 1]^d, that it must refuse. Built lazily: importing this
# module creates no tensors.
def _point(d: int, first: float = 0.0) -> torch.Tensor:
    x = torch.zeros(1, d, dtype=torch.float64)
    x[0, 0] = first
    return x


BAD_TELLS: dict[str, Callable[[int], tuple[Any, Any]]] = {
    "x_rows_fold_into_points": lambda d: (torch.zeros(2, 2 * d), torch.zeros(4)),  # (2, 4) in 2-D: not 4 points
    "x_3d": lambda d: (torch.zeros(2, 1, d), torch.zeros(2)),
    "x_vector_of_wrong_length": lambda d: (torch.zeros(d + 1), 0.0),
    "x_scalar": lambda d: (0.5, 0.0),
    "x_empty_list": lambda d: ([], []),
    "x_nan": lambda d: (_point(d, NAN), [0.0]),
    "x_inf": lambda d: (_point(d, INF), [0.0]),
    "x_neg_inf": lambda d: (_point(d, -INF), [0.0]),
    "x_outside_bounds": lambda d: (_point(d, 5.0), [0.0]),
    "x_just_outside_bounds": lambda d: (_point(d, 1.001), [0.0]),
    "x_strings": lambda d: ([["a"] * d], [0.0]),
    "x_numeric_strings": lambda d: ([["0.1"] * d], [0.0]),
    "x_none": lambda d: (None, [0.0]),
    "x_dict_missing_a_name": lambda d: ({"x0": 0.1}, [0.0]),
    "x_dict_unknown_name": lambda d: ({**{f"x{j}": 0.1 for j in range(d)}, "lr": 0.1}, [0.0]),
    "x_dict_string_value": lambda d: ({f"x{j}": "0.1" for j in range(d)}, [0.0]),
    "x_dict_outside_bounds": lambda d: ({f"x{j}": 5.0 for j in range(d)}, [0.0]),
    "x_ragged": lambda d: ([[0.1] * d, [0.3]], [0.0, 1.0]),
    "x_bool_tensor": lambda d: (torch.ones(1, d, dtype=torch.bool), [0.0]),
    "x_bool_numpy": lambda d: (np.ones((1, d), dtype=bool), [0.0]),
    "x_complex": lambda d: (torch.zeros(1, d, dtype=torch.complex64), [0.0]),
    "x_int_overflow": lambda d: ([[2**70] + [0] * (d - 1)], [0.0]),
    "x_list_of_vectors": lambda d: ([torch.zeros(d), torch.zeros(d)], [0.0, 1.0]),
    "y_fewer_than_rows": lambda d: (torch.zeros(3, d), torch.zeros(2)),
    "y_more_than_rows": lambda d: (torch.zeros(1, d), torch.zeros(2)),
    "y_scalar_for_two_rows": lambda d: (torch.zeros(2, d), 1.0),
    "y_empty_for_one_row": lambda d: (torch.zeros(1, d), []),
    "y_inf": lambda d: (torch.zeros(1, d), [INF]),
    "y_neg_inf": lambda d: (torch.zeros(1, d), [-INF]),
    "y_n_by_2": lambda d: (torch.zeros(2, d), torch.zeros(2, 2)),
    "y_1_by_n": lambda d: (torch.zeros(2, d), torch.zeros(1, 2)),
    "y_strings": lambda d: (torch.zeros(1, d), ["a"]),
    "y_bool": lambda d: (torch.zeros(1, d), torch.tensor([True])),
    "y_complex": lambda d: (torch.zeros(1, d), torch.tensor([1 + 1j])),
}
# Optimizers with their own tell path (the bandit update, the fidelity cost) get the cases that reach it.
PER_OPTIMIZER_TELLS = ("x_rows_fold_into_points", "x_nan", "x_outside_bounds", "y_inf", "y_fewer_than_rows")


def _bad_tell(name: str, case: str) -> Callable[[], Outcome]:
    def run() -> Outcome:
        opt = _make(name)
        X, Y = BAD_TELLS[case](opt.space.dim)
        return _refused(opt, lambda: opt.tell(X, Y))

    return run


# Valid but unusual tells on the 2-D random search: (X, Y, expected rows of X after the tell).
GOOD_TELLS: dict[str, Callable[[], tuple[Any, Any, list[list[float]]]]] = {
    "x_vector_is_one_point": lambda: (torch.tensor([0.1, 0.2]), 1.0, [[0.1, 0.2]]),
    "x_no_rows_records_nothing": lambda: (torch.empty(0, 2), torch.empty(0), []),
    "x_float32": lambda: (torch.tensor([[0.5, -0.5]]), [1.0], [[0.5, -0.5]]),
    "x_int_tensor": lambda: (torch.tensor([[1, -1]]), [1.0], [[1.0, -1.0]]),
    "x_numpy": lambda: (np.array([[0.1, 0.2]]), np.array([1.0]), [[0.1, 0.2]]),
    "x_nested_lists": lambda: ([[0.1, 0.2], [0.3, 0.4]], [1, 2], [[0.1, 0.2], [0.3, 0.4]]),
    "x_requires_grad": lambda: (torch.tensor([[0.1, 0.2]], requires_grad=True), [1.0], [[0.1, 0.2]]),
    "x_on_the_bounds": lambda: (torch.tensor([[-1.0, 1.0]]), [1.0], [[-1.0, 1.0]]),
    "x_a_rounding_error_above_the_bound": lambda: (torch.tensor([[1.0 + 1e-12, 0.0]]), [1.0], [[1.0 + 1e-12, 0.0]]),
    "y_n_by_1": lambda: (torch.zeros(2, 2), torch.ones(2, 1), [[0.0, 0.0], [0.0, 0.0]]),
    "y_numpy_float32": lambda: (torch.zeros(1, 2), np.array([1.5], dtype=np.float32), [[0.0, 0.0]]),
    "x_dict_of_names": lambda: ({"x0": 0.1, "x1": 0.2}, 1.0, [[0.1, 0.2]]),
    "x_list_of_dicts": lambda: ([{"x0": 0.1, "x1": 0.2}, {"x1": 0.4, "x0": 0.3}], [1, 2], [[0.1, 0.2], [0.3, 0.4]]),
    "y_nan_is_a_failed_evaluation": lambda: (torch.tensor([[0.1, 0.2], [0.3, 0.4]]), [NAN, 1.0], [[0.3, 0.4]]),
    "y_none_is_a_failed_evaluation": lambda: (torch.tensor([[0.1, 0.2]]), None, []),
    "y_list_with_none": lambda: (torch.tensor([[0.1, 0.2], [0.3, 0.4]]), [1.0, None], [[0.1, 0.2]]),
}


def _good_tell(case: str) -> Callable[[], Outcome]:
    def run() -> Outcome:
        opt = _make("random")
        X, Y, rows = GOOD_TELLS[case]()

        def check() -> str:
            if opt.X.requires_grad or opt.X.dtype != torch.float64:
                return f"stored X has dtype {opt.X.dtype}, requires_grad {opt.X.requires_grad}"
            expected = torch.tensor(rows, dtype=torch.float64).reshape(-1, 2)
            ok = opt.X.shape == expected.shape and torch.allclose(opt.X, expected)
            n_told = opt.X.shape[0] + opt.X_failed.shape[0]
            n_rows = (
                len(X)
                if isinstance(X, list)
                else 1
                if isinstance(X, dict)
                else torch.as_tensor(X).reshape(-1, 2).shape[0]
            )
            ok = ok and n_told == n_rows and bool(torch.isfinite(opt.Y).all())
            return "" if ok and opt.Y.shape == (len(rows),) else f"X {opt.X.tolist()}, Y {opt.Y.tolist()}"

        return _accepted(lambda: opt.tell(X, Y), check)

    return run


def _mixed_space_tell(x: list[float]) -> Callable[[], Outcome]:
    def run() -> Outcome:
        space = SearchSpace([Dim("x"), Dim("k", 0, 5, kind="integer"), Dim("c", kind="categorical", choices=3)])
        opt = OPTIMIZERS.get("random")(space)
        return _refused(opt, lambda: opt.tell([x], [0.0]))

    return run


# -- ask ------------------------------------------------------------------------------------------------------------
BAD_NS: dict[str, Any] = {"0": 0, "negative": -1, "float": 2.5, "nan": NAN, "string": "3", "bool": True, "none": None}


def _bad_ask(name: str, n: Any) -> Callable[[], Outcome]:
    def run() -> Outcome:
        opt = _make(name)
        return _refused(opt, lambda: opt.ask(n))

    return run


def _ask_numpy_int() -> Outcome:
    opt = _make("random")
    out: list[torch.Tensor] = []
    return _accepted(lambda: out.append(opt.ask(np.int64(3))), lambda: "" if out[0].shape == (3, 2) else "wrong shape")


def _ask_beyond_the_pool() -> Outcome:
    opt = _make("neural_ucb")
    return _refused(opt, lambda: opt.ask(65))  # the pool holds 64 points


# -- constructors -----------------------------------------------------------------------------------------------------
BASE_BAD_ARGS: dict[str, dict[str, Any]] = {
    "seed_string": {"seed": "0"},
    "seed_float": {"seed": 1.5},
    "seed_huge": {"seed": 2**80},
    "maximize_string": {"maximize": "false"},
    "maximize_none": {"maximize": None},
}
NEURAL_BAD_ARGS: dict[str, dict[str, Any]] = {
    "n_init_negative": {"n_init": -1},
    "n_domain_zero": {"n_domain": 0},
    "n_init_above_n_domain": {"n_domain": 8, "n_init": 20},
    "lr_negative": {"lr": -1.0},
    "lam_nan": {"lam": NAN},
    "n_eval_zero": {"n_eval": 0},
    "unknown_argument": {"widht": 8},
}
BAD_ARGS: dict[str, dict[str, dict[str, Any]]] = {
    "random": {"sobol_string": {"sobol": "yes"}},
    "bo": {
        "n_init_negative": {"n_init": -1},
        "n_init_zero": {"n_init": 0},
        "n_init_float": {"n_init": 2.5},
        "num_restarts_zero": {"num_restarts": 0},
        "raw_samples_below_restarts": {"num_restarts": 8, "raw_samples": 4},
        "local_samples_negative": {"local_samples": -1},
        "num_fantasies_zero": {"num_fantasies": 0},
        "beta_nan": {"beta": NAN},
        "local_scale_inf": {"local_scale": INF},
        "min_noise_zero": {"min_noise": 0.0},
        "acquisition_unknown": {"acquisition": "pi"},
    },
    "mfbo": {
        "n_init_negative": {"n_init": -1},
        "fidelity_dim_out_of_range": {"fidelity_dim": 3},
        "fidelity_dim_negative": {"fidelity_dim": -1},
        "fidelity_dim_string": {"fidelity_dim": "last"},
        "fixed_cost_nan": {"fixed_cost": NAN},
        "num_restarts_zero": {"num_restarts": 0},
        "num_fantasies_zero": {"num_fantasies": 0},
    },
    "neural_ucb": NEURAL_BAD_ARGS,
    "neural_ts": NEURAL_BAD_ARGS,
}


def _bad_args(name: str, args: dict[str, Any]) -> Callable[[], Outcome]:
    return lambda: _refused(None, lambda: _make(name, **args))


BAD_BOUNDS: dict[str, Callable[[], Any]] = {
    "inf_upper": lambda: [[0.0, 0.0], [INF, 1.0]],
    "nan_lower": lambda: [[NAN, 0.0], [1.0, 1.0]],
    "low_above_high": lambda: [[1.0, 0.0], [0.0, 1.0]],
    "equal_bounds": lambda: [[0.0, 0.0], [0.0, 1.0]],
    "strings": lambda: [["a", 0.0], [1.0, 1.0]],
    "ragged": lambda: [[0.0, 0.0], [1.0]],
    "three_rows": lambda: [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
    "zero_dims": lambda: [[], []],
    "none": lambda: None,
    "bool_tensor": lambda: torch.ones(2, 2, dtype=torch.bool),
    "scalar": lambda: 1.0,
    "integer_dim_fractional_bounds": lambda: SearchSpace([Dim("k", 0.5, 3.5, kind="integer")]),
    "categorical_fractional_choices": lambda: SearchSpace([Dim("c", kind="categorical", choices=2.5)]),
    "unknown_kind": lambda: SearchSpace([Dim("o", kind="ordinal")]),
    "dims_not_dim": lambda: SearchSpace(["x"]),
}


def _bad_bounds(make_bounds: Callable[[], Any]) -> Outcome:
    return _refused(None, lambda: OPTIMIZERS.get("random")(make_bounds()))


# -- save and load ----------------------------------------------------------------------------------------------------
class _RunsCode:
    """Unpickling this runs `touch <marker>`: a stand-in for a crafted state file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def _crafted(name: str, container: str) -> Callable[[], Outcome]:
    def run() -> Outcome:
        with tempfile.TemporaryDirectory() as tmp:
            marker, path = Path(tmp) / "code_ran", Path(tmp) / "state.pt"
            opt = _make(name)
            state = {**opt.state_dict(), "X": _RunsCode(marker)}
            if container == "pickle":
                path.write_bytes(pickle.dumps(state))
            else:
                torch.save(state, path)
            outcome = _refused(opt, lambda: opt.load(path))
            return traceback(f"the file's code ran; {outcome.detail}") if marker.exists() else outcome

    return run


def _load_other(name: str, source: Callable[[], Any]) -> Callable[[], Outcome]:
    """Saves the optimizer `source()` builds, then loads its file into a `name` optimizer."""

    def run() -> Outcome:
        with tempfile.TemporaryDirectory() as tmp:
            src = source()
            X = src.ask(2)
            src.tell(X, X.pow(2).sum(-1))
            src.save(Path(tmp) / "state.pt")
            opt = _make(name)
            return _refused(opt, lambda: opt.load(Path(tmp) / "state.pt"))

    return run


def _one_more_dim(name: str) -> Callable[[], Any]:
    lo, hi = _bounds(name)
    return lambda: _make(name, bounds=[lo + [0.0], hi + [1.0]])


def _load_file(write: Callable[[Path, dict[str, Any]], None], name: str = "random") -> Callable[[], Outcome]:
    """Writes a file from a saved state with `write(path, state)`, then expects `load` to refuse it."""

    def run() -> Outcome:
        with tempfile.TemporaryDirectory() as tmp:
            opt = _make(name)
            opt.tell(torch.zeros(1, opt.space.dim), [1.0])
            path = Path(tmp) / "state.pt"
            opt.save(path)
            write(path, torch.load(path, weights_only=True))
            return _refused(opt, lambda: opt.load(path))

    return run


def _save_state(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path, dict[str, Any]], None]:
    return lambda path, state: torch.save(change(state), path)


def _with(**fields: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda state: {**state, **fields}


BAD_FILES: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "empty_file": lambda path, state: path.write_bytes(b""),
    "garbage_bytes": lambda path, state: path.write_bytes(b"\x80\x04 not a state"),
    "truncated_file": lambda path, state: path.write_bytes(path.read_bytes()[:200]),
    "json_file": lambda path, state: path.write_text('{"X": [[0.0, 0.0]]}'),
    "tensor_not_dict": _save_state(lambda state: torch.zeros(3)),
    "list_not_dict": _save_state(lambda state: [state]),
    "missing_keys": _save_state(lambda state: {"X": state["X"]}),
    "newer_format": _save_state(_with(format=99)),
    "format_string": _save_state(_with(format="1")),
    "class_not_string": _save_state(_with(**{"class": 3})),
    "x_nan": _save_state(_with(X=torch.full((1, 2), NAN, dtype=torch.float64))),
    "x_outside_bounds": _save_state(_with(X=torch.full((1, 2), 7.0, dtype=torch.float64))),
    "x_as_list": _save_state(_with(X=[[0.0, 0.0]])),
    "x_int_dtype_3d": _save_state(_with(X=torch.zeros(1, 2, 1, dtype=torch.int64))),
    "y_count_differs": _save_state(_with(Y=torch.zeros(3, dtype=torch.float64))),
    "y_inf": _save_state(_with(Y=torch.full((1,), INF, dtype=torch.float64))),
    "step_negative": _save_state(_with(step=-1)),
    "seed_string": _save_state(_with(seed="0")),
    "maximize_string": _save_state(_with(maximize="no")),
    "extra_not_dict": _save_state(_with(extra=[1, 2])),
    "extra_missing_counter": _save_state(_with(extra={})),
    "space_other_bounds": _save_state(
        _with(space=[{"name": "x0", "kind": "continuous", "low": 0.0, "high": 9.0, "choices": 0}] * 2)
    ),
    "space_other_kind": _save_state(
        _with(space=[{"name": "x0", "kind": "integer", "low": -1.0, "high": 1.0, "choices": 0}] * 2)
    ),
}


def _neural_extra(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, dict[str, Any]], None]:
    def write(path: Path, state: dict[str, Any]) -> None:
        change(state["extra"])
        torch.save(state, path)

    return write


NEURAL_BAD_FILES: dict[str, Callable[[Path, dict[str, Any]], None]] = {
    "neural_other_n_domain": _neural_extra(lambda extra: extra.update(n_domain=128)),
    "neural_chosen_out_of_pool": _neural_extra(lambda extra: extra.update(chosen=[64])),
    "neural_chosen_repeated": _neural_extra(lambda extra: extra.update(chosen=[3, 3])),
    "neural_bandit_other_width": _neural_extra(
        lambda extra: extra["bandit"].update(init_params={"0.weight": torch.zeros(4, 2)})
    ),
    "neural_bandit_values_nan": _neural_extra(lambda extra: extra["bandit"].update(values=[NAN])),
    "neural_bandit_missing": _neural_extra(lambda extra: extra.pop("bandit")),
}


def _load_missing(kind: str) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        opt = _make("random")
        return _refused(opt, lambda: opt.load(Path(tmp) if kind == "directory" else Path(tmp) / "none.pt"))


def _save_to_missing_directory() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        opt = _make("random")
        return _refused(None, lambda: opt.save(Path(tmp) / "missing" / "state.pt"))


def _resumes(name: str, old_format: bool) -> Callable[[], Outcome]:
    """Saves after 3 steps (optionally in the pre-versioning format); the resumed run must ask as the original does."""

    def run() -> Outcome:
        with tempfile.TemporaryDirectory() as tmp:
            ref = _make(name, maximize=False, seed=1)
            for _ in range(3):
                X = ref.ask(1)
                ref.tell(X, X.pow(2).sum(-1))
            state = ref.state_dict()
            if old_format:
                for key in ("format", "space"):
                    state.pop(key, None)
                state["extra"].pop("n_domain", None)
            torch.save(state, Path(tmp) / "state.pt")
            resumed = _make(name, maximize=False, seed=99)
            same: list[bool] = []
            return _accepted(
                lambda: (resumed.load(Path(tmp) / "state.pt"), same.append(torch.equal(resumed.ask(1), ref.ask(1)))),
                lambda: "" if same[0] and torch.equal(resumed.X, ref.X) else "the resumed run differs",
            )

    return run


# -- the corpus -------------------------------------------------------------------------------------------------------
def _cases() -> list[Case]:
    names = sorted(SMALL)
    cases = [_case(f"tell_{c}", _bad_tell("random", c), "tell") for c in BAD_TELLS]
    cases += [
        _case(f"tell_{c}_{n}", _bad_tell(n, c), "tell") for n in names if n != "random" for c in PER_OPTIMIZER_TELLS
    ]
    cases += [_case(f"tell_{c}", _good_tell(c), "tell", "valid") for c in GOOD_TELLS]
    cases += [
        _case("tell_integer_dim_fraction", _mixed_space_tell([0.5, 2.5, 1.0]), "tell"),
        _case("tell_categorical_index_out_of_range", _mixed_space_tell([0.5, 2.0, 3.0]), "tell"),
        _case("tell_categorical_fraction", _mixed_space_tell([0.5, 2.0, 0.5]), "tell"),
    ]
    cases += [_case(f"ask_n_{k}_{n}", _bad_ask(n, v), "ask") for n in names for k, v in BAD_NS.items()]
    cases += [_case("ask_n_numpy_int", _ask_numpy_int, "ask", "valid")]
    cases += [_case("ask_beyond_the_neural_pool", _ask_beyond_the_pool, "ask")]
    for n in names:
        for k, args in {**BASE_BAD_ARGS, **BAD_ARGS[n]}.items():
            cases.append(_case(f"init_{n}_{k}", _bad_args(n, args), "constructor"))
    cases += [_case(f"space_{k}", lambda m=m: _bad_bounds(m), "constructor") for k, m in BAD_BOUNDS.items()]
    for n in names:
        other = names[(names.index(n) + 1) % len(names)]
        cases += [
            _case(f"load_pickle_that_runs_code_{n}", _crafted(n, "pickle"), "load", "security"),
            _case(f"load_torch_save_that_runs_code_{n}", _crafted(n, "torch.save"), "load", "security"),
            _case(f"load_state_of_one_more_dim_into_{n}", _load_other(n, _one_more_dim(n)), "load"),
            _case(f"load_{other}_state_into_{n}", _load_other(n, lambda o=other: _make(o)), "load"),
            _case(f"load_round_trip_{n}", _resumes(n, old_format=False), "load", "valid"),
            _case(f"load_file_saved_before_versioning_{n}", _resumes(n, old_format=True), "load", "valid"),
        ]
    cases += [_case(f"load_{k}", _load_file(w), "load") for k, w in BAD_FILES.items()]
    cases += [_case(f"load_{k}", _load_file(w, "neural_ucb"), "load") for k, w in NEURAL_BAD_FILES.items()]
    cases += [_case(f"load_{k}", lambda k=k: _load_missing(k), "load") for k in ("missing_file", "directory")]
    cases += [_case("save_to_missing_directory", _save_to_missing_directory, "save")]
    assert len({c.name for c in cases}) == len(cases), "case names must be unique"
    return cases


CASES: list[Case] = _cases()
