"""Bad inputs for `rlsurrogate serve`: malformed bodies, lying Content-Lengths, huge prompts, slow and idle clients,
connection floods, API keys, and HTTP that is not HTTP.

Each case starts a `ChatServer` on 127.0.0.1 (port 0) with a fake model that upper-cases the last message, sends
raw bytes over a socket, stops the server and reports what the client saw:
- "clear_error": an HTTP 4xx/5xx whose body is an OpenAI-shaped JSON error (`{"error": {"message", "type", ...}}`);
- "handled": a valid but unusual request answered 200, or a client misbehaviour (idle, trickling, flooding) that
  the server shed within its limits and then went on serving;
- "traceback": a server-side traceback or an internal error, a connection dropped without a reply, an error
  without a JSON body, or a bad request answered 200 (detail "accepted: ..."; the protocol has no kind for a wrong
  answer, and with a real model such a request is what raises inside `generate`);
- "hang": the server held a client past the case's own deadline (returned by the case, before the driver's).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from rlsurrogate.prompt_opt import chat_server
from rlsurrogate.prompt_opt.chat_server import ChatServer, Limits

from . import Case, Outcome, clear_error, handled, traceback

__all__ = ["CASES"]

SURFACE = "serve"
MSG = [{"role": "user", "content": "hello"}]
LIMITS = Limits(read_timeout=1.0)  # short, so that the slow-client cases finish in seconds
CLIENT_TIMEOUT = 8.0  # a reply later than this is a hang (the server's own deadline is LIMITS.read_timeout)

Response = tuple[int | None, dict[str, str], Any]


class _Echo:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> tuple[str, int, int]:
        self.calls += 1
        return messages[-1]["content"].upper(), 1, 1


@contextlib.contextmanager
def _server(**kwargs: Any) -> Any:
    """(server, fake model, captured stderr) for one case."""
    echo = kwargs.pop("generate", None) or _Echo()
    stderr = io.StringIO()
    with (
        contextlib.redirect_stderr(stderr),
        ChatServer(echo, "echo", limits=kwargs.pop("limits", LIMITS), **kwargs) as s,
    ):
        yield s, echo, stderr


def _connect(server: ChatServer, timeout: float = CLIENT_TIMEOUT) -> socket.socket:
    host, port = server._httpd.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=timeout)


def _http(body: Any = None, raw: bytes | None = None, headers: dict[str, str | None] | None = None,
          method: str = "POST", path: str = "/v1/chat/completions") -> bytes:  # fmt: skip
    data = raw if raw is not None else json.dumps(body).encode()
    head = {"host": "127.0.0.1", "content-type": "application/json", "content-length": str(len(data)),
            **(headers or {})}  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _read(sock: socket.socket) -> Response:
    """(status, headers, JSON body) of the next final response (1xx skipped); status None when the connection closed
    without one (the body is then whatever bytes came, e.g. an HTTP/0.9-style bare error body)."""
    f = _reader(sock)
    while True:
        status_line = f.readline()
        if not status_line.startswith(b"HTTP/"):
            return None, {}, status_line + f.read()
        headers = {}
        while (line := f.readline().strip()) != b"":
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(status_line.split()[1])
        if status >= 200:
            break
    data = f.read(int(headers.get("content-length", 0)))
    try:
        return status, headers, json.loads(data) if data else None
    except ValueError:
        return status, headers, data


def _reader(sock: socket.socket) -> Any:
    """One buffered reader per socket, so that pipelined responses are not lost between reads."""
    if sock not in _READERS:
        _READERS[sock] = sock.makefile("rb")
    return _READERS[sock]


_READERS: weakref.WeakKeyDictionary[socket.socket, Any] = weakref.WeakKeyDictionary()


def _send(server: ChatServer, request: bytes) -> Response:
    with _connect(server) as sock:
        sock.sendall(request)
        return _read(sock)


def _judge(response: Response, server: ChatServer, stderr: io.StringIO, expect_ok: bool = False) -> Outcome:
    status, _, body = response
    if "Traceback" in stderr.getvalue() or server.internal_errors:
        return traceback(f"server-side error: {stderr.getvalue().strip()[-200:] or server.internal_errors}")
    if status is None:
        return traceback("the connection closed without a reply")
    if 200 <= status < 300:
        if expect_ok:
            return handled(f"HTTP {status}")
        return traceback(f"accepted: HTTP {status} for a bad request")
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("message"), str) and "type" in error):
        return traceback(f"HTTP {status} without an OpenAI-shaped JSON error: {str(body)[:80]}")
    if expect_ok:
        return traceback(f"refused a valid request: HTTP {status}: {error['message']}")
    return clear_error(f"HTTP {status}: {error['message']}")


def _guarded(run: Callable[[], Outcome]) -> Callable[[], Outcome]:
    """Client-side timeouts become "hang" outcomes with a detail, instead of the driver's bare deadline."""

    def case() -> Outcome:
        try:
            return run()
        except TimeoutError:
            return Outcome("hang", f"no reply within {CLIENT_TIMEOUT:g} s")
        except (ConnectionResetError, BrokenPipeError) as err:
            return traceback(f"the server reset the connection: {err}")

    return case


