"""The registry of built-in rewards: registry name -> factory (the recipe's `params` are its keyword arguments)."""

from __future__ import annotations

from collections.abc import Callable

from rlsurrogate.registry import Registry
from rlsurrogate.rewards.accuracy import make_accuracy
from rlsurrogate.rewards.boxed_number import make_boxed_number
from rlsurrogate.rewards.format_length import make_format, make_format_length, make_length
from rlsurrogate.rewards.majority_vote import make_majority_vote

__all__ = ["REWARDS"]

REWARDS: Registry[Callable[..., Callable[..., list[float | None]]]] = Registry(
    "reward",
    {
        "format": make_format,
        "length": make_length,
        "format_length": make_format_length,
        "accuracy": make_accuracy,
        "boxed_number": make_boxed_number,
        "majority_vote": make_majority_vote,
    },
)
