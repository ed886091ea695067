"""Boxed-number reward: 1 iff the last `\\boxed{}` holds exactly one plain number (a stricter, label-free format).

A variant of the format reward R_f of Xin et al. 2025 (arXiv 2505.19439, §2) for tasks whose answers are numbers.
R_f accepts any SymPy-parsable content, so a policy can learn to box a whole expression (`\\boxed{3+4}`) or an
equation; this reward accepts only an optional sign followed by an integer, a decimal or a simple fraction
(`a/b`, `\\frac{a}{b}`, `\\dfrac`, `\\tfrac`). It is our addition, not from the paper.

Two options make it a reward a small model can learn from without being hacked (both off by default):
- `single_box`: the completion must contain exactly one `\\boxed`, so "box everything" outputs such as
  `\\boxed{2} + \\boxed{3} = \\boxed{6}` score nothing.
- `partial_credit`: completions that box something non-empty but fail the rule score this much (e.g. 0.2)
  instead of 0. Empty boxes earn nothing: a small model otherwise learns to parrot the prompt's
  "Put the final answer in \\boxed{}." for the partial credit.
  A model that almost never boxes (SmolLM2-135M samples a box in a few percent of completions) otherwise sees
  all-zero groups and gets no gradient; partial credit bootstraps boxing, and the full score still goes only to one
  box holding one number.

Metrics: `rewards/boxed_number/mean` (with the defaults: fraction of completions ending in a boxed plain number).
"""

from __future__ import annotations

import re
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.boxed import completion_text, last_boxed, parse_plain_number

__all__ = ["boxed_number_ok", "make_boxed_number"]

_NON_EMPTY_BOX = re.compile(r"\\boxed\s*\{\s*[^\s}]")


def boxed_number_ok(completion: Any) -> bool:
    """Whether the last `\\boxed{}` of a completion (plain text or chat messages) holds one plain number.

    Example:
        >>> [boxed_number_ok(c) for c in ("\\\\boxed{-3.5}", "\\\\boxed{3+4}", "\\\\boxed{1} \\\\boxed{x}")]
        [True, False, False]
    """
    content = last_boxed(completion_text(completion))
    return content is not None and parse_plain_number(content) is not None


def make_boxed_number(*, single_box: bool = False, partial_credit: float = 0.0) -> _BoxedNumberReward:
    """Boxed-number reward ∈ {0, partial_credit, 1}: 1 iff the last `\\boxed{}` holds exactly one plain number.

    Args:
        single_box: also require that `\\boxed` occurs exactly once in the completion.
        partial_credit: score in [0, 1) of a completion with a non-empty `\\boxed{...}` that fails the rule.

    Example:
        >>> make_boxed_number()(completions=["\\\\boxed{12}", "\\\\boxed{\\\\frac{1}{3}}", "\\\\boxed{x=1}"])
        [1.0, 1.0, 0.0]
    """
    problems = []
    if not isinstance(single_box, bool):
        problems.append(f"boxed_number.single_box = {single_box!r}: must be true or false.")
    if isinstance(partial_credit, bool) or not isinstance(partial_credit, int | float) or not 0 <= partial_credit < 1:
        problems.append(
            f"boxed_number.partial_credit = {partial_credit!r}: must be a number in [0, 1), e.g. 0.2; 0 turns it off."
        )
    if problems:
        raise ConfigError(problems)
    return _BoxedNumberReward(single_box, float(partial_credit))


# ----------------------------------------------------------------------------------------------------------------


class _BoxedNumberReward:
    __name__ = "boxed_number"
    version = "3"  # 2: single_box, partial_credit; 3: no partial credit for empty boxes (defaults score as 1)

    def __init__(self, single_box: bool = False, partial_credit: float = 0.0):
        self.single_box, self.partial_credit = single_box, partial_credit

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        return [self._score(completion_text(c)) for c in completions]

    def _score(self, text: str) -> float:
        ok = boxed_number_ok(text) and (not self.single_box or text.count("\\boxed") == 1)
        if ok:
            return 1.0
        return self.partial_credit if _NON_EMPTY_BOX.search(text) else 0.0
