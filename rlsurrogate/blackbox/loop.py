"""The evaluation loop: ask an optimizer for points, evaluate a function on them, tell it the values, for a budget.

Optuna's `study.optimize(func, n_trials)` for our ask/tell optimizers; `rlsurrogate bo` is this loop plus argument
parsing, a progress bar and the log it keeps. Every evaluation is told (and handed to `on_record`) as soon as it
returns, so a caller that writes each record down loses no evaluated point when the run is killed; points that were
asked but not told before (`opt.X_pending`, e.g. the rest of a batch in a resumed run) are evaluated first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from torch import Tensor

from rlsurrogate.blackbox.base import SurrogateOptimizer, check_int
from rlsurrogate.errors import ConfigError

__all__ = ["optimize"]


def optimize(
    opt: SurrogateOptimizer,
    fn: Callable[[Any], float | None | dict[str, float | None]],
    budget: int,
    *,
    batch_size: int = 1,
    params: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Spends `budget` evaluations of `fn` on the points `opt` proposes, `batch_size` at a time.

    Args:
        opt: Any ask/tell optimizer; it keeps every observation (`opt.best()` is the result).
        fn: Maps one point to its value: a `d` float64 tensor in user units, or with `params=True` a
            `{name: value}` dict. It returns a float, None or NaN (a failed evaluation), or, when `opt` has outcome
            constraints, a dict `{"value": float | None, <constraint name>: float, ...}`.
        budget: Number of evaluations, an int >= 1.
        batch_size: Candidates per `ask` (`q`); the last batch is cut to the budget.
        params: Call `fn` with `{name: value}` dicts instead of tensors.
        on_record: Called with each record right after its point is told (e.g. to write a log, or a progress bar).

    Returns:
        One record per evaluation, in order: `{"x": list of d floats, "params": {name: value}, "y": value or None,
        "constraints": {name: value} (with outcome constraints only), "best": best feasible value so far or None,
        "time_s": seconds since the loop started}`.

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
        todo = opt.X_pending.clone() if opt.X_pending.shape[0] else opt.ask(min(batch_size, budget - len(records)))
        for x in todo[: budget - len(records)]:
            point = opt.space.decode(x.unsqueeze(0))[0]
            y, constraints = _outcome(fn(point if params else x), opt)
            opt.tell(x, [y], constraints=None if constraints is None else [constraints])
            record = {"x": x.tolist(), "params": point, "y": y, "best": _best(opt)}
            if constraints is not None:
                record["constraints"] = constraints
            record["time_s"] = round(time.perf_counter() - start, 4)
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records


# ---------------------------------------------------------------------------------------------------------------------
def _outcome(result: Any, opt: SurrogateOptimizer) -> tuple[float | None, dict[str, float] | None]:
    """(value or None, constraint values or None) from what `fn` returned; a clear error for anything else."""
    names = list(opt.outcome_constraints)
    if isinstance(result, dict):
        if "value" not in result or set(result) - {"value", *names}:
            raise ConfigError(
                f"objective returned {sorted(result)}: a dict needs 'value' and only the constraint names {names}."
            )
        value = result["value"]
        constraints = {k: result.get(k) for k in names} if names else None
    else:
        value, constraints = result, None
    if isinstance(value, Tensor):
        value = value.item() if value.numel() == 1 else value
    try:
        y = None if value is None or math.isnan(float(value)) else float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"objective returned {value!r}: must be a number, or None / NaN for a failure.") from err
    if names and y is not None and (constraints is None or any(v is None for v in constraints.values())):
        raise ConfigError(
            f"objective returned {result!r}: this run has outcome constraints {names}; return "
            "{'value': ..., " + ", ".join(f"'{n}': ..." for n in names) + "}."
        )
    return y, constraints


def _best(opt: SurrogateOptimizer) -> float | None:
    if opt.Y.numel() == 0 or not bool(opt.feasible.any()):
        return None
    return opt.best()[1]
