"""Check one reward call's output before TRL uses it: the right count, and each value a finite number or None.

TRL 1.16 turns `None` into NaN ("not applicable") but fails late and vaguely on other bad values (a wrong count is
a bare ValueError; a NaN or an inf silently poisons the group statistics). The trainer calls `check_reward_output`
after every reward call (and in the dry run before training) so that a bad reward fails at once with one line that
names the reward, the sample and the start of its prompt and completion. No value is ever silently replaced.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from rlsurrogate.errors import RewardError
from rlsurrogate.rewards.boxed import completion_text

__all__ = ["check_reward_output"]

# Characters of prompt and completion quoted in an error: enough to recognise the sample, short enough for one line.
SNIPPET_CHARS = 60


def check_reward_output(
    name: str, values: Any, expected_len: int, prompts: Sequence[Any] | None, completions: Sequence[Any] | None
) -> None:
    """Raise `RewardError` unless `values` holds `expected_len` finite real numbers or None.

    Args:
        name: the reward's name (its `__name__`).
        values: what the reward returned.
        expected_len: the number of completions it was given.
        prompts: the prompts, aligned with `completions` (plain text or chat messages); used for the message only.
        completions: the completions (plain text or chat messages); used for the message only.

    Raises:
        RewardError: with a one-line message naming the reward, the sample index, the problem, and the first
            `SNIPPET_CHARS` characters of that sample's prompt and completion.

    Example:
        >>> check_reward_output("my_reward", [1.0, None], 2, ["p1", "p2"], ["c1", "c2"])
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise RewardError(
            f"reward {name!r} returned {type(values).__name__}, expected a list of {expected_len} "
            "floats (or None), one per completion."
        )
    if len(values) != expected_len:
        raise RewardError(
            f"reward {name!r} returned {len(values)} values for {expected_len} completions; return "
            f"one float (or None) per completion.{_sample(prompts, completions, 0)}"
        )
    for i, value in enumerate(values):
        if value is None:
            continue
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a 0-d torch/numpy scalar
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            problem = f"returned {type(value).__name__} {_short(repr(value))}, expected a float or None"
        elif not _finite(value):
            problem = f"returned {_describe(value)}, expected a finite number (None marks 'not applicable')"
        else:
            continue
        raise RewardError(f"reward {name!r} {problem} at sample {i}.{_sample(prompts, completions, i)}")


# ----------------------------------------------------------------------------------------------------------------


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float range, e.g. 10**400
        return False


def _describe(value: numbers.Real) -> str:
    if isinstance(value, int):
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 10_000 else 'over 3,000'} digits"
    return str(float(value))


def _sample(prompts: Sequence[Any] | None, completions: Sequence[Any] | None, i: int) -> str:
    parts = []
    for label, items in (("prompt", prompts), ("completion", completions)):
        if items is not None and 0 <= i < len(items):
            parts.append(f"{label}: {_short(completion_text(items[i]))!r}")
    return (" " + "; ".join(parts)) if parts else ""


def _short(text: str) -> str:
    text = " ".join(text.split())  # one line: newlines and runs of spaces become single spaces
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "..."
