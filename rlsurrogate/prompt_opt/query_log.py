"""A durable JSONL log of black-box queries, so that no paid query is ever made twice.

Every chat call to the black box is appended to the log as soon as it returns (one JSON line, flushed and fsync-ed),
and every finished instruction evaluation gets one more line with its score. `--resume` replays the log: a call whose
request was already logged is answered from the log, and an instruction already evaluated is not evaluated again. A
run killed at any point (Ctrl-C, crash, SIGKILL) therefore loses at most the calls that were in flight.

Record types (one JSON object per line, `"type"` says which):
- `{"type": "call", "key": sha256 of the request, "text": ..., "prompt_tokens": n, "completion_tokens": n, ...}`
- `{"type": "eval", "query": i, "instruction": ..., "score": s, "scores": [per example], "tokens": n, ...}`
- `{"type": "meta", ...}`: the run's settings, written once when a log is started.

The file is only ever appended to: one `write` per record on an O_APPEND descriptor, then fsync; no byte of it is
rewritten or truncated, on replay either. Replay is line by line:
- a line that is not a usable record (garbage, a torn write followed by more records, NUL bytes left by a crash,
  a record missing a field replay relies on) is skipped, and every record after it is still replayed;
- a torn last line (the process died while writing it: no trailing newline, incomplete JSON) is dropped, and the
  next record starts on a fresh line after it;
- the skipped lines are reported in one warning naming their file line numbers, and listed in `QueryLog.skipped`.
An exclusive advisory lock (`flock`) on the file refuses a second run on the same log while the first is alive.

The budget caps the number of instruction evaluations ("queries") and/or the tokens spent; replayed calls count,
because they were paid for.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsurrogate.errors import ConfigError

try:
    import fcntl
except ImportError:  # not POSIX: no lock, the rest works
    fcntl = None  # type: ignore[assignment]

__all__ = ["Budget", "BudgetExhausted", "QueryLog", "request_key"]


class BudgetExhausted(Exception):
    """Raised inside the optimizer loop when the query or token budget is spent; the loop stops cleanly."""


@dataclass(frozen=True)
class Budget:
    """Caps on black-box spending; `None` means no cap on that quantity.

    Args:
        max_queries: instruction evaluations (each is `task.n_val` chat calls).
        max_tokens: prompt + completion tokens over all calls.
    """

    max_queries: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_queries is None and self.max_tokens is None:
            problems.append("budget: set max_queries and/or max_tokens; an optimizer without a budget never stops.")
        for name in ("max_queries", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"budget.{name} = {value}: must be >= 1.")
        if problems:
            raise ConfigError(problems)

    def exhausted(self, queries: int, tokens: int) -> bool:
        return (self.max_queries is not None and queries >= self.max_queries) or (
            self.max_tokens is not None and tokens >= self.max_tokens
        )


def request_key(model: str, messages: list[dict[str, str]], **params: Any) -> str:
    """A stable hash of one chat request: the same model, messages and sampling parameters give the same key."""
    blob = json.dumps({"model": model, "messages": messages, **params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class QueryLog:
    """Append-only JSONL log with replay; thread-safe appends; one run at a time per file.

    Args:
        path: the log file.
        resume: replay an existing log; without it an existing non-empty log is an error (never overwrite paid
            results silently).

    Attributes:
        skipped: `(line number, reason)` of each line the replay could not use (1-based file line numbers).

    Example:
        >>> log = QueryLog("run/queries.jsonl", resume=True)  # doctest: +SKIP
        >>> log.cached_call(key) or client_call()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.calls: dict[str, dict[str, Any]] = {}
        self.evals: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Any] | None = None
        self.tokens = 0
        self.replayed_calls = 0
        self.skipped: list[tuple[int, str]] = []
        self._fresh_line = True  # the file ends with a newline (or is empty): the next record starts a line
        if self.path.is_dir():
            raise ConfigError(f"query log {self.path} is a directory: pass a run directory as --output-dir.")
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing and not resume:
            raise ConfigError(
                f"query log {self.path} already exists: pass --resume to continue that run without repeating "
                "its queries, or choose another --output-dir."
            )
        if resume and not existing:  # likely a mistyped --output-dir: every call would be paid for again
            warnings.warn(
                f"--resume: no query log at {self.path} (missing or empty); starting a new run.", stacklevel=2
            )
        self._fd: int | None = _open_locked(self.path)
        try:
            self._replay()
            if not self._fresh_line:  # a torn or unterminated last line: continue on a fresh line
                self._append(b"\n")
        except BaseException:
            self.close()
            raise

    @property
    def queries(self) -> int:
        """Instruction evaluations finished so far (replayed ones included)."""
        return len(self.evals)

    def cached_call(self, key: str) -> dict[str, Any] | None:
        return self.calls.get(key)

    def cached_eval(self, instruction: str) -> dict[str, Any] | None:
        return self.evals.get(instruction)

    def append_call(self, record: dict[str, Any]) -> None:
        """Logs one returned chat call (must hold `key`, `prompt_tokens`, `completion_tokens`)."""
        with self._lock:
            self._write({"type": "call", **record})
            self.calls[record["key"]] = record
            self.tokens += int(record.get("prompt_tokens", 0)) + int(record.get("completion_tokens", 0))

    def append_eval(self, record: dict[str, Any]) -> None:
        """Logs one finished instruction evaluation (must hold `instruction` and `score`)."""
        with self._lock:
            self._write({"type": "eval", **record})
            self.evals[record["instruction"]] = record

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Writes the run's settings once; on resume, checks they match the logged ones."""
        if self.meta is not None:
            changed = [
                f"{k}: logged {self.meta.get(k)!r}, now {v!r}" for k, v in meta.items() if self.meta.get(k) != v
            ]
            if changed:
                raise ConfigError(changed, header=f"--resume with settings that differ from the log {self.path}:")
            return
        with self._lock:
            self._write({"type": "meta", **meta})
            self.meta = meta

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock
            self._fd = None

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- private ------------------------------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        self._append(line if self._fresh_line else b"\n" + line)

    def _append(self, data: bytes) -> None:
        """One `write` per record (O_APPEND), then fsync; a failed write leaves the next record on a fresh line."""
        if self._fd is None:
            raise ValueError(f"query log {self.path} is closed")
        self._fresh_line = False
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self._fresh_line = data.endswith(b"\n")

    def _replay(self) -> None:
        try:
            with open(self.path, "rb") as f:
                lines = f.read().split(b"\n")
        except OSError as err:
            raise ConfigError(f"query log {self.path}: cannot read it to resume ({err.strerror}).") from None
        tail = lines.pop()  # b"" when the file ends with a newline
        notes: list[str] = []
        for number, line in enumerate(lines + [tail] if tail else lines, start=1):
            record, problem = _parse(line)
            if problem is not None and tail and number == len(lines) + 1:
                problem = f"torn last line ({problem}), dropped"
            if problem is not None:
                self.skipped.append((number, problem))
                notes.append(f"line {number}: {problem}")
                continue
            if record is None:
                continue
            if line.lstrip(b" \t").startswith(b"\x00"):  # a crash can leave a NUL-filled block where a write was
                notes.append(f"line {number}: NUL bytes before a good record (a lost write?); record kept")
            kind = record.pop("type")
            if kind == "call":
                self.calls[record["key"]] = record
                self.tokens += record["prompt_tokens"] + record["completion_tokens"]
                self.replayed_calls += 1
            elif kind == "eval":
                self.evals[record["instruction"]] = record
            else:
                self.meta = record
        self._fresh_line = not tail
        if notes:
            shown = "; ".join(notes[:_MAX_NOTES]) + ("; ..." if len(notes) > _MAX_NOTES else "")
            skipped = f"{len(self.skipped)} unusable line(s) skipped and left in the file, every other record"
            warnings.warn(
                f"query log {self.path}: {skipped if self.skipped else 'every record'} replayed ({shown})",
                stacklevel=3,
            )


