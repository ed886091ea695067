"""The ask/tell interface every surrogate optimizer implements, and the search space it works in.

The interface follows Optuna's ask/tell and BoTorch's conventions (STYLE.md §6):

- `ask(n)` returns `n x d` candidates in the user's units, `tell(X, Y)` records `n x d` inputs and `n` values,
  `best()` returns the best observed point. The direction is stated once (`maximize`).
- Internally every optimizer works on the unit cube `[0, 1]^d`; `SearchSpace` maps user points to and from it.
  Integer and categorical dimensions are relaxed to intervals of the unit cube and rounded on the way out
  (categorical value `i` of `k` owns the cell `[i/k, (i+1)/k)`), the usual relaxation for GP-BO.
- Randomness comes from the `seed` given at construction. Each `ask` derives its own seed from `(seed, step)`,
  so a run that is saved and loaded continues exactly as the uninterrupted run would have.
- `state_dict()` / `load_state_dict()` hold the observations, the step counter and any method state;
  `save(path)` / `load(path)` write them with `torch.save`.

`OPTIMIZERS` is the registry of surrogate optimizers; build one with `OPTIMIZERS.get(name)(space, seed=..., ...)`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError
from rlsurrogate.registry import Registry

__all__ = ["OPTIMIZERS", "Dim", "SearchSpace", "SurrogateOptimizer", "as_search_space"]

OPTIMIZERS: Registry[type[SurrogateOptimizer]] = Registry("surrogate optimizer")

# Large odd multiplier that spreads (seed, step) pairs over distinct per-step seeds.
_STEP_SEED_STRIDE = 1_000_003
_KINDS = ("continuous", "integer", "categorical")


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
        problems = []
        for i, d in enumerate(self.dims):
            if d.kind not in _KINDS:
                problems.append(f"dims[{i}].kind = {d.kind!r}: must be one of {_KINDS}.")
            elif d.kind == "categorical" and d.choices < 1:
                problems.append(f"dims[{i}].choices = {d.choices}: a categorical dim needs >= 1 choices.")
            elif d.kind != "categorical" and not (math.isfinite(d.low) and math.isfinite(d.high) and d.low < d.high):
                problems.append(f"dims[{i}] bounds ({d.low}, {d.high}): need finite low < high.")
        if not self.dims:
            problems.append("dims = []: a search space needs at least one dimension.")
        if problems:
            raise ConfigError(problems, header="invalid search space")

    @classmethod
    def box(cls, bounds: Tensor | list[list[float]]) -> SearchSpace:
        """A continuous box from a `2 x d` bounds tensor (row 0 lower, row 1 upper), BoTorch's layout."""
        b = torch.as_tensor(bounds, dtype=torch.float64)
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


class SurrogateOptimizer(ABC):
    """Base class of the ask/tell optimizers: stores observations, the direction, the seed and the step counter.

    Subclasses implement `_ask_unit(n, seed)` (return `n x d` points in the unit cube) and may extend
    `_extra_state()` / `_load_extra_state()`.

    Args:
        space: A `SearchSpace` or `2 x d` bounds.
        maximize: Whether larger values are better (True, as BoTorch) or smaller (False).
        seed: Seed of every random choice this optimizer makes.

    Example:
        >>> opt = OPTIMIZERS.get("random")([[0.0, 0.0], [1.0, 1.0]], maximize=False, seed=0)
        >>> X = opt.ask(4)                      # 4 x 2
        >>> opt.tell(X, (X**2).sum(-1))         # 4 values
        >>> x_best, y_best = opt.best()
    """

    def __init__(self, space: SearchSpace | Tensor | list[list[float]], *, maximize: bool = True, seed: int = 0):
        self.space = as_search_space(space)
        self.maximize = bool(maximize)
        self.seed = int(seed)
        self.step = 0  # number of ask() calls so far
        self.X = torch.empty(0, self.space.dim, dtype=torch.float64)  # n x d, user units
        self.Y = torch.empty(0, dtype=torch.float64)  # n, user sign

    # -- the interface --------------------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> Tensor:
        """Proposes `n` candidates.

        Args:
            n: Number of candidates (a batch of `q = n` for BO).

        Returns:
            `n x d` float64 tensor in user units (integer/categorical dims hold whole numbers).
        """
        if n < 1:
            raise ConfigError(f"ask(n={n}): n must be >= 1.")
        seed = self.seed * _STEP_SEED_STRIDE + self.step
        self.step += 1
        U = self._ask_unit(n, seed)  # n x d
        return self.space.from_unit(self.space.round_unit(U))

    def tell(self, X: Tensor, Y: Tensor | list[float] | float) -> None:
        """Records observations.

        Args:
            X: `n x d` (or `d`) evaluated points in user units.
            Y: `n` (or scalar) observed values; NaN/inf are rejected.
        """
        X = torch.as_tensor(X, dtype=torch.float64).reshape(-1, self.space.dim)
        Y = torch.as_tensor(Y, dtype=torch.float64).reshape(-1)
        if X.shape[0] != Y.shape[0]:
            raise ConfigError(f"tell: X has {X.shape[0]} rows but Y has {Y.shape[0]} values; pass one value per row.")
        if not torch.isfinite(Y).all():
            raise ConfigError(f"tell: Y = {Y.tolist()} contains NaN or inf; drop failed evaluations before tell().")
        self.X = torch.cat([self.X, X])
        self.Y = torch.cat([self.Y, Y])

    def best(self) -> tuple[Tensor, float]:
        """Returns `(x, y)`: the best observed point (`d`) and its value, by the optimizer's direction."""
        if self.Y.numel() == 0:
            raise ConfigError("best(): no observations yet; call tell() first.")
        i = int(self.Y.argmax() if self.maximize else self.Y.argmin())
        return self.X[i].clone(), float(self.Y[i])

    # -- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: observations, direction, seed, step counter and method state."""
        return {
            "class": type(self).__name__,
            "X": self.X.clone(),
            "Y": self.Y.clone(),
            "maximize": self.maximize,
            "seed": self.seed,
            "step": self.step,
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("class") != type(self).__name__:
            raise ConfigError(f"state of a {state.get('class')} cannot be loaded into a {type(self).__name__}.")
        self.X, self.Y = state["X"].clone(), state["Y"].clone()
        self.maximize, self.seed, self.step = state["maximize"], state["seed"], state["step"]
        self._load_extra_state(state["extra"])

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), Path(path))

    def load(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(Path(path), weights_only=False))

    # -- for subclasses --------------------------------------------------------------------------------------------
    @abstractmethod
    def _ask_unit(self, n: int, seed: int) -> Tensor:
        """Returns `n x d` points in the unit cube; `seed` is this step's seed."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

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
