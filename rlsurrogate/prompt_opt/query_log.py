"""A durable JSONL log of black-box queries, so that no paid query is ever made twice.

Every chat call to the black box is appended to the log as soon as it returns (one JSON line, flushed and fsync-ed),
and every finished instruction evaluation gets one more line with its score. `--resume` replays the log: a call whose
request was already logged is answered from the log, and an instruction already evaluated is not evaluated again. A
run killed at any point (Ctrl-C, crash, SIGKILL) therefore loses at most the calls that were in flight.

Record types (one JSON object per line, `"type"` says which):
- `{"type": "call", "key": sha256 of the request, "text": ..., "prompt_tokens": n, "completion_tokens": n, ...}`
- `{"type": "eval", "query": i, "instruction": ..., "score": s, "scores": [per example], "tokens": n, ...}`
- `{"type": "meta", ...}`: the run's settings, written once when a log is started.

A torn last line (the process died while writing it) is dropped on replay and cut from the file.

The budget caps the number of instruction evaluations ("queries") and/or the tokens spent; replayed calls count,
because they were paid for.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsurrogate.errors import ConfigError

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
    """Append-only JSONL log with replay; thread-safe appends.

    Args:
        path: the log file.
        resume: replay an existing log; without it an existing non-empty log is an error (never overwrite paid
            results silently).

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
        if self.path.exists() and self.path.stat().st_size > 0:
            if not resume:
                raise ConfigError(
                    f"query log {self.path} already exists: pass --resume to continue that run without repeating "
                    "its queries, or choose another --output-dir."
                )
            self._replay()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

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
            self.calls[record["key"]] = record
            self.tokens += int(record.get("prompt_tokens", 0)) + int(record.get("completion_tokens", 0))
            self._write({"type": "call", **record})

    def append_eval(self, record: dict[str, Any]) -> None:
        """Logs one finished instruction evaluation (must hold `instruction` and `score`)."""
        with self._lock:
            self.evals[record["instruction"]] = record
            self._write({"type": "eval", **record})

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Writes the run's settings once; on resume, checks they match the logged ones."""
        if self.meta is not None:
            changed = [
                f"{k}: logged {self.meta.get(k)!r}, now {v!r}" for k, v in meta.items() if self.meta.get(k) != v
            ]
            if changed:
                raise ConfigError(changed, header=f"--resume with settings that differ from the log {self.path}:")
            return
        self.meta = meta
        with self._lock:
            self._write({"type": "meta", **meta})

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- private ------------------------------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _replay(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good_bytes = 0
        for line in lines:
            if not line.strip():
                good_bytes += len(line) + 1
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn write: only the last line can be one, since every write is flushed before the next
            good_bytes += len(line) + 1
            kind = record.pop("type", None)
            if kind == "call":
                self.calls[record["key"]] = record
                self.tokens += int(record.get("prompt_tokens", 0)) + int(record.get("completion_tokens", 0))
                self.replayed_calls += 1
            elif kind == "eval":
                self.evals[record["instruction"]] = record
            elif kind == "meta":
                self.meta = record
        if good_bytes < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(min(good_bytes, len(raw)))
