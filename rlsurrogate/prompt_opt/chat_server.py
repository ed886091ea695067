"""A local model behind an OpenAI-compatible `/v1/chat/completions` on 127.0.0.1 (the `rlsurrogate serve` server).

Standard library only (`http.server`), one generation at a time (a lock around the model), so that any
OpenAI-compatible client, our `OpenAIChatClient` included, can use a local model as its "black box". It also
serves `GET /v1/models` and `GET /health`.

Limits, so that one client cannot tie the server up (each a `Limits` field and a CLI flag):
- `max_body_bytes` (1 MiB): a larger `Content-Length` gets 413 before the body is read; a missing one 411, one that
  is not a non-negative integer 400;
- `read_timeout` (15 s): the whole request (request line, headers, body, and the idle wait of a kept-alive
  connection before it) must arrive within it, else the connection is closed; a trickling client cannot hold a
  thread longer either;
- `max_workers` (16): connections handled at once; one more gets an immediate 503 with `Retry-After: 1`;
- `max_prompt_chars` (32,000 characters of message content, about 8k tokens) and `max_completion_tokens` (1,024),
  so that no single request holds the model lock for minutes;
- every request is validated before it reaches the model: a malformed body is a 400 with an error in OpenAI's
  shape, `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`, never a server-side traceback.
  Checked: `messages` a non-empty list (at most 256) of `{"role", "content": str}`; `temperature` finite in [0, 2];
  `max_tokens` / `max_completion_tokens` an integer in [1, max_completion_tokens]; `n` an integer in [1, 8];
  `stream` a boolean; `stream_options` an object.
- `api_key` (optional; `--api-key` or the `RLSURROGATE_API_KEY` variable): every route but `/health` then needs
  `Authorization: Bearer <key>`, else 401. A non-loopback address gets a one-line `exposure_warning` (a louder one
  without a key), which the command prints.

Faults can be injected, for testing clients against a misbehaving endpoint:
- `script`: faults for the first requests, in order (e.g. `429,500,malformed,slow,ok`);
- rates: after the script, each request independently gets a 429 / 500 / malformed body with the given
  probability (seeded); `slow_seconds` delays every "slow" response (and every response when `slow_rate` is 1).
A 429 carries `Retry-After` (`retry_after`, 0 s by default; an injected 500 too when it is > 0). A malformed body
is truncated JSON with status 200. Faults apply to valid requests only; an invalid one gets its 4xx first.

`n` > 1 generates n answers (one generation each; at temperature 0 the first is repeated, since greedy decoding
gives the same text). `stream: true` gets the same answer as server-sent events (`text/event-stream`, OpenAI's
`chat.completion.chunk` objects: a role chunk, a content chunk and a finish chunk per choice, a usage chunk when
`stream_options.include_usage`, then `data: [DONE]`); the answer is generated whole before the first event is sent.
`finish_reason` is "length" when an answer used all of `max_tokens`, else "stop".

Every request that reaches the model is appended to `request_log` (JSONL, one line per generation), so that a
test can count how many times each prompt was actually answered.

The command `rlsurrogate serve` (`rlsurrogate.commands.serve`) loads a model and runs this server in the foreground.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import ipaddress
import json
import math
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from rlsurrogate.errors import ConfigError

__all__ = ["API_KEY_ENV", "ChatServer", "Faults", "Limits", "RequestError", "hf_generate_fn"]

Messages = list[dict[str, str]]
GenerateFn = Callable[[Messages, int, float], tuple[str, int, int]]  # -> (text, prompt_tokens, completion_tokens)

API_KEY_ENV = "RLSURROGATE_API_KEY"  # read when --api-key is not given, so the key stays out of `ps`
DEFAULT_MAX_TOKENS = 64  # when a request names none (the behaviour before limits existed)
MAX_TEMPERATURE = 2.0  # OpenAI's documented range is [0, 2]
MAX_MESSAGES = 256  # the content cap alone would let 1 MiB of empty messages expand into ~100k template tokens
MAX_N = 8  # answers per request: one request may hold the model lock at most as long as 8 single ones
ROLES = ("system", "developer", "user", "assistant")  # tool messages need tool calls, which this server lacks

_FAULTS = ("ok", "429", "500", "malformed", "slow")
_CHAT_ROUTES = ("/v1/chat/completions", "/chat/completions")
_DRAIN_SECONDS = 2.0  # after refusing a body unread, read and discard it this long so the client sees the reply


@dataclass(frozen=True)
class Limits:
    """What one request and one client may use.

    Args:
        max_body_bytes: largest request body (413 above it); 1 MiB is far above what the prompt cap lets through.
        max_prompt_chars: largest total message content in characters (400 above it); ~8k tokens.
        max_completion_tokens: largest `max_tokens` a request may ask for (400 above it).
        max_workers: connections handled at once (503 above it).
        read_timeout: seconds within which a whole request must arrive, idle keep-alive wait included.
    """

    max_body_bytes: int = 1 << 20
    max_prompt_chars: int = 32_000
    max_completion_tokens: int = 1024
    max_workers: int = 16
    read_timeout: float = 15.0

    def __post_init__(self) -> None:
        problems = [
            f"limits.{name} = {getattr(self, name)!r}: must be an integer >= 1."
            for name in ("max_body_bytes", "max_prompt_chars", "max_completion_tokens", "max_workers")
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1
        ]
        if not (isinstance(self.read_timeout, int | float) and 0 < self.read_timeout < math.inf):
            problems.append(f"limits.read_timeout = {self.read_timeout!r}: must be a finite number of seconds > 0.")
        if problems:
            raise ConfigError(problems)


class RequestError(Exception):
    """A request the server refuses: an HTTP status and an error object in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        return _error(self.message, param=self.param, code=self.code)


