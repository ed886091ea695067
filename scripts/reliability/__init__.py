"""Corpus of bad inputs for `scripts/bench_reliability.py`, one module per surface.

Each surface module defines `CASES: list[Case]`. A case feeds one bad input to one surface and returns an
`Outcome`; the driver runs every case in a worker process with a deadline, so a case that never returns counts as a
hang and an exception that escapes the case counts as a traceback.

Outcome kinds:
- "clear_error": the input was refused with one readable line (an `RLSurrogateError`, an HTTP 4xx with a JSON
  error, a CLI exit 2 with a one-line message).
- "handled": the input was accepted and handled correctly (e.g. a reward scored an adversarial answer 0, a
  replay skipped a bad line and kept the rest).
- "traceback": the surface let an unexpected exception, a server-side traceback or a raw stack trace through.
- "hang": filled in by the driver when a case outlives its deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Case", "Outcome", "clear_error", "handled", "traceback"]


@dataclass
class Outcome:
    kind: str  # clear_error | handled | traceback | hang
    detail: str = ""  # the message the user saw, cut to one line
    records_lost: int = 0  # paid or evaluated records lost or re-bought because of this input
    reward_ms: float | None = None  # for reward cases: the slowest single reward call, in ms


@dataclass
class Case:
    surface: str  # rewards | recipes | serve | query_log | checkpoints | ask_tell | ...
    name: str
    run: Callable[[], Outcome]
    timeout_s: float = 30.0
    tags: list[str] = field(default_factory=list)


def _line(text: object, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def clear_error(detail: object, **kw) -> Outcome:
    return Outcome("clear_error", _line(detail), **kw)


def handled(detail: object = "", **kw) -> Outcome:
    return Outcome("handled", _line(detail), **kw)


def traceback(detail: object, **kw) -> Outcome:
    return Outcome("traceback", _line(detail), **kw)
