"""The ask/tell interface every surrogate optimizer implements, and the search space it works in.

The interface follows Optuna's ask/tell and BoTorch's conventions (STYLE.md §6):

- `ask(n)` returns `n x d` candidates in the user's units, `tell(X, Y)` records `n x d` inputs and `n` values,
  `best()` returns the best observed point. The direction is stated once (`maximize`).
- Internally every optimizer works on the unit cube `[0, 1]^d`; `SearchSpace` maps user points to and from it.
  Integer and categorical dimensions are relaxed to intervals of the unit cube and rounded on the way out
  (categorical value `i` of `k` owns the cell `[i/k, (i+1)/k)`), the usual relaxation for GP-BO.
- Randomness comes from the `seed` given at construction. Each `ask` derives its own seed from `(seed, step)`,
  so a run that is saved and loaded continues exactly as the uninterrupted run would have.
- `state_dict()` / `load_state_dict()` hold the observations, the step counter, the search space and any method state
  as tensors and plain values (numbers, strings, lists, dicts). `save(path)` writes them with `torch.save`;
  `load(path)` reads them with `torch.load(weights_only=True)`, which refuses every other Python object, so a crafted
  file is rejected without running its code (a file that is not torch.save's zip is refused before it is parsed).
  A state is checked against the optimizer (its class, the search space's dimension, kinds and bounds, the shapes
  and values of its tensors) before anything is assigned; a mismatch raises a one-line `ConfigError` saying what
  differs. Files saved before the format was versioned (no "format" and "space" keys) hold the same plain values and
  load unchanged.
- Bad input raises a one-line `ConfigError` (a `ValueError`) where it arrives. `tell(X, Y)` takes `X` of shape
  `n x d` (or one point of shape `d`; in a 1-D space also `n`) with finite coordinates inside the space's bounds and
  whole numbers on integer and categorical dims, and `Y` with `n` finite values (shape `n`, `n x 1`, or a scalar for
  one point); nothing is reshaped or cast from bool, and a tell with `n = 0` rows records nothing. Points outside the
  bounds are refused, not clipped: the models live on the unit cube and would silently extrapolate from such a point.
  `ask(n)` needs an int `n >= 1`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError

__all__ = ["Dim", "SearchSpace", "SurrogateOptimizer", "as_search_space", "check_int", "check_number"]

# Large odd multiplier that spreads (seed, step) pairs over distinct per-step seeds.
_STEP_SEED_STRIDE = 1_000_003
_KINDS = ("continuous", "integer", "categorical")
# Seeds are combined as seed * _STEP_SEED_STRIDE + step, which must stay inside int64 (torch.Generator's range).
_MAX_ABS_SEED = 2**32
# Version of the dict `state_dict()` returns; a state without the key predates versioning (same fields, no "space").
_STATE_FORMAT = 1
_STATE_KEYS = ("class", "X", "Y", "maximize", "seed", "step", "extra")
# Slack, as a fraction of a dimension's range, for points a rounding error outside the bounds (a float32 round trip,
# or `low + u (high - low)` landing one ulp above `high`).
_BOUNDS_RTOL = 1e-6
# Slack for "whole number" on integer and categorical dimensions.
_WHOLE_ATOL = 1e-6


@dataclass(frozen=True)
class Dim:
    """One dimension of a search space.

    Args:
        name: Name used in logs.
        low: Lower bound (continuous, integer). Ignored for categorical.
        high: Upper bound, inclusive for integers. Ignored for categorical.
        kind: "continuous", "integer" or "categorical".
        choices: Number of categories (categorical only); a category is reported as its index `0..choices-1`.
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    kind: str = "continuous"
    choices: int = 0


