"""Maximising an acquisition function over a mixed search space: start pool, multi-start L-BFGS-B, discrete polish.

The acquisition is maximised over model features (`SearchSpace.one_hot`, or the unit cube itself), in the manner of
BoTorch's `optimize_acqf` (Balandat et al., NeurIPS 2020, §4: multi-start quasi-Newton from the best of a large
quasi-random pool) and Optuna's GPSampler (local search alternating gradient steps on continuous parameters with
exhaustive steps on discrete ones, Optuna 5 `_gp/optim_mixed.py`):

1. Pool: `raw_samples` scrambled Sobol points plus `local_samples` Gaussian perturbations (scale `local_scale` in the
   unit cube) of the best observed points, each discrete coordinate of a perturbation re-drawn with probability
   `1/d`; every pool point is a valid point (discrete coordinates at their cell centres).
2. Starts: half are the pool's best points; the rest are Boltzmann-sampled from the others with probability
   increasing in the acquisition value (as BoTorch's initialiser), so that several basins get a start.
3. L-BFGS-B from each start on the relaxed features (BoTorch's `optimize_acqf` with `batch_initial_conditions`).
4. Mixed spaces only: each result is projected to the nearest valid point (a one-hot block's argmax, the cell of a
   relaxed integer), then polished one discrete coordinate at a time over every value of that coordinate (or the
   `_NEIGHBOURS` nearest for dims with many values) until no coordinate improves; the best point then gets a last
   L-BFGS-B pass over its continuous coordinates with the discrete ones fixed. Projection alone is not enough: EI
   often peaks between two grid values, where rounding lands on the worse side (Optuna's docs make the same point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.quasirandom import SobolEngine

from rlsurrogate.blackbox.space import SearchSpace

__all__ = ["Features", "maximize_acquisition"]

# L-BFGS-B options per start: iteration cap (BoTorch's default is 200; the acquisition is smooth and the starts are
# good) and the projected-gradient tolerance (scipy's default 1e-5).
_LBFGS_OPTIONS: dict[str, float] = {"maxiter": 100, "pgtol": 1e-5, "factr": 1e10}
# Points scored per batch when evaluating the pool without gradients.
_CHUNK = 1024
# Discrete dims with more values than this are polished over the nearest values only.
_MAX_ENUMERATED = 32
_NEIGHBOURS = 4
# Rounds of coordinate-wise discrete polish (each round visits every discrete dim once).
_POLISH_ROUNDS = 3
# Number of best observed points whose perturbations join the start pool.
_N_INCUMBENTS = 5


@dataclass(frozen=True)
class Features:
    """How unit-cube points become model inputs: categoricals as one-hot blocks (`one_hot=True`), or as their cells
    of the unit interval (`one_hot=False`, the ordinal relaxation: cheaper for many choices, but it orders them)."""

    space: SearchSpace
    one_hot: bool = True

    def __call__(self, U: Tensor) -> Tensor:
        """`... x d` unit points -> `... x D` features."""
        return self.space.one_hot(U) if self.one_hot else U

    def unit(self, F: Tensor) -> Tensor:
        """`... x D` (possibly relaxed) features -> `... x d` valid unit points (discrete dims at cell centres)."""
        return self.space.round_unit(self.space.from_one_hot(F) if self.one_hot else F)

    @property
    def dim(self) -> int:
        return self.space.n_features if self.one_hot else self.space.dim

    @property
    def categorical_columns(self) -> Tensor:
        """`D` booleans: which feature columns belong to a one-hot categorical block (none when ordinal)."""
        mask = [
            self.one_hot and dim.kind == "categorical"
            for dim in self.space.dims
            for _ in range(dim.n_choices if self.one_hot and dim.kind == "categorical" else 1)
        ]
        return torch.tensor(mask, dtype=torch.bool)

    def column(self, j: int) -> int:
        """The first feature column of dim `j`."""
        if not self.one_hot:
            return j
        return sum(d.n_choices if d.kind == "categorical" else 1 for d in self.space.dims[:j])


def maximize_acquisition(
    acqf: Any,
    features: Features,
    incumbents: Tensor,
    *,
    seed: int,
    num_restarts: int,
    raw_samples: int,
    local_samples: int,
    local_scale: float,
    lengthscale: Tensor | None = None,
) -> Tensor:
    """Returns the `d` unit-cube point (discrete coordinates at cell centres) that maximises `acqf`.

    Args:
        acqf: A BoTorch acquisition taking `b x 1 x D` features and returning `b` values.
        features: The search space (`d` dims) and its map to the `D` model features.
        incumbents: `k x d` unit points, best first, whose perturbations join the pool.
        seed: Seed of the pool and of the start sampling.
        num_restarts: Number of L-BFGS-B starts.
        raw_samples: Sobol points in the pool.
        local_samples: Perturbations of the incumbents in the pool (0: none).
        local_scale: Standard deviation of the perturbations.
        lengthscale: `D` GP lengthscales: L-BFGS-B then runs on `z = F / lengthscale`, where the acquisition is about
            equally curved in every direction (Optuna's preconditioning); None: on `F`.
    """
    from botorch.optim import optimize_acqf

    space, D = features.space, features.dim
    gen = torch.Generator().manual_seed(seed)
    pool = _pool(space, incumbents[:_N_INCUMBENTS], seed, gen, raw_samples, local_samples, local_scale)  # P x d
    values = _score(acqf, features(pool))  # P
    starts = pool[_choose_starts(values, num_restarts, gen)]  # r x d
    scale = torch.ones(D, dtype=pool.dtype) if lengthscale is None else lengthscale.detach().reshape(D).to(pool)
    Z, _ = optimize_acqf(
        _Rescaled(acqf, scale),
        _unit_box(D) / scale,
        q=1,
        num_restarts=starts.shape[0],
        batch_initial_conditions=(features(starts) / scale).unsqueeze(1),
        options=dict(_LBFGS_OPTIONS),
        retry_on_optimization_warning=False,
        return_best_only=space.is_continuous,
    )
    F = (Z.detach() * scale).clamp(0.0, 1.0)
    if space.is_continuous:
        return F.detach().reshape(-1)  # d (= D)
    candidates = torch.cat([features.unit(F.detach().reshape(-1, D)), starts])  # c x d
    best = _discrete_polish(acqf, features, candidates)  # d
    return _continuous_polish(acqf, features, best)


# ---------------------------------------------------------------------------------------------------------------------
class _Rescaled(torch.nn.Module):
    """`acqf` as a function of `z = F / scale` (`b x 1 x D` -> `b`)."""

    def __init__(self, acqf: Any, scale: Tensor):
        super().__init__()
        self.acqf, self.scale = acqf, scale

    def forward(self, Z: Tensor) -> Tensor:
        return self.acqf(Z * self.scale)


def _pool(
    space: SearchSpace,
    incumbents: Tensor,
    seed: int,
    gen: torch.Generator,
    raw_samples: int,
    local_samples: int,
    local_scale: float,
) -> Tensor:
    d = space.dim
    pool = SobolEngine(d, scramble=True, seed=seed % (2**31)).draw(raw_samples, dtype=torch.float64)
    if local_samples > 0 and incumbents.shape[0] > 0:
        centres = incumbents[torch.arange(local_samples) % incumbents.shape[0]]  # L x d
        local = centres + torch.randn(local_samples, d, generator=gen, dtype=torch.float64) * local_scale
        discrete = torch.tensor([dim.n_values is not None for dim in space.dims])
        if discrete.any():
            redraw = (torch.rand(local_samples, d, generator=gen, dtype=torch.float64) < 1.0 / d) & discrete
            uniform = torch.rand(local_samples, d, generator=gen, dtype=torch.float64)
            local = torch.where(redraw, uniform, torch.where(discrete, centres, local))
        pool = torch.cat([pool, local.clamp(0.0, 1.0)])
    return space.round_unit(pool)


def _score(acqf: Any, F: Tensor) -> Tensor:
    with torch.no_grad():
        values = torch.cat([acqf(chunk.unsqueeze(1)) for chunk in F.split(_CHUNK)])
    return torch.nan_to_num(values, nan=-math.inf)


def _choose_starts(values: Tensor, num_restarts: int, gen: torch.Generator) -> Tensor:
    """Indices of `num_restarts` starts: the best half by value, the rest Boltzmann-sampled from the others."""
    n_best = min((num_restarts + 1) // 2, values.numel())
    order = values.argsort(descending=True)
    best, rest = order[:n_best], order[n_best:]
    n_extra = min(num_restarts - n_best, rest.numel())
    if n_extra == 0:
        return best
    z = values[rest]
    finite = torch.isfinite(z)
    if finite.sum() > 1:
        z = (z - z[finite].mean()) / z[finite].std().clamp_min(1e-9)
    weights = torch.exp(torch.nan_to_num(z, neginf=-50.0, posinf=50.0).clamp(-50, 50))
    extra = rest[torch.multinomial(weights, n_extra, replacement=False, generator=gen)]
    return torch.cat([best, extra])


def _cell_centres(k: int, current: Tensor) -> Tensor:
    """`c x m` candidate unit values of a dim with `k` values: all of them, or the nearest `2 _NEIGHBOURS`."""
    if k <= _MAX_ENUMERATED:
        return ((torch.arange(k, dtype=current.dtype) + 0.5) / k).expand(current.shape[0], k)
    index = torch.floor(current * k).clamp(0, k - 1).unsqueeze(-1)  # c x 1
    offsets = torch.arange(-_NEIGHBOURS, _NEIGHBOURS + 1, dtype=current.dtype)
    return ((index + offsets).clamp(0, k - 1) + 0.5) / k  # c x (2 N + 1)


def _unit_box(D: int) -> Tensor:
    return torch.stack([torch.zeros(D, dtype=torch.float64), torch.ones(D, dtype=torch.float64)])


def _discrete_polish(acqf: Any, features: Features, U: Tensor) -> Tensor:
    """Coordinate-wise exhaustive search over the discrete dims from each of `c x d` valid points; the best `d`."""
    space, U = features.space, U.clone()
    value = _score(acqf, features(U))  # c
    discrete = [(j, dim.n_values) for j, dim in enumerate(space.dims) if dim.n_values is not None]
    for _ in range(_POLISH_ROUNDS):
        improved = False
        for j, k in discrete:
            cells = _cell_centres(int(k), U[:, j])  # c x m
            trial = U.unsqueeze(1).expand(-1, cells.shape[1], -1).clone()  # c x m x d
            trial[..., j] = cells
            scores = _score(acqf, features(trial.reshape(-1, space.dim))).reshape(cells.shape)  # c x m
            top, arg = scores.max(-1)
            better = top > value + 1e-12
            if better.any():
                improved = True
                U[better, j] = cells[better, arg[better]]
                value = torch.where(better, top, value)
        if not improved:
            break
    return U[value.argmax()]


def _continuous_polish(acqf: Any, features: Features, u: Tensor) -> Tensor:
    """One more L-BFGS-B pass over the continuous coordinates of `u` (`d`) with its discrete coordinates fixed."""
    from botorch.optim import optimize_acqf

    continuous = [j for j, dim in enumerate(features.space.dims) if dim.n_values is None]
    if not continuous:
        return u
    F0 = features(u.unsqueeze(0))  # 1 x D
    columns = [features.column(j) for j in continuous]
    fixed = {c: float(F0[0, c]) for c in range(features.dim) if c not in columns}
    F, value = optimize_acqf(
        acqf,
        _unit_box(features.dim),
        q=1,
        num_restarts=1,
        batch_initial_conditions=F0.unsqueeze(0),
        fixed_features=fixed,
        options=dict(_LBFGS_OPTIONS),
        retry_on_optimization_warning=False,
    )
    if float(value.reshape(-1)[0]) <= float(_score(acqf, F0)[0]):
        return u
    v = u.clone()
    v[continuous] = F.detach().reshape(-1)[columns]
    return v
