"""User rewards that misbehave at training time: each must stop the run with one `RewardError` naming the reward.

The cases call the rewards the way RLTrainer does (wrapped by `guard_reward`, with the recipe's `timeout_s`), so a
reward that blocks, exits, returns too much, the wrong type or a number no float holds is refused in one line.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable
from typing import Any

from rlsurrogate.errors import RewardError

from . import Case, Outcome, clear_error, traceback

__all__ = ["CASES"]

SURFACE = "reward_calls"
PROMPTS = [[{"role": "user", "content": "What is 2 + 2?"}], "plain prompt"]
COMPLETIONS = [[{"role": "assistant", "content": "\\boxed{4}"}], "four"]


def _blocks(completions: list, **kwargs: Any) -> list[float]:
    time.sleep(3600)
    return [0.0] * len(completions)


async def _blocks_async(completions: list, **kwargs: Any) -> list[float]:
    await asyncio.sleep(3600)
    return [0.0] * len(completions)


def _exits(completions: list, **kwargs: Any) -> list[float]:
    raise SystemExit(0)


def _returns(value: Any) -> Callable[..., Any]:
    def reward(completions: list, **kwargs: Any) -> Any:
        return value(len(completions)) if callable(value) else value

    return reward


def _raises(completions: list, **kwargs: Any) -> list[float]:
    return [1.0 / 0.0 for _ in completions]


REWARDS: dict[str, tuple[Callable[..., Any], float | None]] = {
    "blocks forever (timeout_s 1)": (_blocks, 1.0),
    "async, blocks forever (timeout_s 1)": (_blocks_async, 1.0),
    "calls sys.exit(0)": (_exits, None),
    "raises ZeroDivisionError": (_raises, None),
    "returns 10**400": (_returns(lambda n: [10**400] * n), None),
    "returns 10**100000": (_returns(lambda n: [10**100_000] * n), None),
    "returns NaN": (_returns(lambda n: [math.nan] * n), None),
    "returns -inf": (_returns(lambda n: [-math.inf] * n), None),
    "returns one value too many": (_returns(lambda n: [0.0] * (n + 1)), None),
    "returns nothing": (_returns(None), None),
    "returns a string": (_returns("1.0"), None),
    "returns strings": (_returns(lambda n: ["1.0"] * n), None),
    "returns booleans": (_returns(lambda n: [True] * n), None),
    "returns a dict": (_returns(lambda n: {"score": 1.0}), None),
    "returns nested lists": (_returns(lambda n: [[1.0]] * n), None),
    "returns complex numbers": (_returns(lambda n: [1j] * n), None),
}


def _run(func: Callable[..., Any], timeout_s: float | None) -> Outcome:
    from rlsurrogate.rewards.guard import guard_reward

    guarded = guard_reward(func, timeout_s)
    kwargs = {"prompts": PROMPTS, "completions": COMPLETIONS, "completion_ids": [[1], [2]]}
    try:
        result = guarded(**kwargs)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except RewardError as err:
        text = str(err)
        if "\n" in text or len(text) > 600:
            return traceback(f"refused, but not in one short line ({len(text)} characters)")
        return clear_error(text)
    return traceback("accepted")


CASES: list[Case] = [
    Case(SURFACE, name, functools.partial(_run, *spec), timeout_s=30) for name, spec in REWARDS.items()
]