def _request_case(body: Any = None, raw: bytes | None = None, headers: dict[str, str | None] | None = None,
                  expect_ok: bool = False, **server_kwargs: Any) -> Callable[[], Outcome]:  # fmt: skip
    def run() -> Outcome:
        with _server(**server_kwargs) as (server, _, stderr):
            response = _send(server, _http(body, raw, headers))
            return _judge(response, server, stderr, expect_ok)

    return _guarded(run)


def _raw_case(request: bytes, **server_kwargs: Any) -> Callable[[], Outcome]:
    """Bytes that are not a well-formed HTTP request; a bare JSON body (an HTTP/0.9-style reply) counts too."""

    def run() -> Outcome:
        with _server(**server_kwargs) as (server, _, stderr), _connect(server) as sock:
            sock.sendall(request)
            status, headers, body = _read(sock)
            if status is None and body:  # an HTTP/0.9-style reply: a bare body, no status line
                with contextlib.suppress(ValueError):
                    status, body = 400, json.loads(body)
            return _judge((status, headers, body), server, stderr)

    return _guarded(run)


# ---- cases that need more than one request ------------------------------------------------------------------------


def _huge_message() -> Outcome:
    """A 10 MB message: refused before it is read, and another client is served meanwhile."""
    body = _http({"messages": [{"role": "user", "content": "x" * 10_000_000}]})
    with _server() as (server, echo, stderr):
        result: dict[str, Response] = {}
        big = threading.Thread(target=lambda: result.update(big=_send(server, body)))
        start = time.perf_counter()
        big.start()
        other = _send(server, _http({"messages": MSG}))
        big.join(CLIENT_TIMEOUT)
        elapsed = time.perf_counter() - start
        if "big" not in result:
            return Outcome("hang", "the 10 MB request got no reply")
        if other[0] != 200 or echo.calls != 1 or elapsed > 5:
            return traceback(f"another client got HTTP {other[0]} after {elapsed:.1f} s; model calls {echo.calls}")
        return _judge(result["big"], server, stderr)


def _short_body() -> Outcome:
    """Content-Length 100, 2 bytes sent, the socket held open: the thread must come back."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        start = time.perf_counter()
        sock.sendall(_http(raw=b"{}", headers={"content-length": "100"}))
        response = _read(sock)
        elapsed = time.perf_counter() - start
        outcome = _judge(response, server, stderr)
        return outcome if elapsed < LIMITS.read_timeout + 2 else Outcome("hang", f"held for {elapsed:.1f} s")


def _long_body() -> Outcome:
    """Content-Length 5 with a longer body: the rest must not be taken for a request that hangs the connection."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        data = json.dumps({"messages": MSG}).encode()
        sock.sendall(_http(raw=data, headers={"content-length": "5"}))
        return _judge(_read(sock), server, stderr)


