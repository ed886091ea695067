"""Check one reward call's output before TRL uses it: the right count, and each value a finite number or None.

TRL 1.16 turns `None` into NaN ("not applicable") but fails late and vaguely on other bad values (a wrong count is
a bare ValueError; a NaN or an inf silently poisons the group statistics). `GuardedReward`, which the trainer
wraps around every callable reward, calls `check_reward_output` after every reward call (and in the dry run before
training) so that a bad reward fails at once with one line that names the reward, the sample and the start of its
prompt and completion; it also stops a reward that outlives its `timeout_s` or calls `sys.exit`. No value is ever
silently replaced. This module imports neither torch nor TRL.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import numbers
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rlsurrogate.errors import RewardError
from rlsurrogate.rewards.boxed import completion_text

__all__ = ["GuardedReward", "check_reward_output", "guard_reward"]

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


class GuardedReward:
    """Wraps a reward callable: same `__name__` (so TRL's metric keys do not change), checked output.

    A reward that raises (or calls `sys.exit`), exceeds `timeout_s`, returns the wrong number of values, a
    non-number, NaN or inf raises `RewardError` naming the reward, the sample index, and the start of its prompt and
    completion. `None` stays allowed (TRL: "not applicable"). Picklable as long as the wrapped reward is.
    """

    def __init__(
        self, func: Callable[..., list[float | None]], timeout_s: float | None = None, name: str | None = None
    ):
        self.func = func
        self.timeout_s = timeout_s
        self.__name__ = name or getattr(func, "__name__", type(func).__name__)
        self.version = getattr(func, "version", None)

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        return self.call_once(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)

    def call_once(self, prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        """One checked call, also for async rewards (run to completion here, e.g. for the dry run)."""
        kwargs = dict(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        try:
            values = _call_with_deadline(self.func, kwargs, self.timeout_s)
            if inspect.isawaitable(values):
                values = asyncio.run(_await(values, self.timeout_s))
        except RewardError:
            raise
        except _DeadlineExceeded:
            raise self._timeout(completions) from None
        except (Exception, SystemExit) as err:
            raise self._error(err, prompts, completions) from err
        return self._checked(values, prompts, completions)

    def _error(self, err: BaseException, prompts: list, completions: list) -> RewardError:
        return RewardError(
            f"reward {self.__name__} raised {type(err).__name__}: {err} "
            f"(first prompt: {_short(completion_text(prompts[0]))!r}, "
            f"completion: {_short(completion_text(completions[0]))!r})"
        )

    def _timeout(self, completions: list) -> RewardError:
        return RewardError(
            f"reward {self.__name__} did not return within timeout_s = {self.timeout_s} s for {len(completions)} "
            "completions; make it faster, or raise rewards[i].timeout_s in the recipe."
        )

    def _checked(self, values: Any, prompts: list, completions: list) -> list[float | None]:
        check_reward_output(self.__name__, values, len(completions), prompts, completions)
        return list(values)


class _AsyncGuardedReward(GuardedReward):
    """GuardedReward for `async def` rewards, which TRL awaits concurrently on its own event loop."""

    async def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        try:
            values = await _await(
                self.func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs),
                self.timeout_s,
            )
        except _DeadlineExceeded:
            raise self._timeout(completions) from None
        except (Exception, SystemExit) as err:
            raise self._error(err, prompts, completions) from err
        return self._checked(values, prompts, completions)


def guard_reward(func: Any, timeout_s: float | None = None, name: str | None = None) -> Any:
    """Wraps plain and async reward callables; leaves reward models (nn.Module) and hub ids (str) alone.

    `name` replaces the callable's `__name__` (the metric key and the name in errors), e.g. `Calculator.get_reward`
    for the reward TRL builds from an environment's `get_reward`."""
    if isinstance(func, str | GuardedReward) or _is_torch_module(func):
        return func
    cls = _AsyncGuardedReward if _is_async_callable(func) else GuardedReward
    return cls(func, timeout_s, name)


def _call_with_deadline(func: Callable[..., Any], kwargs: dict[str, Any], timeout_s: float | None) -> Any:
    """`func(**kwargs)`, or `_DeadlineExceeded` after `timeout_s` seconds. The call runs in a daemon thread that is
    abandoned on timeout (a thread cannot be killed), so a reward that never returns cannot block the run."""
    if not timeout_s:
        return func(**kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(**kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err

    worker = threading.Thread(target=target, name="reward-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise _DeadlineExceeded
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _DeadlineExceeded(Exception):
    """A reward call outlived its `timeout_s` (distinct from a TimeoutError the reward raises itself)."""


async def _await(awaitable: Any, timeout_s: float | None = None) -> Any:
    if not timeout_s:
        return await awaitable
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise _DeadlineExceeded from None
        raise


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a reward model implies torch is imported; rewards never import it
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_async_callable(func: Any) -> bool:
    """Whether calling `func` returns a coroutine: functions, partials and instances with an async __call__."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or (callable(func) and inspect.iscoroutinefunction(func.__call__))


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
