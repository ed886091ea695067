"""Boxed-number reward: 1 iff the last `\\boxed{}` holds exactly one plain number (a stricter, label-free format).

A variant of the format reward R_f of Xin et al. 2025 (arXiv 2505.19439, §2) for tasks whose answers are numbers.
R_f accepts any SymPy-parsable content, so a policy can learn to box a whole expression (`\\boxed{3+4}`) or an
equation; this reward accepts only an optional sign followed by an integer, a decimal or a simple fraction
(`a/b`, `\\frac{a}{b}`, `\\dfrac`, `\\tfrac`). It is our addition, not from the paper.

Metrics: `rewards/boxed_number/mean` (fraction of completions ending in a boxed plain number).
"""

from __future__ import annotations

from typing import Any

from rlsurrogate.rewards.boxed import completion_text, last_boxed, parse_plain_number
from rlsurrogate.rewards.loading import REWARDS

__all__ = ["boxed_number_ok", "make_boxed_number"]


def boxed_number_ok(completion: Any) -> bool:
    """Whether the last `\\boxed{}` of a completion (plain text or chat messages) holds one plain number.

    Example:
        >>> [boxed_number_ok(c) for c in ("\\\\boxed{-3.5}", "\\\\boxed{3+4}", "\\\\boxed{1} \\\\boxed{x}")]
        [True, False, False]
    """
    content = last_boxed(completion_text(completion))
    return content is not None and parse_plain_number(content) is not None


@REWARDS.register("boxed_number")
def make_boxed_number() -> _BoxedNumberReward:
    """Boxed-number reward ∈ {0, 1}: 1 iff the last `\\boxed{}` holds exactly one plain number.

    Example:
        >>> make_boxed_number()(completions=["\\\\boxed{12}", "\\\\boxed{\\\\frac{1}{3}}", "\\\\boxed{x=1}"])
        [1.0, 1.0, 0.0]
    """
    return _BoxedNumberReward()


# ----------------------------------------------------------------------------------------------------------------


class _BoxedNumberReward:
    __name__ = "boxed_number"
    version = "1"

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        return [float(boxed_number_ok(c)) for c in completions]