@dataclass
class Faults:
    """Which responses go wrong. Script entries come first, then the seeded rates apply.

    Args:
        script: faults for the first requests in order, each one of "ok", "429", "500", "malformed", "slow".
        rate_429: probability of a 429 after the script.
        rate_500: probability of a 500 after the script.
        rate_malformed: probability of a truncated JSON body after the script.
        slow_rate: probability of a delayed response after the script.
        slow_seconds: the delay of a "slow" response.
        retry_after: the `Retry-After` header (seconds) of an injected 429.
        seed: seed of the fault RNG.
    """

    script: list[str] = field(default_factory=list)
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_malformed: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    retry_after: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            f"fault script entry {f!r}: must be one of {', '.join(_FAULTS)}." for f in self.script if f not in _FAULTS
        ]
        rates = {"rate_429": self.rate_429, "rate_500": self.rate_500, "rate_malformed": self.rate_malformed}
        problems += [
            f"{k} = {v}: must be in [0, 1]."
            for k, v in {**rates, "slow_rate": self.slow_rate}.items()
            if not 0 <= v <= 1
        ]
        if not 0 <= self.retry_after <= 3600:
            problems.append(f"retry_after = {self.retry_after}: must be in [0, 3600] seconds.")
        if sum(rates.values()) > 1:
            problems.append("rate_429 + rate_500 + rate_malformed must be <= 1.")
        if problems:
            raise ConfigError(problems)
        self._queue = list(self.script)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def next(self) -> str:
        """The fault for the next request."""
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            u = self._rng.random()
            for name, rate in (("429", self.rate_429), ("500", self.rate_500), ("malformed", self.rate_malformed)):
                if u < rate:
                    return name
                u -= rate
            return "slow" if self._rng.random() < self.slow_rate else "ok"