@dataclass
class SearchSpace:
    """A box of continuous, integer and categorical dimensions with transforms to and from the unit cube.

    Example:
        >>> space = SearchSpace.box([[-5.0, 0.0], [10.0, 15.0]])
        >>> space.from_unit(torch.tensor([[0.5, 0.5]], dtype=torch.float64)).tolist()
        [[2.5, 7.5]]
    """

    dims: list[Dim] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.dims, (list, tuple)):
            raise ConfigError(f"SearchSpace(dims={_short(self.dims)}): dims must be a list of Dim.")
        problems = []
        for i, d in enumerate(self.dims):
            if not isinstance(d, Dim):
                problems.append(f"dims[{i}] = {_short(d)}: must be a Dim.")
            elif d.kind not in _KINDS:
                problems.append(f"dims[{i}].kind = {d.kind!r}: must be one of {_KINDS}.")
            elif d.kind == "categorical":
                problems += check_int(f"dims[{i}].choices", d.choices, 1, " (a categorical dim needs >= 1 choices)")
            elif not (_is_real(d.low) and _is_real(d.high) and math.isfinite(d.low) and math.isfinite(d.high)) or (
                d.low >= d.high
            ):
                problems.append(f"dims[{i}] bounds ({d.low!r}, {d.high!r}): need finite low < high.")
            elif d.kind == "integer" and not (float(d.low).is_integer() and float(d.high).is_integer()):
                problems.append(f"dims[{i}] bounds ({d.low}, {d.high}): an integer dim needs whole-number bounds.")
        if not self.dims:
            problems.append("dims = []: a search space needs at least one dimension.")
        if problems:
            raise ConfigError(problems, header="invalid search space")

    @classmethod
    def box(cls, bounds: Tensor | list[list[float]]) -> SearchSpace:
        """A continuous box from a `2 x d` bounds tensor (row 0 lower, row 1 upper), BoTorch's layout."""
        b = _real_tensor(bounds, "bounds")
        if b.ndim != 2 or b.shape[0] != 2:
            raise ConfigError(f"bounds shape {tuple(b.shape)}: must be 2 x d (lower row, upper row).")
        return cls([Dim(f"x{i}", float(lo), float(hi)) for i, (lo, hi) in enumerate(b.T.tolist())])

    @property
    def dim(self) -> int:
        return len(self.dims)

    @property
    def bounds(self) -> Tensor:
        """`2 x d` bounds in user units; a categorical dim spans `[0, choices - 1]`."""
        lo = [0.0 if d.kind == "categorical" else d.low for d in self.dims]
        hi = [float(d.choices - 1) if d.kind == "categorical" else d.high for d in self.dims]
        return torch.tensor([lo, hi], dtype=torch.float64)

    @property
    def is_continuous(self) -> bool:
        return all(d.kind == "continuous" for d in self.dims)

    def to_unit(self, X: Tensor) -> Tensor:
        """Maps `n x d` user points into the unit cube (categorical index i of k -> cell centre (i + 0.5) / k)."""
        X = torch.as_tensor(X, dtype=torch.float64)
        U = torch.empty_like(X)
        for j, d in enumerate(self.dims):
            if d.kind == "categorical":
                U[..., j] = (X[..., j] + 0.5) / d.choices
            elif d.kind == "integer":
                U[..., j] = (X[..., j] - d.low + 0.5) / (d.high - d.low + 1.0)
            else:
                U[..., j] = (X[..., j] - d.low) / (d.high - d.low)
        return U

    def from_unit(self, U: Tensor) -> Tensor:
        """Maps `n x d` unit-cube points to user points, rounding integer and categorical dims."""
        U = torch.as_tensor(U, dtype=torch.float64).clamp(0.0, 1.0)
        X = torch.empty_like(U)
        for j, d in enumerate(self.dims):
            if d.kind == "categorical":
                X[..., j] = torch.clamp(torch.floor(U[..., j] * d.choices), max=d.choices - 1)
            elif d.kind == "integer":
                n_values = d.high - d.low + 1.0
                X[..., j] = d.low + torch.clamp(torch.floor(U[..., j] * n_values), max=n_values - 1)
            else:
                X[..., j] = d.low + U[..., j] * (d.high - d.low)
        return X

    def round_unit(self, U: Tensor) -> Tensor:
        """Snaps unit-cube points to the cell centres of their integer/categorical values (identity if continuous)."""
        return U if self.is_continuous else self.to_unit(self.from_unit(U))