def _idle_flood() -> Outcome:
    """200 connections that never send a byte: threads stay bounded, the excess gets 503 at once, the server
    recovers after the read timeout."""
    limits = Limits(max_workers=8, read_timeout=2.0)
    before = threading.active_count()
    with _server(limits=limits) as (server, _, stderr):
        socks = [_connect(server) for _ in range(200)]
        time.sleep(0.3)
        threads = threading.active_count() - before
        start = time.perf_counter()
        busy = [_read(s)[0] for s in socks[limits.max_workers :]]
        refused_in = time.perf_counter() - start
        time.sleep(limits.read_timeout + 0.5)
        after = _send(server, _http({"messages": MSG}))
        for s in socks:
            s.close()
        if threads > limits.max_workers + 2:
            return traceback(f"{threads} threads for 200 idle connections (max_workers {limits.max_workers})")
        if after[0] != 200:
            return traceback(f"after the flood a good request got HTTP {after[0]}")
        if stderr.getvalue() or server.internal_errors:
            return traceback(f"server-side error: {stderr.getvalue().strip()[-200:]}")
        return handled(
            f"{threads} threads; {busy.count(503)}/{len(busy)} excess connections got 503 in {refused_in:.2f} s; "
            "served again after the read timeout"
        )


def _trickle_headers() -> Outcome:
    """A header sent one byte per 0.1 s (each read well inside any per-read timeout): closed at the deadline."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        start = time.perf_counter()
        for byte in _http({"messages": MSG}, headers={"x-slow": "a" * 200}):
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
            if time.perf_counter() - start > LIMITS.read_timeout + 3:
                return Outcome("hang", f"still reading a trickling client after {time.perf_counter() - start:.1f} s")
        elapsed = time.perf_counter() - start
        if stderr.getvalue() or server.internal_errors:
            return traceback(f"server-side error: {stderr.getvalue().strip()[-200:]}")
        return handled(f"a trickling client was cut off after {elapsed:.1f} s")


def _idle_keep_alive() -> Outcome:
    """A good request, then the kept-alive connection sits idle: the server closes it at the read timeout."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        sock.sendall(_http({"messages": MSG}))
        first = _read(sock)
        start = time.perf_counter()
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        elapsed = time.perf_counter() - start
        if first[0] != 200 or not closed:
            return traceback(f"first reply HTTP {first[0]}; closed {closed}")
        return (
            _judge(first, server, stderr, expect_ok=True)
            if elapsed < LIMITS.read_timeout + 2
            else Outcome("hang", f"an idle kept-alive connection held {elapsed:.1f} s")
        )


