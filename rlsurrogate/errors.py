"""The error hierarchy: every user-facing failure is one of these, raised where the bad input arrived."""

from __future__ import annotations

__all__ = ["RLSurrogateError", "ConfigError", "RewardError", "UnsupportedError"]


class RLSurrogateError(Exception):
    """Base class for errors the CLI prints as plain lines instead of a traceback."""


class ConfigError(RLSurrogateError, ValueError):
    """A recipe, a config or an argument is invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str] | str, header: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.header = header
        lines = ([header] if header else []) + [f"  - {p}" if header else p for p in self.problems]
        super().__init__("\n".join(lines))


class RewardError(RLSurrogateError, RuntimeError):
    """A reward function raised or returned something TRL cannot use (wrong count, non-number, NaN, inf)."""


class UnsupportedError(RLSurrogateError, NotImplementedError):
    """A combination of options that is valid on its own but not supported together."""
