"""The evaluation loop: ask an optimizer for points, evaluate a function on them, tell it the values, for a budget.

Optuna's `study.optimize(func, n_trials)` for our ask/tell optimizers; `rlsurrogate bo` is this loop plus argument
parsing, a progress bar and the files it writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.blackbox.base import SurrogateOptimizer, check_int
from rlsurrogate.errors import ConfigError

__all__ = ["optimize"]


def optimize(
    opt: SurrogateOptimizer,
    fn: Callable[[Tensor], float],
    budget: int,
    *,
    batch_size: int = 1,
    on_step: Callable[[int, float], None] | None = None,
) -> list[dict[str, Any]]:
    """Spends `budget` evaluations of `fn` on the points `opt` proposes, `batch_size` at a time.

    Args:
        opt: Any ask/tell optimizer; it keeps every observation (`opt.best()` is the result).
        fn: Maps one point, a `d` float64 tensor in user units, to a float.
        budget: Number of evaluations, an int >= 1.
        batch_size: Candidates per `ask` (`q`); the last batch is cut to the budget.
        on_step: Called after each `tell` with the batch size and the best value so far (e.g. a progress bar).

    Returns:
        One record per evaluation, in order: `{"x": list of d floats, "y": value, "best": best value after its
        batch, "time_s": seconds since the loop started}`.

    Example:
        >>> from rlsurrogate.blackbox import OPTIMIZERS
        >>> opt = OPTIMIZERS.get("random")([[0.0], [1.0]], maximize=False, seed=0)
        >>> records = optimize(opt, lambda x: float((x - 0.3) ** 2), budget=4)
    """
    problems = check_int("budget", budget, 1) + check_int("batch_size", batch_size, 1)
    if problems:
        raise ConfigError(problems, header="invalid optimize arguments")
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    while len(records) < budget:
        X = opt.ask(min(batch_size, budget - len(records)))  # q x d
        Y = torch.tensor([float(fn(x)) for x in X], dtype=torch.float64)  # q
        opt.tell(X, Y)
        best = opt.best()[1]
        for x, y in zip(X.tolist(), Y.tolist()):
            records.append({"x": x, "y": y, "best": best, "time_s": round(time.perf_counter() - start, 4)})
        if on_step is not None:
            on_step(X.shape[0], best)
    return records
