"""Named mixed search spaces: float (linear or log), integer (linear, log or stepped) and categorical parameters.

A `SearchSpace` is a list of named `Dim`s. Build one the way Optuna users write `trial.suggest_*` (names follow
ConfigSpace's `Float`, `Integer`, `Categorical`):

    >>> space = SearchSpace(
    ...     [Float("lr", 1e-5, 1e-1, log=True), Integer("layers", 1, 8), Categorical("act", ["relu", "gelu"])]
    ... )
    >>> space.decode(torch.tensor([[1e-3, 4.0, 1.0]], dtype=torch.float64))
    [{'lr': 0.001, 'layers': 4, 'act': 'gelu'}]

Three representations of a point, each `n x ...` float64:
- user units `X` (`n x d`): a float's value, an integer's value, a categorical's index into its choices. The ask/tell
  optimizers take and return these; `decode` / `encode` turn them into `{name: value}` dicts and back.
- the unit cube `U` (`n x d`, BoTorch's convention): a linear float maps affinely, a log float by its logarithm; an
  integer (or stepped float) with `k` values, and a categorical with `k` choices, is relaxed to `[0, 1]` with value
  `i` owning the cell `[i / k, (i + 1) / k)` (on the log scale for log integers), the usual relaxation for GP-BO.
  `from_unit` rounds each cell to its value.
- model features `F` (`n x D`, `one_hot`): `U` with each categorical cell replaced by a one-hot block of its `k`
  choices, so a GP's ARD kernel sees no order between choices (the choice is justified in bo.py's notes).

Every problem with a space (bad bounds, duplicate names, a log range that includes 0, a step that does not divide
the range, unknown choices in `encode`) raises a `ConfigError` that names the parameter and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError

__all__ = ["Categorical", "Dim", "Float", "Integer", "SearchSpace", "as_search_space"]

_KINDS = ("continuous", "integer", "categorical")
# Names a JSON space file uses for the kinds (Optuna's suggest_float / suggest_int / suggest_categorical).
_TYPE_NAMES = {"float": "continuous", "int": "integer", "categorical": "categorical"}
_KIND_NAMES = {v: k for k, v in _TYPE_NAMES.items()}
# Slack for "lies on the step grid", as a fraction of one step.
_GRID_ATOL = 1e-6


@dataclass(frozen=True)
class Dim:
    """One named parameter of a search space; `Float`, `Integer` and `Categorical` build the usual ones.

    Args:
        name: The parameter's name (the key in `decode`'s dicts).
        low: Lower bound (continuous, integer). Ignored for categorical.
        high: Upper bound, inclusive. Ignored for categorical.
        kind: "continuous", "integer" or "categorical".
        choices: Categorical only: the choices (a list of str / int / float / bool / None), or their number `k`
            (then a choice is reported as its index `0..k-1`).
        log: Search on the log scale (continuous and integer; needs `low > 0`).
        step: Grid spacing (continuous: values `low + i step`; integer: default 1). `None` for a plain float.
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    kind: str = "continuous"
    choices: int | tuple = 0
    log: bool = False
    step: float | None = None

    @property
    def n_choices(self) -> int:
        """Number of categorical choices (0 for other kinds)."""
        if self.kind != "categorical":
            return 0
        return len(self.choices) if isinstance(self.choices, tuple) else int(self.choices)

    @property
    def n_values(self) -> int | None:
        """Number of values of a discrete dim (integer, stepped float, categorical); None for a plain float."""
        if self.kind == "categorical":
            return self.n_choices
        if self.kind == "integer" or self.step is not None:
            return int(round((self.high - self.low) / self._step)) + 1
        return None

    @property
    def _step(self) -> float:
        return float(self.step) if self.step is not None else 1.0


def Float(name: str, low: float, high: float, *, log: bool = False, step: float | None = None) -> Dim:  # noqa: N802
    """A float parameter in `[low, high]` (Optuna's `suggest_float`), on the log scale with `log=True`."""
    return Dim(name, low, high, "continuous", log=log, step=step)


def Integer(name: str, low: int, high: int, *, log: bool = False, step: int = 1) -> Dim:  # noqa: N802
    """An integer parameter in `[low, high]` (Optuna's `suggest_int`), on the log scale with `log=True`."""
    return Dim(name, low, high, "integer", log=log, step=None if step == 1 else step)


def Categorical(name: str, choices: Sequence[Any]) -> Dim:  # noqa: N802
    """A categorical parameter (Optuna's `suggest_categorical`): one of `choices` (str, int, float, bool or None)."""
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
        raise ConfigError(f"Categorical({name!r}, choices={_short(choices)}): choices must be a list of values.")
    return Dim(name, kind="categorical", choices=tuple(choices))


