"""Paired comparison of two optimizers: the mean difference over matched runs and its percentile bootstrap CI.

Two methods run on the same (pool, seed) pairs give paired differences d_i = a_i - b_i. The CI resamples the pairs
with replacement (Efron & Tibshirani 1993, ch. 13, percentile interval): mean of d over B resamples, the
(alpha / 2, 1 - alpha / 2) quantiles of those means. Pairing removes the between-pool variance both methods share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlsurrogate.errors import ConfigError

__all__ = ["paired_bootstrap_ci"]


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """`{"mean", "ci_low", "ci_high"}` of `mean(a - b)` over paired runs.

    Args:
        a, b: one value per run, in the same (pool, seed) order.
        level: coverage of the interval.
        resamples: bootstrap resamples B.
        seed: seed of the resampling.

    Example:
        >>> ci = paired_bootstrap_ci([0.9, 0.8, 0.7, 0.95], [0.5, 0.6, 0.7, 0.4])
        >>> round(ci["mean"], 4), ci["ci_low"] > 0
        (0.2875, True)
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(a) != len(b) or len(d) < 2 or not np.isfinite(d).all():
        raise ConfigError(f"paired runs: got {len(a)} and {len(b)} values; need equally many finite ones, >= 2.")
    if not 0 < level < 1 or resamples < 1:
        raise ConfigError(f"level = {level}, resamples = {resamples}: need 0 < level < 1 and resamples >= 1.")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(d.mean()), "ci_low": float(low), "ci_high": float(high)}