def _pipelined() -> Outcome:
    """Two requests in one write on a kept-alive connection: both answered, in order."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        sock.sendall(_http({"messages": [{"role": "user", "content": "one"}]}) + _http({"messages": MSG}))
        first, second = _read(sock), _read(sock)
        texts = [r[2]["choices"][0]["message"]["content"] for r in (first, second) if r[0] == 200]
        if texts != ["ONE", "HELLO"]:
            return traceback(f"pipelined replies {first[0]}, {second[0]}: {texts}")
        return _judge(second, server, stderr, expect_ok=True)


def _client_vanishes_mid_body() -> Outcome:
    """A client sends half its body and disconnects: no traceback, and the next client is served."""
    with _server() as (server, _, stderr):
        with _connect(server) as sock:
            sock.sendall(_http(raw=b'{"messages": [', headers={"content-length": "1000"}))
        time.sleep(0.2)
        return _judge(_send(server, _http({"messages": MSG})), server, stderr, expect_ok=True)


def _broken_model() -> Outcome:
    def broken(messages: Any, max_tokens: int, temperature: float) -> tuple[str, int, int]:
        raise RuntimeError("CUDA out of memory")

    with _server(generate=broken) as (server, _, stderr):
        status, headers, body = _send(server, _http({"messages": MSG}))
        lines = stderr.getvalue().strip().splitlines()
        if "Traceback" in stderr.getvalue() or len(lines) != 1:
            return traceback(f"{len(lines)} lines on stderr: {stderr.getvalue().strip()[-200:]}")
        if status != 500 or not isinstance(body, dict) or "error" not in body:
            return traceback(f"HTTP {status}: {str(body)[:80]}")
        return clear_error(f"HTTP 500: {body['error']['message']} (server log: {lines[0]})")


def _expect_continue_too_big() -> Outcome:
    """`Expect: 100-continue` with a 10 MB Content-Length: refused before any body byte is sent."""
    with _server() as (server, _, stderr), _connect(server) as sock:
        sock.sendall(_http(raw=b"", headers={"content-length": "10000000", "expect": "100-continue"}))
        return _judge(_read(sock), server, stderr)


def _expect_continue_ok() -> Outcome:
    """`Expect: 100-continue` with a good request: "100 Continue", then the body, then the answer."""
    data = json.dumps({"messages": MSG}).encode()
    with _server() as (server, _, stderr), _connect(server) as sock:
        sock.sendall(_http(raw=b"", headers={"content-length": str(len(data)), "expect": "100-continue"}))
        interim = _reader(sock).readline()
        if not interim.startswith(b"HTTP/1.1 100"):
            return traceback(f"no 100 Continue before the body: {interim[:40]!r}")
        _reader(sock).readline()  # the blank line that ends the interim response
        sock.sendall(data)
        return _judge(_read(sock), server, stderr, expect_ok=True)


def _bind_warning(has_key: bool) -> Callable[[], Outcome]:
    """The line `rlsurrogate serve --host 0.0.0.0` prints (checked without binding anything but loopback)."""

    def run() -> Outcome:
        line = chat_server._bind_warning("0.0.0.0", 8000, has_key)
        quiet = chat_server._bind_warning("127.0.0.1", 8000, has_key)
        if not line or "\n" in line or quiet is not None:
            return traceback(f"non-loopback warning {line!r}; loopback warning {quiet!r}")
        return handled(line)

    return run


def _cases() -> list[Case]:
    chat = {"messages": MSG}
    bad_bodies: dict[str, Any] = {
        "empty_messages": {"messages": []},
        "messages_not_list": {"messages": "hello"},
        "messages_missing": {"model": "echo"},
        "message_not_object": {"messages": ["hello"]},
        "content_list": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
        "content_null": {"messages": [{"role": "assistant", "content": None}]},
        "role_unknown": {"messages": [{"role": "wizard", "content": "hi"}]},
        "max_tokens_string": {**chat, "max_tokens": "abc"},
        "max_tokens_negative": {**chat, "max_tokens": -5},
        "max_tokens_zero": {**chat, "max_tokens": 0},
        "max_tokens_float": {**chat, "max_tokens": 8.5},
        "max_tokens_bool": {**chat, "max_tokens": True},
        "max_tokens_huge": {**chat, "max_tokens": 10**12},
        "temperature_string": {**chat, "temperature": "hot"},
        "temperature_1e308": {**chat, "temperature": 1e308},
        "temperature_negative": {**chat, "temperature": -1},
        "n_100": {**chat, "n": 100},
        "stream_string": {**chat, "stream": "yes"},
        "body_array": [chat],
        "body_null": None,
        "300_messages": {"messages": MSG * 300},
        "prompt_over_char_cap": {"messages": [{"role": "user", "content": "x" * 500_000}]},
    }
    raw_bodies = {
        "temperature_nan": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        "temperature_inf": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
        "not_json": b"messages=hello",
        "truncated_json": b'{"messages": [{"role": "user", "content": "hi',
        "not_utf8": b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
        "deep_nesting": b"[" * 100_000,
        "empty_body": b"",
    }
    data = json.dumps(chat).encode()
    lengths: dict[str, dict[str, str | None]] = {
        "content_length_abc": {"content-length": "abc"},
        "content_length_negative": {"content-length": "-5"},
        "content_length_float": {"content-length": "1e3"},
        "content_length_huge": {"content-length": "9" * 30},
        "content_length_missing": {"content-length": None},
        "chunked": {"content-length": None, "transfer-encoding": "chunked"},
    }
    cases = [Case(SURFACE, n, _request_case(b), tags=["body"]) for n, b in bad_bodies.items()]
    cases += [Case(SURFACE, n, _request_case(raw=r), tags=["body"]) for n, r in raw_bodies.items()]
    cases += [Case(SURFACE, n, _request_case(raw=data, headers=h), tags=["length"]) for n, h in lengths.items()]
    two_lengths = _http(raw=data).replace(b"\r\n\r\n", f"\r\ncontent-length: {len(data) + 5}\r\n\r\n".encode(), 1)
    auth = {"authorization": "Bearer s3cret"}
    cases += [
        Case(SURFACE, "content_length_twice", _raw_case(two_lengths), tags=["length"]),
        Case(SURFACE, "content_length_short_body_held", _guarded(_short_body), tags=["slow_client"]),
        Case(SURFACE, "content_length_long_body", _guarded(_long_body), tags=["length"]),
        Case(SURFACE, "message_10mb", _guarded(_huge_message), tags=["size"]),
        Case(SURFACE, "expect_continue_10mb", _guarded(_expect_continue_too_big), tags=["size"]),
        Case(SURFACE, "expect_continue_ok", _guarded(_expect_continue_ok), tags=["valid"]),
        Case(SURFACE, "idle_flood_200", _guarded(_idle_flood), timeout_s=60, tags=["slow_client"]),
        Case(SURFACE, "trickling_headers", _guarded(_trickle_headers), tags=["slow_client"]),
        Case(SURFACE, "idle_keep_alive", _guarded(_idle_keep_alive), tags=["slow_client"]),
        Case(SURFACE, "client_vanishes_mid_body", _guarded(_client_vanishes_mid_body), tags=["slow_client"]),
        Case(SURFACE, "pipelined_requests", _guarded(_pipelined), tags=["valid"]),
        Case(SURFACE, "broken_model", _guarded(_broken_model), tags=["model"]),
        Case(SURFACE, "api_key_missing", _request_case(chat, api_key="s3cret"), tags=["auth"]),
        Case(
            SURFACE,
            "api_key_wrong",
            _request_case(chat, headers={"authorization": "Bearer x"}, api_key="s3cret"),
            tags=["auth"],
        ),  # fmt: skip
        Case(
            SURFACE,
            "api_key_not_bearer",
            _request_case(chat, headers={"authorization": "s3cret"}, api_key="s3cret"),
            tags=["auth"],
        ),  # fmt: skip
        Case(
            SURFACE,
            "api_key_right",
            _request_case(chat, headers=auth, api_key="s3cret", expect_ok=True),
            tags=["auth", "valid"],
        ),  # fmt: skip
        Case(SURFACE, "bind_all_interfaces_no_key", _bind_warning(False), tags=["auth"]),
        Case(SURFACE, "bind_all_interfaces_with_key", _bind_warning(True), tags=["auth"]),
        Case(SURFACE, "unknown_route", _raw_case(_http(chat, path="/v1/completions")), tags=["http"]),
        Case(SURFACE, "unknown_method", _raw_case(_http(chat, method="PUT")), tags=["http"]),
        Case(SURFACE, "header_line_70kb", _raw_case(_http(chat, headers={"x-big": "a" * 70_000})), tags=["http"]),
        Case(
            SURFACE,
            "tls_hello_to_http",
            _raw_case(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 x\r\n\r\n"),
            tags=["http"],
        ),  # fmt: skip
        Case(SURFACE, "garbage_request_line", _raw_case(b"HELLO\r\n\r\n"), tags=["http"]),
        Case(
            SURFACE,
            "unicode_and_extra_fields",
            _request_case(
                {
                    "messages": [{"role": "user", "content": "héllo 👋 \u202e"}],
                    "top_p": 0.9,
                    "seed": 1,
                    "user": "u",
                    "max_completion_tokens": 8,
                },
                expect_ok=True,
            ),
            tags=["valid"],
        ),  # fmt: skip
        Case(
            SURFACE,
            "null_optional_fields",
            _request_case(
                {**chat, "temperature": None, "max_tokens": None, "n": None, "stream": False}, expect_ok=True
            ),
            tags=["valid"],
        ),  # fmt: skip
    ]
    return cases


CASES: list[Case] = _cases()
