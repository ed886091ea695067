"""Exact-answer reward: 1.0 when the last \\boxed{...} of a completion equals the dataset's `answer`, else 0.0.

A reward written the way you would write your own: a plain function with TRL's reward signature, in a file that a
recipe names by path:

    rewards:
      - {name: rewards/exact_answer.py:exact_answer, weight: 1.0}

TRL calls it with `prompts`, `completions`, `completion_ids` and every dataset column as keywords; this one reads
the `answer` column and ignores the rest through `**kwargs`. It compares strings after removing spaces and `$`,
so `\\boxed{ 12 }` matches "12" but `\\boxed{12.0}` does not (use the built-in `accuracy` reward for mathematical
equivalence).
"""

from __future__ import annotations

from typing import Any

from rlsurrogate.rewards.boxed import completion_text, last_boxed


def exact_answer(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float]:
    """1.0 if the last boxed answer equals the `answer` column (spaces and `$` ignored), else 0.0.

    Example:
        >>> exact_answer(completions=["so \\\\boxed{ 12 }", "\\\\boxed{13}", "12"], answer=["12", "12", "12"])
        [1.0, 0.0, 0.0]
    """
    rewards = []
    for completion, gold in zip(completions, answer):
        boxed = last_boxed(completion_text(completion))  # works for plain text and chat messages
        rewards.append(1.0 if boxed is not None and _normalise(boxed) == _normalise(str(gold)) else 0.0)
    return rewards


# Bump when the scores change meaning; logged next to the reward's name.
exact_answer.version = "1"  # type: ignore[attr-defined]  # (functions take attributes; mypy does not know)


def _normalise(text: str) -> str:
    return "".join(text.split()).replace("$", "")
