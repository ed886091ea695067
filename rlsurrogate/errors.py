"""The error hierarchy: every user-facing failure is one of these, raised where the bad input arrived."""

from __future__ import annotations

__all__ = ["RLSurrogateError", "ConfigError", "RewardError", "UnsupportedError"]


class RLSurrogateError(Exception):
    """Base class for errors the CLI prints as plain lines instead of a traceback."""


class ConfigError(RLSurrogateError, ValueError):
    """A recipe, a config or an argument is invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str] | str, header: str | None = None):
        self.problems = [_readable(p) for p in ([problems] if isinstance(problems, str) else list(problems))]
        self.header = header
        lines = ([header] if header else []) + [f"  - {p}" if header else p for p in self.problems]
        super().__init__("\n".join(lines))


# A problem line longer than this is cut: a value quoted in an error (a huge string, a deep structure) must not
# flood the terminal.
MAX_PROBLEM_CHARS = 500


def _readable(problem: object) -> str:
    text = str(problem)
    if len(text) <= MAX_PROBLEM_CHARS:
        return text
    return f"{text[: MAX_PROBLEM_CHARS - 40]}... ({len(text) - MAX_PROBLEM_CHARS + 40:,} more characters)"


class RewardError(RLSurrogateError, RuntimeError):
    """A reward function raised or returned something TRL cannot use (wrong count, non-number, NaN, inf)."""


class UnsupportedError(RLSurrogateError, NotImplementedError):
    """A combination of options that is valid on its own but not supported together."""
