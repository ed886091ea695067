"""Environments and tools written as a user writes them, loaded by path from test recipes."""

from __future__ import annotations

import time


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def no_docstring(a: int) -> int:
    return a


def no_hints(a):
    """Return a.

    Args:
        a: A number.
    """
    return a


def hangs(a: int) -> int:
    """Never returns in time.

    Args:
        a: A number.
    """
    time.sleep(30)
    return a


class Counter:
    """Counts the calls of `bump`; its reward is 1.0 after at least one call."""

    def __init__(self, start: int = 0):
        self.start = start
        self.calls = 0

    def reset(self, **row) -> str | None:
        self.calls = 0
        return " (you may call bump)"

    def bump(self, by: int) -> int:
        """Increase the counter.

        Args:
            by: How much to add.
        """
        self.calls += 1
        return self.start + by

    def get_reward(self) -> float:
        return float(self.calls > 0)


class NaNReward(Counter):
    def get_reward(self) -> float:
        return float("nan")


class ResetRaises(Counter):
    def reset(self, **row) -> str | None:
        raise RuntimeError("no sandbox available")


class ResetHangs(Counter):
    def reset(self, **row) -> str | None:
        time.sleep(30)


class NoReset:
    def bump(self, by: int) -> int:
        """Increase.

        Args:
            by: How much.
        """
        return by


class UndocumentedTool(Counter):
    def poke(self, x: int) -> int:
        return x