class ChatServer:
    """An OpenAI-compatible chat server in a background thread (or the foreground with `serve_forever`).

    Args:
        generate: answers one chat: `(messages, max_tokens, temperature) -> (text, prompt_tokens, completion_tokens)`.
        model_name: the name reported by `/v1/models` and in responses.
        host: interface to bind; loopback by default.
        port: 0 picks a free port.
        faults: injected faults (none by default).
        request_log: JSONL file receiving one line per generation.
        limits: request size, time and concurrency limits (`Limits()` by default).
        api_key: when set, every route but `/health` needs `Authorization: Bearer <api_key>`.

    Example:
        >>> server = ChatServer(lambda m, n, t: ("hi", 1, 1), "echo").start()  # doctest: +SKIP
        >>> server.base_url  # doctest: +SKIP
        'http://127.0.0.1:54321/v1'
    """

    def __init__(
        self,
        generate: GenerateFn,
        model_name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        request_log: str | Path | None = None,
        limits: Limits | None = None,
        api_key: str | None = None,
    ):
        if api_key is not None and not api_key.strip():
            raise ConfigError(f"api_key is empty: unset {API_KEY_ENV} / drop --api-key, or give a real key.")
        self.generate, self.model_name = generate, model_name
        self.faults = faults or Faults()
        self.request_log = Path(request_log) if request_log else None
        self.limits = limits or Limits()
        self.api_key = api_key
        self.counts = {name: 0 for name in _FAULTS}
        self.answered = 0  # requests answered by the model (a benchmark counts black-box calls with it)
        self._model_lock = threading.Lock()
        try:
            self._httpd = _BoundedHTTPServer((host, port), _make_handler(self), self.limits.max_workers)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({err.strerror}): choose another --port (0 picks a free one)."
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/v1"

    @property
    def internal_errors(self) -> int:
        """Requests that failed inside the server (a bug, or a `generate` that raised); 0 when all is well."""
        return self._httpd.internal_errors

    @property
    def exposure_warning(self) -> str | None:
        """One line to print when the bound address is reachable from other machines; None on loopback."""
        host, port = self._httpd.server_address[:2]
        return _bind_warning(str(host), int(port), self.api_key is not None)

    def start(self) -> ChatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, body: dict[str, Any], received: float | None = None) -> dict[str, Any]:
        """The chat.completion object for one parsed request body (`received`: arrival time, for the log).

        Raises:
            RequestError: the body is not a valid chat request within `limits` (status 400).
        """
        request = _parse_chat(body, self.limits)
        answers: list[tuple[str, int, int]] = []
        with self._model_lock:
            for _ in range(request.n if request.temperature > 0 else 1):  # greedy: one generation serves every choice
                answers.append(self.generate(request.messages, request.max_tokens, request.temperature))
                if self.request_log is not None:
                    key = hashlib.sha256(json.dumps(request.messages, sort_keys=True).encode()).hexdigest()
                    with open(self.request_log, "a") as f:
                        f.write(json.dumps({"key": key, "time": received or time.time()}) + "\n")
            self.answered += 1
        answers = (answers * request.n)[: request.n]
        n_prompt = answers[0][1]
        n_completion = sum(a[2] for a in answers)
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text},
             "finish_reason": "length" if used >= request.max_tokens else "stop"}
            for i, (text, _, used) in enumerate(answers)
        ]  # fmt: skip
        return {
            "id": f"chatcmpl-{int(time.time() * 1e6)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n_completion,
                "total_tokens": n_prompt + n_completion,
            },
        }


def hf_generate_fn(model: Any, tokenizer: Any) -> GenerateFn:
    """A `GenerateFn` backed by a local causal LM (greedy at temperature 0)."""
    import torch

    from rlsurrogate.prompt_opt.clients import generate_chat

    generator = torch.Generator().manual_seed(0)

    def generate(messages: Messages, max_tokens: int, temperature: float) -> tuple[str, int, int]:
        c = generate_chat(model, tokenizer, [messages], max_tokens, temperature, generator)[0]
        return c.text, c.prompt_tokens, c.completion_tokens

    return generate


# ---- private helpers ---------------------------------------------------------------------------------------------


