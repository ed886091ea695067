"""The built-in CPU example environment: a calculator the model calls to solve arithmetic word problems.

With two-digit operands (task `arithmetic_tools`) SmolLM2-135M-Instruct rarely adds correctly in its head; with the
calculator it only has to copy the operands into a call and box the result. TRL 1.16 exposes the public methods
`add`, `subtract` and `multiply` as tools (their type hints and docstrings become the schema in the prompt) and calls
`reset(**row)` before each rollout.

`get_reward` (logged as `Calculator`): 1.0 when some tool call of the rollout returned the row's `answer` (the model
computed the asked quantity with the tool), else 0.0. It does not look at the box: the gold `accuracy` reward does,
so the hacking guard can tell tool use that helps from tool use that does not.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Calculator"]

# Operands beyond this are not arithmetic homework; refusing them keeps a tool call from building huge numbers.
_MAX_ABS = 1e12


class Calculator:
    """Add, subtract and multiply two numbers; remembers this rollout's results for `get_reward`."""

    def __init__(self) -> None:
        self.answer: float | None = None
        self.results: list[float] = []

    def reset(self, answer: Any = None, **row: Any) -> str | None:
        """Starts a rollout for one row; nothing is appended to the prompt."""
        self.answer = _number(answer)
        self.results = []
        return None

    def add(self, a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.

        Returns:
            The sum a + b.
        """
        return self._keep(_operand(a) + _operand(b))

    def subtract(self, a: float, b: float) -> float:
        """Subtract the second number from the first.

        Args:
            a: The number to subtract from.
            b: The number to subtract.

        Returns:
            The difference a - b.
        """
        return self._keep(_operand(a) - _operand(b))

    def multiply(self, a: float, b: float) -> float:
        """Multiply two numbers.

        Args:
            a: The first number.
            b: The second number.

        Returns:
            The product a * b.
        """
        return self._keep(_operand(a) * _operand(b))

    def get_reward(self) -> float:
        """1.0 when a tool call of this rollout returned the row's answer, else 0.0."""
        if self.answer is None:
            return 0.0
        return float(any(math.isclose(r, self.answer, rel_tol=0, abs_tol=1e-9) for r in self.results))

    def _keep(self, value: float) -> float:
        value = int(value) if float(value).is_integer() else value
        self.results.append(value)
        return value


def _operand(value: Any) -> float:
    number = _number(value)
    if number is None or abs(number) > _MAX_ABS:
        raise ValueError(f"expected a number up to {_MAX_ABS:g} in size, got {value!r}")
    return number


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None