_MAX_NOTES = 8  # bad lines named in the replay warning; the rest are in `QueryLog.skipped`


def _open_locked(path: Path) -> int:
    """An O_APPEND descriptor holding an exclusive advisory lock: a second run on the same log is refused."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as err:
        raise ConfigError(f"query log {path}: cannot open it for appending ({err.strerror}).") from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"query log {path} is in use by another run: wait for it to finish (two runs on one log would pay "
                "for the same calls twice)."
            ) from None
    return fd


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a usable line, (None, None) for a blank one, (None, reason) for an unusable one."""
    text = line.strip(b" \t\r\x00")
    if not text:
        return None, ("NUL bytes only (a lost write?)" if b"\x00" in line else None)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"not JSON ({err.msg} at column {err.colno})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except (ValueError, RecursionError):
        return None, "not JSON (unreadable or nested too deeply)"
    if not isinstance(record, dict):
        kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(record))
        return None, f"a JSON {kind or 'null'}, not a record"
    fields = _FIELDS.get(record.get("type"))  # type: ignore[arg-type]
    if fields is None:
        return None, f"unknown record type {str(record.get('type'))[:20]!r}"
    for name, check in fields.items():
        required = not name.endswith("?")
        name = name.rstrip("?")
        if (name in record or required) and not (name in record and check(record[name])):
            return None, f"{record['type']} record with a missing or invalid {name!r}"
    return record, None


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_scores(x: Any) -> bool:
    return isinstance(x, list) and len(x) > 0 and all(type(s) in (int, float) for s in x)


# record type -> the fields replay relies on and their checks (a trailing ? marks an optional field)
_FIELDS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "call": {
        "key": lambda x: isinstance(x, str),
        "text": lambda x: isinstance(x, str),
        "prompt_tokens": _is_count,
        "completion_tokens": _is_count,
    },
    "eval": {"instruction": lambda x: isinstance(x, str), "scores": _is_scores, "tokens?": _is_count},
    "meta": {},
}