def _error(
    message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An error body in OpenAI's shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _ChatRequest(NamedTuple):
    messages: Messages
    max_tokens: int
    temperature: float
    n: int
    stream: bool
    include_usage: bool


def _parse_chat(body: Any, limits: Limits) -> _ChatRequest:
    """The fields of a chat request body that the server uses, or a `RequestError` naming the bad field."""
    if not isinstance(body, dict):
        raise RequestError(400, f"the body must be a JSON object, got a JSON {_json_type(body)}.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        got = "an empty list" if messages == [] else f"a JSON {_json_type(messages)}"
        raise RequestError(400, f"'messages' must be a non-empty list of messages, got {got}.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise RequestError(400, f"'messages' has {len(messages)} messages; at most {MAX_MESSAGES}.", "messages")
    chars = 0
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(400, f"'{where}' must be an object with 'role' and 'content'.", where)
        if m.get("role") not in ROLES:
            message = f"'{where}.role' = {_show(m.get('role'))}: must be one of {', '.join(ROLES)}."
            raise RequestError(400, message, f"{where}.role")
        if not isinstance(m.get("content"), str):
            raise RequestError(
                400, f"'{where}.content' must be a string, got a JSON {_json_type(m.get('content'))} (content parts "
                "and tool calls are not supported).", f"{where}.content",
            )  # fmt: skip
        chars += len(m["content"])
    if chars > limits.max_prompt_chars:
        raise RequestError(
            400, f"the messages hold {chars} characters; this server takes at most {limits.max_prompt_chars} "
            "(--max-prompt-chars).", "messages", "context_length_exceeded",
        )  # fmt: skip
    param = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    max_tokens = body.get(param)
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS, limits.max_completion_tokens)
    elif not _is_int(max_tokens) or not 1 <= max_tokens <= limits.max_completion_tokens:
        raise RequestError(
            400, f"'{param}' = {_show(max_tokens)}: must be an integer in [1, {limits.max_completion_tokens}] "
            "(--max-completion-tokens).", param,
        )  # fmt: skip
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 0.0
    elif not _is_number(temperature) or not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestError(
            400, f"'temperature' = {_show(temperature)}: must be a finite number in [0, {MAX_TEMPERATURE:g}].",
            "temperature",
        )  # fmt: skip
    n = body.get("n")
    if n is None:
        n = 1
    elif not (_is_int(n) and 1 <= n <= MAX_N):
        raise RequestError(400, f"'n' = {_show(n)}: must be an integer in [1, {MAX_N}] (answers per request).", "n")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError(400, f"'stream' = {_show(stream)}: must be true or false.", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestError(
            400, f"'stream_options' must be an object, got a JSON {_json_type(options)}.", "stream_options"
        )
    include_usage = bool(stream) and bool((options or {}).get("include_usage"))
    return _ChatRequest(messages, int(max_tokens), float(temperature), int(n), bool(stream), include_usage)


def _sse_events(response: dict[str, Any], include_usage: bool) -> bytes:
    """A chat.completion object as OpenAI's stream: chunks per choice, the usage chunk if asked, then [DONE]."""
    head = {k: response[k] for k in ("id", "created", "model")}
    chunks: list[dict[str, Any]] = []
    for choice in response["choices"]:
        i, text = choice["index"], choice["message"]["content"]
        for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": text}, None),
                              ({}, choice["finish_reason"])):  # fmt: skip
            chunks.append({"index": i, "delta": delta, "finish_reason": finish})
    events = [{**head, "object": "chat.completion.chunk", "choices": [c]} for c in chunks]
    if include_usage:
        events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": response["usage"]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return (isinstance(x, float) and math.isfinite(x)) or _is_int(x)


def _json_type(x: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if x is None else names.get(type(x), type(x).__name__)


def _show(x: Any) -> str:
    text = json.dumps(x) if isinstance(x, str | int | float | bool) or x is None else f"a JSON {_json_type(x)}"
    return text if len(text) <= 40 else text[:37] + "..."


def _bind_warning(host: str, port: int, has_key: bool) -> str | None:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name: cannot tell, so say it
        pass
    if has_key:
        return (
            f"warning: serving on {host}:{port}, reachable from other machines; requests need the API key, but "
            "travel as plain HTTP (no TLS)."
        )
    return (
        f"WARNING: serving on {host}:{port} WITHOUT an API key: anyone who can reach this port can run the model. "
        f"Set {API_KEY_ENV} (or --api-key), or bind 127.0.0.1."
    )


class _DeadlineSocketIO(socket.SocketIO):
    """A socket reader that fails every read once `deadline` (time.monotonic) has passed: no trickle outlives it."""

    deadline = math.inf

    def readinto(self, b: Any) -> int | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received within the read timeout")
        self._sock.settimeout(left)  # type: ignore[attr-defined]
        return super().readinto(b)


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_workers` of them; one more connection gets a 503 at once."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 leaves a burst of connections in SYN retries for seconds, not refused

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_workers: int):
        self._slots = threading.BoundedSemaphore(max_workers)
        self.internal_errors = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _send_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, ConnectionError | TimeoutError):  # the client went away: nothing wrong here
            return
        self.internal_errors += 1
        print(f"serve: request from {client_address[0]} failed: {type(err).__name__}: {err}", file=sys.stderr)


def _send_busy(request: socket.socket) -> None:
    payload = json.dumps(_error("server busy: too many connections; retry shortly", "server_error")).encode()
    head = (
        f"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        "retry-after: 1\r\nconnection: close\r\n\r\n"
    )
    try:
        request.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # read what already arrived, so closing does not reset the reply
            for _ in range(16):
                if not request.recv(1 << 16):
                    break
        request.sendall(head.encode() + payload)
    except OSError:
        pass


def _make_handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    limits = server.limits

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: request lines carry no secrets, but noise
            pass

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # replaced by a reader with a deadline per request
            self._reader = _DeadlineSocketIO(self.connection, "rb")
            self.rfile = io.BufferedReader(self._reader)

        def handle_one_request(self) -> None:
            self._reader.deadline = time.monotonic() + limits.read_timeout
            self._expects_continue = False
            super().handle_one_request()

        def handle_expect_100(self) -> bool:
            self._expects_continue = True  # "100 Continue" only once route, key and length have passed
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (bad request line, header too long, unknown method) as JSON too."""
            self.close_connection = True
            text = message or self.responses.get(code, ("error",))[0]
            self._json(code, _error(f"{text} (HTTP {code})", "invalid_request_error"), {"connection": "close"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.rstrip("/")
            if path == "/health":
                self._json(200, {"status": "ok"})
            elif not self._authorized():
                return
            elif path in ("/v1/models", "/models"):
                self._json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            else:
                self._json(404, _error(f"no route GET {self.path[:100]}", code="not_found"))

        def do_POST(self) -> None:  # noqa: N802
            received = time.time()
            if self.path.rstrip("/") not in _CHAT_ROUTES:
                return self._refuse(RequestError(404, f"no route POST {self.path[:100]}", code="not_found"))
            if not self._authorized():
                return
            try:
                body = json.loads(self._read_body())
            except RequestError as err:
                return self._refuse(err)
            except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, deep nesting
                return self._json(400, _error(f"the body is not valid JSON: {str(err)[:120]}"))
            try:
                _parse_chat(body, limits)  # a bad request gets its 400 before any injected fault
            except RequestError as err:
                return self._json(err.status, err.body())
            fault = server.faults.next()
            server.counts[fault] += 1
            if fault == "429":
                self._json(
                    429, _error("rate limited", "rate_limit"), {"retry-after": f"{server.faults.retry_after:g}"}
                )
            elif fault == "500":
                wait = {"retry-after": f"{server.faults.retry_after:g}"} if server.faults.retry_after > 0 else {}
                self._json(500, _error("injected server error", "server_error"), wait)
            elif fault == "malformed":
                self._raw(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc')
            else:
                if fault == "slow":
                    time.sleep(server.faults.slow_seconds)
                self._generate(body, received)

        # ---- private ------------------------------------------------------------------------------------------

        def _generate(self, body: dict[str, Any], received: float) -> None:
            try:
                response = server.answer(body, received)
            except Exception as err:  # a failing model must not take the connection down with a traceback
                server._httpd.internal_errors += 1  # a bug or a broken model: counted, reported on one line
                print(f"serve: generation failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                self._json(500, _error(f"generation failed: {type(err).__name__}", "server_error"))
                return
            if body.get("stream"):
                events = _sse_events(response, bool((body.get("stream_options") or {}).get("include_usage")))
                self._raw(200, events, content_type="text/event-stream")
            else:
                self._json(200, response)

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                raise RequestError(411, "chunked request bodies are not supported: send a Content-Length.")
            values = self.headers.get_all("content-length") or []
            if not values:
                raise RequestError(411, "a Content-Length header is required.")
            if len(set(values)) > 1 or not values[0].strip().isdigit() or not values[0].strip().isascii():
                raise RequestError(400, f"Content-Length {', '.join(values)[:40]!r}: must be one integer >= 0.")
            length = int(values[0])
            if length > limits.max_body_bytes:
                raise RequestError(
                    413, f"the body has {length} bytes; this server takes at most {limits.max_body_bytes} "
                    "(--max-body-bytes).", code="request_too_large",
                )  # fmt: skip
            if self._expects_continue:
                self.send_response_only(100)
                self.end_headers()
            try:
                raw = self.rfile.read(length)
            except (TimeoutError, OSError):
                raise RequestError(408, f"the body did not arrive within {limits.read_timeout:g} s.") from None
            if len(raw) < length:
                raise RequestError(400, f"the body ended after {len(raw)} of its {length} bytes (Content-Length).")
            return raw

        def _authorized(self) -> bool:
            if server.api_key is None:
                return True
            scheme, _, token = (self.headers.get("authorization") or "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode("utf-8", "replace"), server.api_key.encode()
            ):
                return True
            message = "missing or wrong API key: send the header 'Authorization: Bearer <key>'."
            self._refuse(RequestError(401, message, code="invalid_api_key"), {"www-authenticate": "Bearer"})
            return False

        def _refuse(self, err: RequestError, headers: dict[str, str] | None = None) -> None:
            """Replies before the body was read, then closes: the unread body must not be taken for a request."""
            self._json(err.status, err.body(), {**(headers or {}), "connection": "close"})
            try:  # a lingering close: drain what the client still sends, so its read sees our reply, not a reset
                self.connection.shutdown(socket.SHUT_WR)
                end = time.monotonic() + _DRAIN_SECONDS
                while (left := end - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    if not self.connection.recv(1 << 16):
                        break
            except OSError:
                pass

        def _json(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(obj).encode(), headers)

        def _raw(
            self, status: int, payload: bytes, headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:  # fmt: skip
            try:
                self.connection.settimeout(limits.read_timeout)  # a client that never reads cannot hold us either
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout), died, or stopped reading: nothing to do
                self.close_connection = True

    return Handler
