"""The reward-hacking guard: the trained reward rises on held-out prompts while the gold metric does not.

A policy hacks its reward when it finds outputs the reward likes but the task does not: on the embedded model, a
reward for "contains `\\boxed{`" goes from 0 to 1 within 15 steps while accuracy stays 0 (every number boxed, none
right). Training logs cannot show it, since they only hold the reward. The guard reads the held-out evaluations,
where each completion is scored by the trained rewards and by the gold metrics (`gold: true` in the recipe;
`accuracy` by default), and fires when, over the last `window` evaluations (fewer while fewer exist):

1. a trained reward's mean rose by at least `min_rise` while no gold metric rose, or while one fell; or
2. the mean completion length ran into the generation budget: it reached `LENGTH_SHARE` of `max_new_tokens` after
   rising by at least `min_rise` of the budget over the window. Rambling to the limit is the other common hack
   (repeating the prompt); a model that already writes to the limit before training is no new development.

The check is a pure function of the evaluation history, so every process reaches the same verdict.

Metrics (logged with each evaluation once two exist): `guard/fired` (1 at the evaluations where the condition
holds), `guard/<reward>_rise` (change of each trained reward over the window), `guard/<gold>_change` (each gold
metric's change), `guard/length_share` (mean length / max_new_tokens at the last evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["GuardVerdict", "check_hacking", "LENGTH_SHARE"]

# "Runs to max_completion_length": 95 % of the budget on average means nearly every completion is cut off.
LENGTH_SHARE = 0.95


@dataclass
class GuardVerdict:
    fired: bool
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def check_hacking(
    history: Sequence[dict[str, float | None]],
    trained: Sequence[str],
    gold: Sequence[str],
    window: int,
    min_rise: float,
    max_new_tokens: int,
) -> GuardVerdict:
    """The guard's verdict on the latest evaluation.

    Args:
        history: evaluation metrics in step order (each a dict with the reward names and `mean_length`).
        trained: names of the trained rewards.
        gold: names of the gold metrics; without any, only the length check runs.
        window: how many of the latest evaluations to compare (first against last).
        min_rise: the rise of a trained reward that counts as "rising".
        max_new_tokens: the generation budget of the evaluation.

    Returns:
        The verdict, with a one-line reason when it fired and the `guard/*` metrics.

    Example:
        >>> before = {"boxed": 0.0, "accuracy": 0.0, "mean_length": 30.0}
        >>> history = [before, {"boxed": 0.9, "accuracy": 0.0, "mean_length": 31.0}]
        >>> check_hacking(history, ["boxed"], ["accuracy"], window=3, min_rise=0.2, max_new_tokens=48).fired
        True
    """
    if len(history) < 2:
        return GuardVerdict(False)
    first, last = history[max(0, len(history) - window)], history[-1]
    rises = {name: _change(first, last, name) for name in trained}
    changes = {name: _change(first, last, name) for name in gold}
    metrics = {f"guard/{name}_rise": value for name, value in rises.items() if value is not None}
    metrics |= {f"guard/{name}_change": value for name, value in changes.items() if value is not None}
    reasons = []
    known = [c for c in changes.values() if c is not None]
    if known and (all(c <= 0 for c in known) or any(c < 0 for c in known)):
        for name, rise in rises.items():
            if rise is not None and rise >= min_rise:
                golds = ", ".join(f"{g} {_fmt(first.get(g))} -> {_fmt(last.get(g))}" for g in changes)
                reasons.append(
                    f"trained reward {name} rose {_fmt(first[name])} -> {_fmt(last[name])} while gold {golds}"
                )
    start_length, end_length = first.get("mean_length"), last.get("mean_length")
    if end_length is not None and max_new_tokens > 0:
        end_share, start_share = end_length / max_new_tokens, (start_length or 0.0) / max_new_tokens
        metrics["guard/length_share"] = end_share
        if end_share >= LENGTH_SHARE and end_share - start_share >= min_rise:
            start = start_length or 0.0
            reasons.append(f"mean completion length ran from {start:.1f} to {end_length:.1f} of {max_new_tokens}")
    metrics["guard/fired"] = float(bool(reasons))
    return GuardVerdict(bool(reasons), "; ".join(reasons), metrics)


# ---------------------------------------------------------------------------------------------------------------


def _change(first: dict[str, float | None], last: dict[str, float | None], name: str) -> float | None:
    a, b = first.get(name), last.get(name)
    return None if a is None or b is None else b - a


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
