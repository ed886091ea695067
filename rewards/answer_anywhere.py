"""Answer-anywhere reward: 1.0 when the dataset's `answer` number appears anywhere in the completion, else 0.0.

A lenient gold metric for the arithmetic task, useful with `rlsurrogate diagnose`: before training, the embedded
135M model often computes the right sum but never boxes it, so the strict `accuracy` reward is flat (zero variance
on every prompt) while this one separates good completions from bad ones. It ignores formatting entirely, so it is
a diagnostic, not something to train on: a model rewarded by it learns to list many numbers.

    rlsurrogate diagnose ... --gold answer_anywhere=rewards/answer_anywhere.py:answer_anywhere
"""

from __future__ import annotations

import re
from typing import Any

from rlsurrogate.rewards.boxed import completion_text


def answer_anywhere(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float]:
    """1.0 if `answer` occurs in the completion as a whole number (not inside a longer number), else 0.0.

    Example:
        >>> answer_anywhere(completions=["4 + 7 = 11", "4 + 7 = 110", "eleven"], answer=["11", "11", "11"])
        [1.0, 0.0, 0.0]
    """
    rewards = []
    for completion, gold in zip(completions, answer):
        pattern = rf"(?<![\d.]){re.escape(str(gold))}(?![\d])"
        rewards.append(1.0 if re.search(pattern, completion_text(completion)) else 0.0)
    return rewards


answer_anywhere.version = "1"  # type: ignore[attr-defined]  # (functions take attributes; mypy does not know)