@dataclass
class SearchSpace:
    """Named float, integer and categorical dims with maps to the unit cube, model features and `{name: value}`.

    Example:
        >>> space = SearchSpace.box([[-5.0, 0.0], [10.0, 15.0]])
        >>> space.from_unit(torch.tensor([[0.5, 0.5]], dtype=torch.float64)).tolist()
        [[2.5, 7.5]]
    """

    dims: list[Dim] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.dims, (list, tuple)):
            raise ConfigError(f"SearchSpace(dims={_short(self.dims)}): dims must be a list of Dim.")
        self.dims = list(self.dims)
        problems = []
        for i, d in enumerate(self.dims):
            problems += [f"dims[{i}]{p}" for p in _dim_problems(d)]
        names = [d.name for d in self.dims if isinstance(d, Dim)]
        for name in sorted({n for n in names if names.count(n) > 1}, key=str):
            problems.append(f"name {name!r} is used by {names.count(name)} dims: give each parameter its own name.")
        if not self.dims:
            problems.append("dims = []: a search space needs at least one dimension.")
        if problems:
            raise ConfigError(problems, header="invalid search space")

    @classmethod
    def box(cls, bounds: Tensor | list[list[float]]) -> SearchSpace:
        """A continuous box named `x0, x1, ...` from a `2 x d` bounds tensor (row 0 lower, row 1 upper)."""
        try:
            b = torch.as_tensor(bounds, dtype=torch.float64) if not isinstance(bounds, Tensor) else bounds
            if b.dtype == torch.bool or b.is_complex():
                raise TypeError
            b = b.to(torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"bounds = {_short(bounds)}: must be a 2 x d tensor of real numbers.") from err
        if b.ndim != 2 or b.shape[0] != 2:
            raise ConfigError(f"bounds shape {tuple(b.shape)}: must be 2 x d (lower row, upper row).")
        return cls([Dim(f"x{i}", float(lo), float(hi)) for i, (lo, hi) in enumerate(b.T.tolist())])

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """Builds a space from `{name: {"type": "float" | "int" | "categorical", ...}}` (the JSON of `to_dict`).

        Float and int entries take `low`, `high` and optionally `log` and `step`; categorical entries take `choices`.
        """
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(f"search space {_short(spec)}: must be a non-empty {{name: {{type, ...}}}} mapping.")
        dims, problems = [], []
        for name, entry in spec.items():
            kind = _TYPE_NAMES.get(entry.get("type")) if isinstance(entry, Mapping) else None
            if kind is None:
                problems.append(f"{name}: {_short(entry)} needs 'type': one of {sorted(_TYPE_NAMES)}.")
                continue
            allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
            if set(entry) - allowed:
                unknown, valid = sorted(set(entry) - allowed), sorted(allowed - {"type"})
                problems.append(f"{name}: unknown keys {unknown}; a {entry['type']} takes {valid}.")
            elif kind == "categorical":
                choices = entry.get("choices")
                if isinstance(choices, list):
                    dims.append(Categorical(name, choices))
                else:
                    problems.append(f"{name}: choices = {_short(choices)}: must be a list of values.")
            elif "low" not in entry or "high" not in entry:
                problems.append(f"{name}: a {entry['type']} needs 'low' and 'high'.")
            else:
                step = entry.get("step")
                step = None if kind == "integer" and step == 1 else step
                dims.append(Dim(name, entry["low"], entry["high"], kind, log=entry.get("log", False), step=step))
        if problems:
            raise ConfigError(problems, header="invalid search space")
        return cls(dims)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The JSON form read by `from_dict` (a categorical given as a count lists its indices as choices)."""
        out: dict[str, dict[str, Any]] = {}
        for d in self.dims:
            if d.kind == "categorical":
                out[d.name] = {"type": "categorical", "choices": list(_choice_values(d))}
            else:
                entry: dict[str, Any] = {"type": _KIND_NAMES[d.kind], "low": _plain(d), "high": _plain(d, "high")}
                entry.update({"log": True} if d.log else {})
                entry.update({"step": d.step} if d.step is not None else {})
                out[d.name] = entry
        return out

    # -- properties -----------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.dims)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    @property
    def bounds(self) -> Tensor:
        """`2 x d` bounds in user units; a categorical dim spans `[0, choices - 1]`."""
        lo = [0.0 if d.kind == "categorical" else float(d.low) for d in self.dims]
        hi = [float(d.n_choices - 1) if d.kind == "categorical" else float(d.high) for d in self.dims]
        return torch.tensor([lo, hi], dtype=torch.float64)

    @property
    def is_continuous(self) -> bool:
        """True when every dim is a plain float (no integer, step or categorical), so no rounding is needed."""
        return all(d.n_values is None for d in self.dims)

    # -- user units <-> unit cube ---------------------------------------------------------------------------------
    def to_unit(self, X: Tensor) -> Tensor:
        """Maps `n x d` user points into the unit cube (a discrete value to the centre of its cell)."""
        X = torch.as_tensor(X, dtype=torch.float64)
        U = torch.empty_like(X)
        for j, d in enumerate(self.dims):
            x = X[..., j]
            if d.kind == "categorical":
                U[..., j] = (x + 0.5) / d.n_choices
            elif d.log and d.kind == "integer":
                lo, hi = math.log(d.low - 0.5), math.log(d.high + 0.5)
                U[..., j] = (torch.log(x) - lo) / (hi - lo)
            elif d.log:
                U[..., j] = (torch.log(x) - math.log(d.low)) / (math.log(d.high) - math.log(d.low))
            elif d.n_values is not None:
                U[..., j] = ((x - d.low) / d._step + 0.5) / d.n_values
            else:
                U[..., j] = (x - d.low) / (d.high - d.low)
        return U

    def from_unit(self, U: Tensor) -> Tensor:
        """Maps `n x d` unit-cube points to user points, rounding each discrete dim to the value owning its cell."""
        U = torch.as_tensor(U, dtype=torch.float64).clamp(0.0, 1.0)
        X = torch.empty_like(U)
        for j, d in enumerate(self.dims):
            u = U[..., j]
            if d.log and d.kind == "integer":
                lo, hi = math.log(d.low - 0.5), math.log(d.high + 0.5)
                X[..., j] = torch.exp(lo + u * (hi - lo)).round().clamp(d.low, d.high)
            elif d.log:
                X[..., j] = torch.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low))).clamp(d.low, d.high)
            elif d.n_values is not None:
                k = torch.clamp(torch.floor(u * d.n_values), max=d.n_values - 1)
                X[..., j] = k if d.kind == "categorical" else torch.clamp(d.low + k * d._step, max=d.high)
            else:
                X[..., j] = d.low + u * (d.high - d.low)
        return X

    def round_unit(self, U: Tensor) -> Tensor:
        """Snaps unit-cube points to the cell centres of their discrete values (identity if all dims are floats)."""
        return U if self.is_continuous else self.to_unit(self.from_unit(U))

    # -- unit cube <-> model features -----------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """`D`: columns of `one_hot` (one per non-categorical dim, `k` per categorical dim with `k` choices)."""
        return sum(d.n_choices if d.kind == "categorical" else 1 for d in self.dims)

    def one_hot(self, U: Tensor) -> Tensor:
        """`... x d` unit points -> `... x D` features: each categorical cell becomes a one-hot block."""
        cols = []
        for j, d in enumerate(self.dims):
            if d.kind == "categorical":
                index = torch.clamp(torch.floor(U[..., j] * d.n_choices), 0, d.n_choices - 1).long()
                cols.append(torch.nn.functional.one_hot(index, d.n_choices).to(U))
            else:
                cols.append(U[..., j : j + 1])
        return torch.cat(cols, dim=-1)

    def from_one_hot(self, F: Tensor) -> Tensor:
        """`... x D` features (one-hot blocks possibly relaxed) -> `... x d` unit points; a block's argmax wins."""
        cols, start = [], 0
        for d in self.dims:
            if d.kind == "categorical":
                block = F[..., start : start + d.n_choices]
                cols.append(((block.argmax(-1).to(F) + 0.5) / d.n_choices).unsqueeze(-1))
                start += d.n_choices
            else:
                cols.append(F[..., start : start + 1])
                start += 1
        return torch.cat(cols, dim=-1)

    # -- user units <-> {name: value} -----------------------------------------------------------------------------
    def decode(self, X: Tensor) -> list[dict[str, Any]]:
        """`n x d` user points -> one `{name: value}` dict each (a float, an int, or the choice itself)."""
        rows = []
        for x in torch.as_tensor(X, dtype=torch.float64).reshape(-1, self.dim).tolist():
            row: dict[str, Any] = {}
            for d, v in zip(self.dims, x):
                if d.kind == "categorical":
                    row[d.name] = _choice_values(d)[int(round(v))]
                elif d.kind == "integer":
                    row[d.name] = int(round(v))
                else:
                    row[d.name] = float(v)
            rows.append(row)
        return rows

    def encode(self, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Tensor:
        """One `{name: value}` dict, or a list of them, -> `n x d` user points (bounds are checked by the caller)."""
        rows = [params] if isinstance(params, Mapping) else list(params)
        out = torch.empty(len(rows), self.dim, dtype=torch.float64)
        for i, row in enumerate(rows):
            where = "" if isinstance(params, Mapping) else f"[{i}]"
            if not isinstance(row, Mapping):
                raise ConfigError(f"params{where} = {_short(row)}: must be a {{name: value}} dict.")
            missing = [n for n in self.names if n not in row]
            unknown = [n for n in row if n not in self.names]
            if missing or unknown:
                raise ConfigError(
                    f"params{where} has {'missing ' + str(missing) if missing else ''}"
                    f"{' and ' if missing and unknown else ''}{'unknown ' + str(unknown) if unknown else ''} names; "
                    f"the space's parameters are {self.names}."
                )
            for j, d in enumerate(self.dims):
                out[i, j] = _encode_value(d, row[d.name], f"params{where}[{d.name!r}]")
        return out


def as_search_space(space: SearchSpace | Tensor | list[list[float]]) -> SearchSpace:
    """Accepts a `SearchSpace` or `2 x d` bounds."""
    return space if isinstance(space, SearchSpace) else SearchSpace.box(space)


# ---------------------------------------------------------------------------------------------------------------------
def _short(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _plain(d: Dim, which: str = "low") -> float | int:
    value = getattr(d, which)
    return int(value) if d.kind == "integer" else float(value)


def _choice_values(d: Dim) -> tuple:
    return d.choices if isinstance(d.choices, tuple) else tuple(range(int(d.choices)))


def _dim_problems(d: object) -> list[str]:
    """Problem lines (each starting with the dim's own suffix, e.g. " (lr) bounds ...") for one dim."""
    if not isinstance(d, Dim):
        return [f" = {_short(d)}: must be a Dim (build one with Float, Integer or Categorical)."]
    at = f" ({d.name})"
    if not isinstance(d.name, str) or not d.name:
        return [f".name = {_short(d.name)}: must be a non-empty string."]
    if d.kind not in _KINDS:
        return [f"{at}.kind = {d.kind!r}: must be one of {_KINDS}."]
    if d.kind == "categorical":
        if isinstance(d.choices, tuple):
            bad = [c for c in d.choices if c is not None and not isinstance(c, (str, bool, int, float))]
            if not d.choices:
                return [f"{at} choices = (): a categorical needs at least one choice."]
            if bad:
                return [f"{at} choices {_short(bad)}: each choice must be a str, int, float, bool or None."]
            if len(set(map(repr, d.choices))) != len(d.choices):
                return [f"{at} choices {_short(d.choices)}: contain duplicates; list each choice once."]
            return []
        if isinstance(d.choices, bool) or not isinstance(d.choices, numbers.Integral) or d.choices < 1:
            return [f"{at}.choices = {_short(d.choices)}: must be an int >= 1 (a categorical dim needs >= 1 choices)."]
        return []
    if not (_is_real(d.low) and _is_real(d.high) and math.isfinite(d.low) and math.isfinite(d.high)) or (
        d.low >= d.high
    ):
        return [f"{at} bounds ({d.low!r}, {d.high!r}): need finite low < high."]
    if not isinstance(d.log, bool):
        return [f"{at}.log = {_short(d.log)}: must be True or False."]
    if d.kind == "integer" and not (float(d.low).is_integer() and float(d.high).is_integer()):
        return [f"{at} bounds ({d.low}, {d.high}): an integer dim needs whole-number bounds."]
    if d.log and d.low <= 0:
        return [f"{at} low = {d.low}: a log-scaled dim needs low > 0 (the log of 0 is undefined)."]
    if d.step is not None:
        if d.log:
            return [f"{at} step = {d.step} with log=True: a log-scaled dim takes no step; drop one of them."]
        if not _is_real(d.step) or not d.step > 0 or (d.kind == "integer" and not float(d.step).is_integer()):
            return [f"{at} step = {_short(d.step)}: must be a number > 0 (a whole number for an integer dim)."]
        k = (d.high - d.low) / d.step
        if abs(k - round(k)) > _GRID_ATOL:
            return [f"{at} step = {d.step}: (high - low) = {d.high - d.low} is not a multiple of it; adjust high."]
    return []


def _encode_value(d: Dim, value: Any, where: str) -> float:
    if d.kind == "categorical":
        values = _choice_values(d)
        for i, c in enumerate(values):  # match type too: True is not 1 and 1.0 is not "1"
            if type(c) is type(value) and c == value:
                return float(i)
        raise ConfigError(f"{where} = {_short(value)}: not one of the choices {_short(list(values), 200)}.")
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{where} = {_short(value)}: must be a finite number.")
    return float(value)
