"""The ask/tell interface every surrogate optimizer implements.

The interface follows Optuna's ask/tell and BoTorch's conventions (STYLE.md §6):

- `ask(n)` returns `n x d` candidates in user units (`space.py`: a categorical as its index), `tell(X, Y)` records
  them with their values, `best()` returns the best observed point. The direction is stated once (`maximize`).
  `ask_params()` / `tell(params, value)` / `best_params()` do the same with `{name: value}` dicts of a named space.
- A failed evaluation is told as NaN or None: it is kept (`X_failed`, saved with the state) but never modelled.
- Points asked and not yet told are pending (`X_pending`): asynchronous workers ask again before the first tell, and
  model-based optimizers condition on the pending points (BO fantasises them) instead of proposing them twice.
  A tell removes the pending row it matches; `set_pending` replaces them (e.g. trials running elsewhere).
- Outcome constraints (Ax's and BoTorch's term): `outcome_constraints={"latency": 100.0}` asks that each named
  outcome stay `<=` its bound. `tell(..., constraints=...)` records the outcomes with each value; `best()` is the
  best feasible point; BO models each outcome (the other optimizers only record them).
- Internally every optimizer works on the unit cube `[0, 1]^d`; `SearchSpace` maps user points to and from it.
- Randomness comes from the `seed` given at construction. Each `ask` derives its own seed from `(seed, step)`,
  so a run that is saved and loaded continues exactly as the uninterrupted run would have.
- `state_dict()` / `load_state_dict()` hold the observations, pending and failed points, the step counter, the search
  space and any method state as tensors and plain values. `save(path)` writes them with `torch.save`; `load(path)`
  reads them with `torch.load(weights_only=True)`, which refuses every other Python object, so a crafted file is
  rejected without running its code. `state_to_json` / `state_from_json` turn a state into JSON and back exactly
  (the CLI keeps it in its log, no pickle involved). A state is checked against the optimizer (its class, the
  search space, the outcome constraints, the shapes and values of its tensors) before anything is assigned; a
  mismatch raises a one-line `ConfigError` saying what differs. States of earlier formats load unchanged.
- Bad input raises a one-line `ConfigError` (a `ValueError`) where it arrives and records nothing. `tell(X, Y)` takes
  `X` of shape `n x d` (or one point of shape `d`; in a 1-D space also `n`), or one `{name: value}` dict or a list
  of them, with finite coordinates inside the space's bounds and whole numbers on discrete dims, and `Y` with `n`
  values (shape `n`, `n x 1`, or a scalar for one point), each finite, NaN or None; nothing is reshaped or cast from
  bool, and a tell with `n = 0` rows records nothing. Points outside the bounds are refused, not clipped: the models
  live on the unit cube and would silently extrapolate from such a point. `ask(n)` needs an int `n >= 1`.

`rlsurrogate.blackbox.OPTIMIZERS` is the registry of these optimizers; build one with
`OPTIMIZERS.get(name)(space, seed=..., ...)`.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
import re
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.blackbox.space import Dim, SearchSpace, as_search_space
from rlsurrogate.errors import ConfigError

__all__ = [
    "Dim",
    "SearchSpace",
    "SurrogateOptimizer",
    "as_search_space",
    "check_int",
    "check_number",
    "state_from_json",
    "state_to_json",
]

# Large odd multiplier that spreads (seed, step) pairs over distinct per-step seeds.
_STEP_SEED_STRIDE = 1_000_003
# Seeds are combined as seed * _STEP_SEED_STRIDE + step, which must stay inside int64 (torch.Generator's range).
_MAX_ABS_SEED = 2**32
# Version of the dict `state_dict()` returns. 0: no "format" and "space" keys; 1: adds them; 2: adds "X_pending",
# "X_failed", "C" and "outcome_constraints" (absent in older states: none of each).
_STATE_FORMAT = 2
_STATE_KEYS = ("class", "X", "Y", "maximize", "seed", "step", "extra")
# Slack, as a fraction of a dimension's range, for points a rounding error outside the bounds (a float32 round trip,
# or `low + u (high - low)` landing one ulp above `high`).
_BOUNDS_RTOL = 1e-6
# Slack for "whole number" on integer and categorical dimensions, and for "on the step grid" (fraction of a step).
_WHOLE_ATOL = 1e-6
# A told point matches a pending one when every coordinate agrees to this fraction of its dimension's range.
_PENDING_RTOL = 1e-9
# Tensor dtypes a JSON state may name (the ones state_dict() produces).
_JSON_DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


def check_int(name: str, value: object, minimum: int, rule: str = "") -> list[str]:
    """`[]` if `value` is an int >= `minimum` (a bool or a float is not), else one problem line for a `ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        return [f"{name} = {_short(value)}: must be an int >= {minimum}{rule}."]
    return []


def check_number(name: str, value: object, minimum: float, *, strict: bool = False, rule: str = "") -> list[str]:
    """`[]` if `value` is a finite real number >= `minimum` (> with `strict`), else one problem line."""
    x = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not math.isfinite(x) or x < minimum or (strict and x == minimum):
        return [f"{name} = {_short(value)}: must be a finite number {'>' if strict else '>='} {minimum}{rule}."]
    return []


class SurrogateOptimizer(ABC):
    """Base class of the ask/tell optimizers: stores observations, failures, pending points, the direction, the seed
    and the step counter.

    Subclasses implement `_ask_unit(n, seed)` (return `n x d` points in the unit cube; `self.X_pending` holds the
    points asked before) and may extend `_told(X, Y)` (react to checked successful observations), `_check_ask(n)`,
    and `_extra_state()` / `_check_extra_state()` / `_load_extra_state()` (method state as tensors and plain values,
    checked before it is assigned).

    Args:
        space: A `SearchSpace` or `2 x d` bounds.
        maximize: Whether larger values are better (True, as BoTorch) or smaller (False).
        seed: Seed of every random choice this optimizer makes (an int with `|seed| < 2**32`).
        outcome_constraints: `{name: bound}`: outcomes told with each value that must stay `<= bound`.

    Example:
        >>> from rlsurrogate.blackbox import OPTIMIZERS
        >>> opt = OPTIMIZERS.get("random")([[0.0, 0.0], [1.0, 1.0]], maximize=False, seed=0)
        >>> X = opt.ask(4)                      # 4 x 2
        >>> opt.tell(X, (X**2).sum(-1))         # 4 values
        >>> x_best, y_best = opt.best()
        >>> params = opt.ask_params()           # {"x0": ..., "x1": ...}
        >>> opt.tell(params, None)              # a failed evaluation
    """

    def __init__(
        self,
        space: SearchSpace | Tensor | list[list[float]],
        *,
        maximize: bool = True,
        seed: int = 0,
        outcome_constraints: Mapping[str, float] | None = None,
    ):
        self.space = as_search_space(space)
        problems = _flag_problems("maximize", maximize) + _seed_problems("seed", seed)
        problems += _constraint_problems(outcome_constraints)
        if problems:
            raise ConfigError(problems, header=f"invalid {type(self).__name__} arguments")
        self.maximize = bool(maximize)
        self.seed = int(seed)
        self.outcome_constraints = {k: float(v) for k, v in (outcome_constraints or {}).items()}
        self.step = 0  # number of ask() calls so far
        d, m = self.space.dim, len(self.outcome_constraints)
        self.X = torch.empty(0, d, dtype=torch.float64)  # n x d, user units, successful evaluations
        self.Y = torch.empty(0, dtype=torch.float64)  # n, user sign
        self.C = torch.empty(0, m, dtype=torch.float64)  # n x m outcome-constraint values
        self.X_failed = torch.empty(0, d, dtype=torch.float64)  # points whose evaluation failed (NaN / None)
        self.X_pending = torch.empty(0, d, dtype=torch.float64)  # asked, not told yet

    # -- the interface --------------------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> Tensor:
        """Proposes `n` candidates (and records them as pending until they are told).

        Args:
            n: Number of candidates (a batch of `q = n` for BO), an int >= 1.

        Returns:
            `n x d` float64 tensor in user units (integer/categorical dims hold whole numbers).
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ConfigError(f"ask(n={_short(n)}): n must be an int >= 1.")
        n = int(n)
        self._check_ask(n)
        seed = self.seed * _STEP_SEED_STRIDE + self.step
        self.step += 1
        U = self._ask_unit(n, seed)  # n x d
        X = self.space.from_unit(self.space.round_unit(U))
        self.X_pending = torch.cat([self.X_pending, X])
        return X

    def ask_params(self) -> dict[str, Any]:
        """Proposes one candidate as a `{name: value}` dict (a float, an int, or a categorical's choice)."""
        return self.space.decode(self.ask(1))[0]

    def tell(
        self,
        X: Tensor | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        Y: Tensor | Sequence[float | None] | float | None,
        constraints: Tensor | Mapping[str, Any] | Sequence[Mapping[str, float]] | None = None,
    ) -> None:
        """Records evaluations; bad input raises a one-line `ConfigError` and records nothing.

        Args:
            X: `n x d` (or `d`, one point) evaluated points in user units, or one `{name: value}` dict, or a list.
            Y: `n` (or `n x 1`, or a scalar for one point) values; NaN or None marks a failed evaluation.
            constraints: The outcome-constraint values of the successful points: `n x m` (columns in the order of
                `outcome_constraints`), or `{name: value}` for one point, or a list of such dicts.
        """
        X = self._told_points(X, "tell: X")  # n x d
        Y, failed = _values(Y, X.shape[0], "tell: Y")  # n, n
        C = self._constraint_values(constraints, failed)  # n x m
        if X.shape[0] == 0:
            return
        self.X_pending = self.X_pending[_unmatched(self.X_pending, X, self.space)]
        ok = ~failed
        self.X, self.Y, self.C = torch.cat([self.X, X[ok]]), torch.cat([self.Y, Y[ok]]), torch.cat([self.C, C[ok]])
        self.X_failed = torch.cat([self.X_failed, X[failed]])
        if ok.any():
            self._told(X[ok], Y[ok])

    def set_pending(self, X: Tensor | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Replaces the pending points (being evaluated, not told yet): `n x d` user points or `{name: value}`s."""
        self.X_pending = self._told_points(X, "set_pending: X")

    def best(self) -> tuple[Tensor, float]:
        """Returns `(x, y)`: the best feasible observed point (`d`) and its value, by the optimizer's direction."""
        if self.Y.numel() == 0:
            failed = f" ({self.X_failed.shape[0]} failed)" if self.X_failed.shape[0] else ""
            raise ConfigError(f"best(): no successful observations yet{failed}; call tell() first.")
        feasible = self.feasible
        if not feasible.any():
            raise ConfigError(
                f"best(): none of the {self.Y.numel()} observations satisfies the outcome constraints "
                f"{self.outcome_constraints} yet."
            )
        Y = torch.where(feasible, self.Y_max, torch.full_like(self.Y, -math.inf))
        i = int(Y.argmax())
        return self.X[i].clone(), float(self.Y[i])

    def best_params(self) -> tuple[dict[str, Any], float]:
        """`best()` as `({name: value}, y)`."""
        x, y = self.best()
        return self.space.decode(x.unsqueeze(0))[0], y

    @property
    def feasible(self) -> Tensor:
        """`n` bools: which successful observations satisfy every outcome constraint (all True without any)."""
        bounds = torch.tensor(list(self.outcome_constraints.values()), dtype=torch.float64)
        return (self.C <= bounds).all(-1)

    # -- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors and plain values: observations, failed and pending points,
        direction, seed, step counter, search space, outcome constraints and method state."""
        return {
            "format": _STATE_FORMAT,
            "class": type(self).__name__,
            "space": [_dim_state(d) for d in self.space.dims],
            "X": self.X.clone(),
            "Y": self.Y.clone(),
            "C": self.C.clone(),
            "X_failed": self.X_failed.clone(),
            "X_pending": self.X_pending.clone(),
            "outcome_constraints": dict(self.outcome_constraints),
            "maximize": self.maximize,
            "seed": self.seed,
            "step": self.step,
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a `state_dict()`; checks all of it first, so a refused state leaves the optimizer unchanged."""
        X, Y, C, X_failed, X_pending = self._check_state(state)
        self._check_extra_state(state["extra"])
        self.X, self.Y, self.C = X.clone(), Y.clone(), C.clone()
        self.X_failed, self.X_pending = X_failed.clone(), X_pending.clone()
        self.maximize, self.seed, self.step = bool(state["maximize"]), int(state["seed"]), int(state["step"])
        self._load_extra_state(state["extra"])

    def save(self, path: str | Path) -> None:
        """Writes `state_dict()` with `torch.save` via a temporary file: an interrupted save keeps the old file."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:  # torch.save reports a missing directory as a RuntimeError
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"save({path}): cannot write the state ({_first_line(err)}).") from err

    def load(self, path: str | Path) -> None:
        """Reads a file written by `save` (tensors and plain values only; nothing else is unpickled) and resumes."""
        self.load_state_dict(_read_state(Path(path)))

    # -- for subclasses --------------------------------------------------------------------------------------------
    @abstractmethod
    def _ask_unit(self, n: int, seed: int) -> Tensor:
        """Returns `n x d` points in the unit cube; `seed` is this step's seed."""

    def _check_ask(self, n: int) -> None:
        """Raises `ConfigError` when `n` candidates cannot be proposed now (before the step counter moves)."""
        del n

    def _told(self, X: Tensor, Y: Tensor) -> None:
        """Called by `tell` after recording `n >= 1` successful points `X` (`n x d`, user units) and values `Y`."""
        del X, Y

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _check_extra_state(self, extra: Any) -> None:
        """Raises a one-line `ConfigError` if `extra` (from a file) is not this optimizer's method state."""
        if not isinstance(extra, dict):
            raise ConfigError(f"state extra = {_short(extra)}: must be a dict of {type(self).__name__} state.")

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        del extra

    @property
    def U(self) -> Tensor:
        """`n x d` observed points in the unit cube."""
        return self.space.to_unit(self.X)

    @property
    def Y_max(self) -> Tensor:
        """`n` observed values in the maximisation convention (negated when minimizing)."""
        return self.Y if self.maximize else -self.Y

    def _told_points(self, X: object, what: str) -> Tensor:
        """`n x d` checked user points from a tensor-like or from `{name: value}` dicts."""
        if isinstance(X, Mapping) or (isinstance(X, (list, tuple)) and X and isinstance(X[0], Mapping)):
            X = self.space.encode(X)  # type: ignore[arg-type]
        return _points(self.space, X, what)

    def _constraint_values(self, constraints: object, failed: Tensor) -> Tensor:
        """`n x m` outcome-constraint values (NaN on failed rows); refuses missing, extra or non-finite values."""
        names, n = list(self.outcome_constraints), failed.shape[0]
        if not names:
            if constraints is not None:
                raise ConfigError(
                    "tell: constraints given, but this optimizer has no outcome_constraints; build it with "
                    "outcome_constraints={name: bound} to use them."
                )
            return torch.empty(n, 0, dtype=torch.float64)
        if constraints is None:
            if bool((~failed).any()):
                raise ConfigError(
                    f"tell: constraints missing; this optimizer has outcome constraints {names}: pass "
                    "constraints={name: value} (or an n x m tensor) for each successful evaluation."
                )
            return torch.full((n, len(names)), math.nan, dtype=torch.float64)
        if isinstance(constraints, Mapping):
            constraints = [constraints] if n == 1 else [dict(zip(constraints, v)) for v in zip(*constraints.values())]
        if isinstance(constraints, (list, tuple)) and constraints and isinstance(constraints[0], Mapping):
            rows = []
            for row in constraints:
                if not isinstance(row, Mapping) or set(row) != set(names):
                    raise ConfigError(
                        f"tell: constraints {_short(row)}: need exactly the names {names} (the outcome_constraints)."
                    )
                rows.append([math.nan if row[k] is None else row[k] for k in names])
            constraints = rows
        C = _real_tensor(constraints, "tell: constraints")
        if C.ndim == 1 and n == 1:
            C = C.unsqueeze(0)
        if C.shape != (n, len(names)):
            raise ConfigError(
                f"tell: constraints has shape {tuple(C.shape)}: must be {n} x {len(names)} (one column per "
                f"outcome constraint {names})."
            )
        bad = (~torch.isfinite(C) & ~failed.unsqueeze(-1)).nonzero()
        if bad.numel():
            i, j = (int(v) for v in bad[0])
            raise ConfigError(
                f"tell: constraints[{i}][{names[j]!r}] = {float(C[i, j])}: must be finite for a successful "
                "evaluation; tell the value as None to mark the evaluation failed."
            )
        return C

    def _check_state(self, state: Any) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Checks the common part of a state against this optimizer; returns its X, Y, C, X_failed and X_pending."""
        name = type(self).__name__
        if not isinstance(state, dict):
            raise ConfigError(f"state is a {type(state).__name__}, not a dict from {name}.state_dict().")
        fmt = state.get("format", 0)
        if type(fmt) is not int or not 0 <= fmt <= _STATE_FORMAT:
            raise ConfigError(
                f"state format {_short(fmt)}: this rlsurrogate reads formats 0-{_STATE_FORMAT}; upgrade it."
            )
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ConfigError(f"state lacks {missing}: not a state written by {name}.save() / state_dict().")
        if state["class"] != name:
            kind = state["class"] if isinstance(state["class"], str) else _short(state["class"])
            raise ConfigError(
                f"state of a {kind} cannot be loaded into a {name}; build a {kind} with the same space to resume it."
            )
        if "space" in state:
            _check_space_state(state["space"], self.space)
        saved = state.get("outcome_constraints", {})
        if saved != self.outcome_constraints:
            raise ConfigError(
                f"state has outcome constraints {_short(saved)} but this optimizer has {self.outcome_constraints}; "
                "build it with the constraints the state was saved with."
            )
        X, Y = state["X"], state["Y"]
        d, m = self.space.dim, len(self.outcome_constraints)
        if not isinstance(X, Tensor):
            raise ConfigError(f"state X is a {type(X).__name__}: must be an n x {d} tensor.")
        if X.ndim != 2 or X.shape[1] != d:
            raise ConfigError(
                f"state X has shape {tuple(X.shape)} but this optimizer's space is {d}-D: the dimensions differ."
            )
        X = _points(self.space, X, "state X")
        if not isinstance(Y, Tensor):
            raise ConfigError(f"state Y is a {type(Y).__name__}: must be a tensor of {X.shape[0]} values.")
        Y, failed = _values(Y, X.shape[0], "state Y")
        if failed.any():
            raise ConfigError(f"state Y[{int(failed.nonzero()[0])}] is NaN: stored observations must be finite.")
        C = state.get("C", torch.empty(X.shape[0], 0, dtype=torch.float64))
        if not isinstance(C, Tensor) or C.shape != (X.shape[0], m) or not bool(torch.isfinite(C).all()):
            raise ConfigError(f"state C = {_short(C)}: must be a finite {X.shape[0]} x {m} tensor.")
        X_failed = _points(self.space, state.get("X_failed", X[:0]), "state X_failed").reshape(-1, d)
        X_pending = _points(self.space, state.get("X_pending", X[:0]), "state X_pending").reshape(-1, d)
        problems = _flag_problems("state maximize", state["maximize"]) + _seed_problems("state seed", state["seed"])
        problems += check_int("state step", state["step"], 0)
        if problems:
            raise ConfigError(problems[0])
        return X, Y, C.to(torch.float64), X_failed, X_pending


def state_to_json(state: Any) -> Any:
    """A `state_dict()` as JSON-ready values: each tensor becomes `{"tensor": nested list, "dtype", "shape"}`.

    Python's JSON writes the shortest repr of each float, which reads back to the same float64, so
    `state_from_json(json.loads(json.dumps(state_to_json(s))))` restores `s` exactly.
    """
    if isinstance(state, Tensor):
        dtype = str(state.dtype).removeprefix("torch.")
        return {"tensor": state.tolist(), "dtype": dtype, "shape": list(state.shape)}
    if isinstance(state, dict):
        return {str(k): state_to_json(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [state_to_json(v) for v in state]
    return state


def state_from_json(obj: Any) -> Any:
    """Inverse of `state_to_json`; a malformed tensor entry raises a one-line `ConfigError`."""
    if isinstance(obj, dict) and set(obj) == {"tensor", "dtype", "shape"}:
        dtype = _JSON_DTYPES.get(obj["dtype"]) if isinstance(obj["dtype"], str) else None
        if dtype is None or not isinstance(obj["shape"], list):
            raise ConfigError(f"state tensor {_short(obj)}: dtype must be one of {sorted(_JSON_DTYPES)}.")
        try:
            return torch.tensor(obj["tensor"], dtype=dtype).reshape(obj["shape"])
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"state tensor {_short(obj)}: data does not fit shape {obj['shape']}.") from err
    if isinstance(obj, dict):
        return {k: state_from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [state_from_json(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------------------------------
def _short(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return _short(lines[0] if lines else type(err).__name__, 120).strip("'\"")


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _flag_problems(name: str, value: object) -> list[str]:
    ok = isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1))
    return [] if ok else [f"{name} = {_short(value)}: must be True or False."]


def _seed_problems(name: str, value: object) -> list[str]:
    ok = _is_real(value) and isinstance(value, numbers.Integral) and abs(int(value)) < _MAX_ABS_SEED
    return [] if ok else [f"{name} = {_short(value)}: must be an int with |seed| < 2**32."]


def _real_tensor(value: object, what: str) -> Tensor:
    """`value` as a detached float64 CPU tensor; bool, complex and non-numeric input is refused, never cast."""
    try:
        raw = value if isinstance(value, Tensor) else torch.as_tensor(value)
        if raw.dtype == torch.bool or raw.is_complex():
            raise ConfigError(f"{what} has dtype {raw.dtype}: must hold real numbers (a float or int tensor).")
        return torch.as_tensor(value, dtype=torch.float64).detach().to("cpu")
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(
            f"{what} = {_short(value)}: must be real numbers (a tensor, array or nested list of floats)."
        ) from err


def _points(space: SearchSpace, X: object, what: str) -> Tensor:
    """Checks user points against `space`; returns them as `n x d` float64 (a `d` vector becomes `1 x d`)."""
    T = _real_tensor(X, what)
    d = space.dim
    if T.ndim == 1 and (T.shape[0] == d or d == 1):  # one point; in a 1-D space, one value per point
        T = T.reshape(-1, d)
    if T.ndim != 2 or T.shape[1] != d:
        raise ConfigError(
            f"{what} has shape {tuple(T.shape)}: must be n x {d} (n points of the {d}-D space) or one point ({d},)."
        )
    rows = (~torch.isfinite(T)).any(-1).nonzero()
    if rows.numel():
        i = int(rows[0])
        raise ConfigError(f"{what}[{i}] = {_short(T[i].tolist())} is not finite; pass finite coordinates.")
    lo, hi = space.bounds  # d, d
    slack = _BOUNDS_RTOL * (hi - lo)
    outside = ((T < lo - slack) | (T > hi + slack)).nonzero()
    if outside.numel():
        i, j = (int(v) for v in outside[0])
        raise ConfigError(
            f"{what}[{i}, {j}] = {float(T[i, j])} is outside {space.dims[j].name}'s bounds [{float(lo[j])}, "
            f"{float(hi[j])}]; tell only points inside the search space (or widen it)."
        )
    for j, dim in enumerate(space.dims):
        if dim.n_values is None:
            continue
        grid = (T[:, j] - lo[j]) / (dim.step if dim.step is not None else 1.0)  # n, whole on the dim's values
        off = (grid - grid.round()).abs() > _WHOLE_ATOL
        if off.any():
            i = int(off.nonzero()[0])
            takes = f"multiples of step {dim.step} from {dim.low}" if dim.step is not None else "whole numbers"
            raise ConfigError(f"{what}[{i}, {j}] = {float(T[i, j])}: {dim.kind} dim {dim.name} takes {takes}.")
    return T


def _values(Y: object, n: int, what: str) -> tuple[Tensor, Tensor]:
    """Checks observed values for `n` points; returns an `n` float64 vector (NaN where an evaluation failed: a NaN
    or None) and the `n` bool mask of failures (`n x 1` and scalars accepted; inf is refused)."""
    if Y is None:
        Y = [math.nan]
    elif isinstance(Y, (list, tuple)):
        Y = [math.nan if v is None else v for v in Y]
    T = _real_tensor(Y, what)
    if T.ndim == 0 or (T.ndim == 2 and T.shape[1] == 1):
        T = T.reshape(-1)
    if T.ndim != 1:
        raise ConfigError(f"{what} has shape {tuple(T.shape)}: must be n values (shape (n,) or n x 1).")
    if T.shape[0] != n:
        raise ConfigError(f"{what} has {T.shape[0]} values but X has {n} rows; pass one value per row.")
    bad = torch.isinf(T).nonzero()
    if bad.numel():
        i = int(bad[0])
        raise ConfigError(
            f"{what}[{i}] = {float(T[i])} is inf; pass a finite value, or NaN / None to mark a failed evaluation."
        )
    return T, torch.isnan(T)


def _constraint_problems(constraints: object) -> list[str]:
    if constraints is None:
        return []
    if not isinstance(constraints, Mapping):
        return [f"outcome_constraints = {_short(constraints)}: must be a {{name: bound}} dict."]
    return [
        f"outcome_constraints[{_short(k)}] = {_short(v)}: need a string name and a finite bound (value <= bound)."
        for k, v in constraints.items()
        if not isinstance(k, str) or not _is_real(v) or not math.isfinite(float(v))
    ]


def _unmatched(pending: Tensor, X: Tensor, space: SearchSpace) -> Tensor:
    """`p` bools: the pending rows left after each row of `X` removes the first still-pending row it matches."""
    keep = torch.ones(pending.shape[0], dtype=torch.bool)
    if not pending.shape[0]:
        return keep
    lo, hi = space.bounds
    tol = _PENDING_RTOL * (hi - lo).clamp_min(1.0)
    close = ((pending.unsqueeze(1) - X.unsqueeze(0)).abs() <= tol).all(-1)  # p x n
    for j in range(X.shape[0]):
        hits = (close[:, j] & keep).nonzero()
        if hits.numel():
            keep[int(hits[0])] = False
    return keep


def _dim_state(d: Dim) -> dict[str, Any]:
    choices = list(d.choices) if isinstance(d.choices, tuple) else int(d.choices)
    return {
        "name": d.name,
        "kind": d.kind,
        "low": float(d.low),
        "high": float(d.high),
        "choices": choices,
        "log": bool(d.log),
        "step": None if d.step is None else float(d.step),
    }


def _describe(d: dict[str, Any]) -> str:
    if d.get("kind") == "categorical":
        return f"categorical with choices {_short(d.get('choices'))}"
    scale = " (log)" if d.get("log") else f" step {d.get('step')}" if d.get("step") is not None else ""
    return f"{d.get('kind')} in [{d.get('low')}, {d.get('high')}]{scale}"


def _check_space_state(saved: Any, space: SearchSpace) -> None:
    """Raises a one-line `ConfigError` naming the first difference between a saved space and `space`."""
    if not isinstance(saved, list) or not all(isinstance(d, dict) for d in saved):
        raise ConfigError(f"state space = {_short(saved)}: must be a list of dims (one dict each).")
    if len(saved) != space.dim:
        raise ConfigError(
            f"state is of a {len(saved)}-D search space but this optimizer's is {space.dim}-D: the dimensions differ."
        )
    for j, (s, d) in enumerate(zip(saved, space.dims)):
        ours = _dim_state(d)
        s = {"log": False, "step": None, **s}  # states of format <= 1 had neither
        if d.kind == "categorical" and isinstance(s.get("choices"), int) and isinstance(ours["choices"], list):
            s["choices"] = ours["choices"] if s["choices"] == len(ours["choices"]) else s["choices"]
        keys = ("kind", "choices") if d.kind == "categorical" else ("kind", "low", "high", "log", "step")
        if any(s.get(k) != ours[k] for k in keys):
            raise ConfigError(
                f"state dim {j} ({s.get('name')}) is {_describe(s)} but this optimizer's dim {j} ({d.name}) is "
                f"{_describe(ours)}; build the optimizer with the search space the state was saved from."
            )


def _read_state(path: Path) -> Any:
    """Loads a `save()` file with `torch.load(weights_only=True)`; any other file raises a one-line `ConfigError`."""
    if not path.is_file():
        found = "a directory" if path.is_dir() else "no such file"
        raise ConfigError(f"load({path}): {found}; pass a file written by save().")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip; anything else is refused before it is parsed
        raise ConfigError(
            f"load({path}): not a file written by save() (torch.save's zip format), so it is refused unread; if it "
            "is a pickled state you trust, unpickle it yourself and pass the dict to load_state_dict()."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        match = re.search(r"GLOBAL (\S+)", str(err))
        what = f" ({match.group(1)})" if match else ""
        raise ConfigError(
            f"load({path}): refused: the file holds a Python object{what} other than tensors and plain values, and "
            "unpickling it could run code. Only states written by save() load; if you trust the file, torch.load it "
            "yourself and pass the dict to load_state_dict()."
        ) from err
    except Exception as err:  # a damaged or foreign zip: torch raises RuntimeError, KeyError, EOFError, ...
        raise ConfigError(
            f"load({path}): cannot read it ({type(err).__name__}: {_first_line(err)}); the file is damaged or was "
            "not written by save()."
        ) from err