def as_search_space(space: SearchSpace | Tensor | list[list[float]]) -> SearchSpace:
    """Accepts a `SearchSpace` or `2 x d` bounds."""
    return space if isinstance(space, SearchSpace) else SearchSpace.box(space)


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
    """Base class of the ask/tell optimizers: stores observations, the direction, the seed and the step counter.

    Subclasses implement `_ask_unit(n, seed)` (return `n x d` points in the unit cube) and may extend `_told(X, Y)`
    (react to checked observations), `_check_ask(n)`, and `_extra_state()` / `_check_extra_state()` /
    `_load_extra_state()` (method state as tensors and plain values, checked before it is assigned).

    Args:
        space: A `SearchSpace` or `2 x d` bounds.
        maximize: Whether larger values are better (True, as BoTorch) or smaller (False).
        seed: Seed of every random choice this optimizer makes (an int with `|seed| < 2**32`).

    Example:
        >>> from rlsurrogate.blackbox import OPTIMIZERS
        >>> opt = OPTIMIZERS.get("random")([[0.0, 0.0], [1.0, 1.0]], maximize=False, seed=0)
        >>> X = opt.ask(4)                      # 4 x 2
        >>> opt.tell(X, (X**2).sum(-1))         # 4 values
        >>> x_best, y_best = opt.best()
    """

    def __init__(self, space: SearchSpace | Tensor | list[list[float]], *, maximize: bool = True, seed: int = 0):
        self.space = as_search_space(space)
        problems = _flag_problems("maximize", maximize) + _seed_problems("seed", seed)
        if problems:
            raise ConfigError(problems, header=f"invalid {type(self).__name__} arguments")
        self.maximize = bool(maximize)
        self.seed = int(seed)
        self.step = 0  # number of ask() calls so far
        self.X = torch.empty(0, self.space.dim, dtype=torch.float64)  # n x d, user units
        self.Y = torch.empty(0, dtype=torch.float64)  # n, user sign

    # -- the interface --------------------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> Tensor:
        """Proposes `n` candidates.

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
        return self.space.from_unit(self.space.round_unit(U))

    def tell(self, X: Tensor, Y: Tensor | list[float] | float) -> None:
        """Records observations; bad input raises a one-line `ConfigError` and records nothing.

        Args:
            X: `n x d` (or `d`, one point) evaluated points in user units, finite and inside the space's bounds.
            Y: `n` (or `n x 1`, or a scalar for one point) observed values; NaN/inf are rejected.
        """
        X = _points(self.space, X, "tell: X")  # n x d
        Y = _values(Y, X.shape[0], "tell: Y")  # n
        if X.shape[0] == 0:
            return
        self.X = torch.cat([self.X, X])
        self.Y = torch.cat([self.Y, Y])
        self._told(X, Y)

    def best(self) -> tuple[Tensor, float]:
        """Returns `(x, y)`: the best observed point (`d`) and its value, by the optimizer's direction."""
        if self.Y.numel() == 0:
            raise ConfigError("best(): no observations yet; call tell() first.")
        i = int(self.Y.argmax() if self.maximize else self.Y.argmin())
        return self.X[i].clone(), float(self.Y[i])

    # -- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors and plain values: observations, direction, seed, step counter,
        search space and method state."""
        return {
            "format": _STATE_FORMAT,
            "class": type(self).__name__,
            "space": [_dim_state(d) for d in self.space.dims],
            "X": self.X.clone(),
            "Y": self.Y.clone(),
            "maximize": self.maximize,
            "seed": self.seed,
            "step": self.step,
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a `state_dict()`; checks all of it first, so a refused state leaves the optimizer unchanged."""
        X, Y = self._check_state(state)
        self._check_extra_state(state["extra"])
        self.X, self.Y = X.clone(), Y.clone()
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
        """Called by `tell` after recording `n >= 1` checked points `X` (`n x d`, user units) and values `Y` (`n`)."""
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

    def _check_state(self, state: Any) -> tuple[Tensor, Tensor]:
        """Checks the common part of a state against this optimizer; returns its `n x d` X and `n` Y."""
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
        X, Y = state["X"], state["Y"]
        d = self.space.dim
        if not isinstance(X, Tensor):
            raise ConfigError(f"state X is a {type(X).__name__}: must be an n x {d} tensor.")
        if X.ndim != 2 or X.shape[1] != d:
            raise ConfigError(
                f"state X has shape {tuple(X.shape)} but this optimizer's space is {d}-D: the dimensions differ."
            )
        X = _points(self.space, X, "state X")
        if not isinstance(Y, Tensor):
            raise ConfigError(f"state Y is a {type(Y).__name__}: must be a tensor of {X.shape[0]} values.")
        Y = _values(Y, X.shape[0], "state Y")
        problems = _flag_problems("state maximize", state["maximize"]) + _seed_problems("state seed", state["seed"])
        problems += check_int("state step", state["step"], 0)
        if problems:
            raise ConfigError(problems[0])
        return X, Y


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
        fractional = (T[:, j] - T[:, j].round()).abs() > _WHOLE_ATOL  # n
        if dim.kind != "continuous" and fractional.any():
            i = int(fractional.nonzero()[0])
            raise ConfigError(f"{what}[{i}, {j}] = {float(T[i, j])}: {dim.kind} dim {dim.name} takes whole numbers.")
    return T


def _values(Y: object, n: int, what: str) -> Tensor:
    """Checks observed values for `n` points; returns them as an `n` float64 vector (`n x 1` and scalars accepted)."""
    T = _real_tensor(Y, what)
    if T.ndim == 0 or (T.ndim == 2 and T.shape[1] == 1):
        T = T.reshape(-1)
    if T.ndim != 1:
        raise ConfigError(f"{what} has shape {tuple(T.shape)}: must be n values (shape (n,) or n x 1).")
    if T.shape[0] != n:
        raise ConfigError(f"{what} has {T.shape[0]} values but X has {n} rows; pass one value per row.")
    bad = (~torch.isfinite(T)).nonzero()
    if bad.numel():
        i = int(bad[0])
        raise ConfigError(
            f"{what}[{i}] = {float(T[i])} is NaN or inf; drop failed evaluations (and their X rows) before tell()."
        )
    return T


def _dim_state(d: Dim) -> dict[str, Any]:
    return {"name": d.name, "kind": d.kind, "low": float(d.low), "high": float(d.high), "choices": int(d.choices)}


def _describe(d: dict[str, Any]) -> str:
    if d.get("kind") == "categorical":
        return f"categorical with {d.get('choices')} choices"
    return f"{d.get('kind')} in [{d.get('low')}, {d.get('high')}]"


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
        keys = ("kind", "choices") if d.kind == "categorical" else ("kind", "low", "high")
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
