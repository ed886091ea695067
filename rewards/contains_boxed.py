"""A naive format reward that a policy hacks: 1.0 when the completion contains `\\boxed{`, else 0.0.

Shipped as the trap of `recipes/hack_demo.yaml`: on the embedded 135M model the held-out boxed rate goes from 0 to
nearly 1 within a few steps while accuracy stays at 0 (the model learns to box everything, right or wrong). Do not
train on it; compare `rlsurrogate.rewards` `boxed_number` and `format`, which check what is in the box.
"""

from __future__ import annotations

from typing import Any

from rlsurrogate.rewards.boxed import completion_text


def contains_boxed(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 if `\\boxed{` occurs anywhere in the completion.

    Example:
        >>> contains_boxed(completions=["so \\\\boxed{7}", "7", "\\\\boxed{}"])
        [1.0, 0.0, 1.0]
    """
    return [1.0 if "\\boxed{" in completion_text(c) else 0.0 for c in completions]


contains_boxed.version = "1"  # type: ignore[attr-defined]
