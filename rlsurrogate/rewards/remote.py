"""A remote reward: `http(s)://host:port/path`, a server that scores a batch of completions over HTTP.

The equivalent of OpenRLHF's `--remote_rm_url`. Each call POSTs one JSON object with TRL's reward keywords:
`{"prompts": [...], "completions": [...], "completion_ids": [[...]], "<column>": [...], ...}`, one entry per
completion and every dataset column that TRL passes (prompts and completions are text or chat messages, as the
dataset has them). The reply is a JSON list of one number (or null, "not applicable") per completion, or
`{"rewards": [...]}` (OpenRLHF's reply). Each request has a timeout; connection errors, timeouts, 408, 429 and 5xx
replies are retried `max_retries` times with exponential backoff (a `Retry-After` header is honoured up to
`MAX_WAIT_S`); anything else fails at once with one line naming the URL, the status and the start of the body.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from rlsurrogate.errors import ConfigError, RewardError

__all__ = ["RemoteReward", "make_remote_reward"]

# Statuses worth retrying: the server is busy, restarting or rate-limiting (RFC 9110 §15.5.9, §15.6).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Longest single wait between attempts, whatever Retry-After asks: a training step should not stall for minutes.
MAX_WAIT_S = 30.0
# First backoff; doubled after each failed attempt.
BACKOFF_S = 0.5
# Characters of a reply body quoted in an error.
_BODY_CHARS = 200


def make_remote_reward(
    url: str,
    request_timeout_s: float = 60.0,
    max_retries: int = 3,
    headers: dict[str, str] | None = None,
    name: str | None = None,
) -> RemoteReward:
    """The reward a server at `url` computes.

    Args:
        url: `http://` or `https://` address the batch is POSTed to.
        request_timeout_s: seconds one request may take (`rewards[i].timeout_s` bounds the whole call).
        max_retries: further attempts after a failed one (connection error, timeout, 408, 429, 5xx).
        headers: extra HTTP headers, e.g. an `Authorization` header.
        name: the metric name (default: `remote_` and the host, port and path).

    Example:
        >>> make_remote_reward("http://127.0.0.1:8000/score").__name__
        'remote_127_0_0_1_8000_score'
    """
    problems = []
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{url!r}: not an http(s) URL; write e.g. http://127.0.0.1:8000/score.")
    t = request_timeout_s
    if not (isinstance(t, int | float) and not isinstance(t, bool) and 0 < t <= 86_400):
        problems.append(f"request_timeout_s = {t!r}: must be in (0, 86400] seconds.")
    if not (isinstance(max_retries, int) and not isinstance(max_retries, bool) and 0 <= max_retries <= 100):
        problems.append(f"max_retries = {max_retries!r}: must be an integer in [0, 100].")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        problems.append("headers: must map header names to strings.")
    if name is not None and not (isinstance(name, str) and name.isidentifier()):
        problems.append(f"name = {name!r}: must be an identifier (it becomes the metric key).")
    if problems:
        raise ConfigError(problems)
    default = "remote_" + re.sub(r"\W+", "_", f"{parts.hostname}_{parts.port or ''}_{parts.path}").strip("_")
    return RemoteReward(url, float(t), max_retries, dict(headers or {}), name or re.sub(r"_+", "_", default))


class RemoteReward:
    """POSTs each batch to a reward server; returns its list of floats (None where it says null)."""

    version = "1"

    def __init__(self, url: str, timeout_s: float, max_retries: int, headers: dict[str, str], name: str):
        self.url = url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.headers = headers
        self.__name__ = name
        self._client: Any = None

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        columns = {k: v for k, v in kwargs.items() if isinstance(v, list | tuple) and len(v) == n}
        payload = {"prompts": list(prompts), "completions": list(completions), **columns}
        try:
            body = json.dumps(payload, default=_jsonable).encode()
        except (TypeError, ValueError) as err:
            raise RewardError(f"remote reward {self.url}: the batch is not JSON-serialisable ({err}).") from None
        return self._parse(self._post(body), n)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # an HTTP client does not pickle; each copy opens its own

    def _post(self, body: bytes) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
        headers = {"Content-Type": "application/json", **self.headers}
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            wait = min(BACKOFF_S * 2**attempt, MAX_WAIT_S)
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException:
                problem = f"no reply within request_timeout_s = {self.timeout_s:g} s"
            except httpx.TransportError as err:
                problem = f"cannot connect ({type(err).__name__}: {err}); is the server running?"
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise RewardError(
                            f"remote reward {self.url}: HTTP {response.status_code} but the reply is not JSON: "
                            f"{_snippet(response.text)!r}"
                        ) from None
                problem = f"HTTP {response.status_code}: {_snippet(response.text)!r}"
                if response.status_code not in RETRY_STATUSES:
                    raise RewardError(f"remote reward {self.url}: {problem}")
                wait = _retry_after(response, wait)
            if attempt + 1 < attempts:
                time.sleep(wait)
        raise RewardError(f"remote reward {self.url}: {problem} (after {attempts} attempts).")

    def _parse(self, reply: Any, n: int) -> list[float | None]:
        values = reply.get("rewards") if isinstance(reply, dict) else reply
        if not isinstance(values, list):
            raise RewardError(
                f'remote reward {self.url}: expected a JSON list of {n} numbers or {{"rewards": [...]}}, got '
                f"{_snippet(json.dumps(reply))!r}."
            )
        if len(values) != n:
            raise RewardError(f"remote reward {self.url}: returned {len(values)} rewards for {n} completions.")
        out: list[float | None] = []
        for i, value in enumerate(values):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise RewardError(
                    f"remote reward {self.url}: reward {i} is {_snippet(json.dumps(value))}, not a number or null."
                )
            out.append(None if value is None else float(value))
        return out


# ---------------------------------------------------------------------------------------------------------------


def _retry_after(response: Any, default: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", default)), 0.0), MAX_WAIT_S)
    except ValueError:  # an HTTP date instead of seconds: use our own backoff
        return default


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_CHARS else text[:_BODY_CHARS] + "..."
