"""Restarts of a stalled Bayesian optimisation: which observations the current restart owns, from the values alone.

A GP search that has settled in a local optimum keeps proposing there: expected improvement is largest next to the
incumbent, and a far region with a better basin looks no better than the rest of the unexplored space. On Hartmann6
(10 start-up points, 100 evaluations) every GP method measured stayed in the basin of its best start-up point, so
whether a run ends in the global basin was decided by its first 10 points (README, Bayesian optimisation). TuRBO
(Eriksson et al., NeurIPS 2019, §3) answers with restarts: when a local search has converged, it starts again from a
fresh space-filling design with a model of the new points only, so that the old incumbent does not dominate the
acquisition. `BayesianOptimization` does the same and keeps the old search alive: after a restart, one proposal in
`polish_every` still maximises the acquisition of the GP on every observation (the incumbent keeps being polished),
the others come from the restart (its Sobol design, then the GP on its own points). A restart that stalls in turn is
replaced by a new one.

A fresh design alone often climbs the same basin again: on Hartmann6 the second-best basin covers about a third of the
cube, and the restarts of the runs that stayed there re-found it. So each search that stalled leaves its incumbent
behind as a basin to avoid: the restart's acquisition is penalised near those incumbents (`bo.py`, `_AvoidBasins`), in
the spirit of the local penalisation of Gonzalez et al. (AISTATS 2016, Eq. 4), with a Gaussian bump of the GP's
lengthscales instead of a Lipschitz ball.

Everything here is a function of the ordered observed values, so the state is the observations themselves: a run
resumed from its log, or rebuilt by the Optuna sampler from a study's trials, makes the same choices.
- A search has stalled when it has at least `n_init + window` points and its best value over its last `window`
  points is not above its best before them by more than `tol` times the range of every value observed so far.
- The incumbent of a search that stalled is the observation with the best value it owned (the first of equal
  bests); the first search's is its best before the stall. (The penalty's width, the GP's lengthscales, is the
  model's, as the acquisition is.)
- The first search owns every observation. A restart starting at observation `s` owns observation `s + j` when
  `j < n_init` (its design) or when `(j - n_init) % polish_every != polish_every - 1` (not a polishing proposal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["STALL_TOL", "Restart", "current_restart"]

STALL_TOL = 1e-3  # a stall: no improvement above this share of the observed range over the window


class Restart(NamedTuple):
    """Where a run stands: the current restart's first observation (None: the first search still runs), the
    observations it owns, and the incumbent (an observation index) of each search that stalled before it."""

    start: int | None
    owned: list[int]
    stalled: list[int]


def current_restart(
    values: Sequence[float], *, n_init: int, window: int, polish_every: int, tol: float = STALL_TOL
) -> Restart:
    """The current restart, the observations it owns and the incumbents of the searches that stalled before it.

    Args:
        values: Observed values in the order they were told, larger is better; -inf for an infeasible point.
        n_init: Points of each restart's space-filling design (as the first search's).
        window: Evaluations without improvement that make a stall.
        polish_every: After a restart, one proposal in this many polishes the first search's incumbent.
        tol: Improvement that counts, as a share of the range of the finite values observed so far.
    """
    start: int | None = None
    owned: list[int] = []
    stalled: list[int] = []
    best: list[float] = []  # best[k]: the best of the current search's first k + 1 values
    low, high = math.inf, -math.inf
    for i, value in enumerate(values):
        if math.isfinite(value):
            low, high = min(low, value), max(high, value)
        j = i if start is None else i - start
        if start is None or j < n_init or (j - n_init) % polish_every != polish_every - 1:
            owned.append(i)
            best.append(max(best[-1], value) if best else value)
        if len(owned) >= n_init + window:
            before, recent = best[-window - 1], max(values[k] for k in owned[-window:])
            # nothing feasible yet is no stall: the search is still looking for feasibility
            if math.isfinite(max(before, recent)) and recent - before <= tol * (high - low):
                stalled.append(max(owned, key=values.__getitem__))  # the first of equal bests
                start, owned, best = i + 1, [], []
    return Restart(start, owned, stalled)
