"""The chat server of `rlsurrogate serve` under bad input: malformed bodies, lying or missing Content-Length, huge
prompts, slow or idle clients, too many connections, API keys. Every server listens on 127.0.0.1 and every wait is
bounded."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt import chat_server
from rlsurrogate.prompt_opt.chat_server import ChatServer, Limits

MSG = [{"role": "user", "content": "hello"}]
FAST = Limits(read_timeout=0.5)  # slow-client tests wait for this, so keep it short


class Echo:
    """A fake model: upper-cases the last message and counts the generations."""

    def __init__(self):
        self.calls = 0

    def __call__(self, messages, max_tokens, temperature):
        self.calls += 1
        text = messages[-1]["content"].upper()
        return text, len(messages[-1]["content"].split()), len(text.split())


@pytest.fixture(scope="module")
def shared():
    """(server, its fake model) for the tests that send one request each and leave no state behind."""
    echo = Echo()
    with ChatServer(echo, "echo") as server:
        yield server, echo


def _request(server, body=None, *, raw=None, headers=None, method="POST", path="/v1/chat/completions", timeout=5.0):
    """(status, headers, parsed JSON body) of one request sent over a raw socket, or (None, {}, None) if dropped."""
    data = raw if raw is not None else json.dumps(body).encode()
    head = {"host": "x", "content-length": str(len(data)), **(headers or {})}
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items() if v is not None]
    with _connect(server, timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        return _read_response(sock)


def _connect(server, timeout=5.0):
    host, port = server._httpd.server_address[:2]
    return socket.create_connection((host, port), timeout=timeout)


def _read_response(sock):
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None, {}, None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except ConnectionResetError:
        return None, {}, None
    return int(status_line.split()[1]), headers, json.loads(rest[:length]) if length else None


def _is_openai_error(body, status_type="invalid_request_error"):
    err = body["error"]
    return err["type"] == status_type and isinstance(err["message"], str) and {"param", "code"} <= set(err)


def test_good_request_is_answered():
    echo = Echo()
    with ChatServer(echo, "echo") as server:
        status, _, body = _request(server, {"model": "echo", "messages": MSG, "max_tokens": 8, "temperature": 0.7})
    assert status == 200 and body["choices"][0]["message"]["content"] == "HELLO"
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    assert echo.calls == 1 and server.internal_errors == 0


def test_n_choices_greedy_generates_once_sampled_n_times():
    echo = Echo()
    with ChatServer(echo, "echo") as server:
        _, _, greedy = _request(server, {"messages": MSG, "n": 3, "temperature": 0})
        assert echo.calls == 1
        _, _, sampled = _request(server, {"messages": MSG, "n": 2, "temperature": 0.7})
        assert echo.calls == 3
    assert [c["index"] for c in greedy["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in greedy["choices"]} == {"HELLO"}
    assert greedy["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    assert len(sampled["choices"]) == 2 and server.answered == 2


def test_finish_reason_says_length_when_the_answer_used_every_token():
    with ChatServer(lambda m, n, t: ("a b", 1, n), "echo") as server:
        _, _, body = _request(server, {"messages": MSG, "max_tokens": 2})
    assert body["choices"][0]["finish_reason"] == "length"


def test_stream_true_is_answered_as_server_sent_events_the_sdk_reads():
    import openai

    with ChatServer(Echo(), "echo") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="echo", messages=MSG, stream=True, n=2, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    text = {i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
            for i in (0, 1)}  # fmt: skip
    assert text == {0: "HELLO", 1: "HELLO"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop", "stop"]
    assert chunks[-1].usage.completion_tokens == 2 and not chunks[-1].choices


MALFORMED = {
    "empty_messages": {"messages": []},
    "messages_not_list": {"messages": "hello"},
    "messages_missing": {"model": "echo"},
    "message_not_object": {"messages": ["hello"]},
    "content_is_list": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    "content_missing": {"messages": [{"role": "user"}]},
    "role_unknown": {"messages": [{"role": "wizard", "content": "hi"}]},
    "max_tokens_string": {"messages": MSG, "max_tokens": "abc"},
    "max_tokens_negative": {"messages": MSG, "max_tokens": -5},
    "max_tokens_zero": {"messages": MSG, "max_tokens": 0},
    "max_tokens_float": {"messages": MSG, "max_tokens": 8.5},
    "max_tokens_bool": {"messages": MSG, "max_tokens": True},
    "max_tokens_over_cap": {"messages": MSG, "max_tokens": 10**9},
    "max_completion_tokens_string": {"messages": MSG, "max_completion_tokens": "many"},
    "temperature_string": {"messages": MSG, "temperature": "hot"},
    "temperature_huge": {"messages": MSG, "temperature": 1e308},
    "temperature_negative": {"messages": MSG, "temperature": -0.5},
    "temperature_above_2": {"messages": MSG, "temperature": 2.5},
    "n_over_cap": {"messages": MSG, "n": chat_server.MAX_N + 1},
    "n_zero": {"messages": MSG, "n": 0},
    "n_string": {"messages": MSG, "n": "one"},
    "stream_string": {"messages": MSG, "stream": "yes"},
    "stream_options_list": {"messages": MSG, "stream": True, "stream_options": []},
    "body_is_list": [MSG],
    "body_is_null": None,
    "too_many_messages": {"messages": MSG * (chat_server.MAX_MESSAGES + 1)},
}
RAW_MALFORMED = {
    "temperature_nan": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    "temperature_inf": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
    "not_json": b"messages=hello",
    "truncated_json": b'{"messages": [{"role": "user", "content": "hi',
    "not_utf8": b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
    "deep_nesting": b"[" * 100_000,
    "empty_body": b"",
}


@pytest.mark.parametrize(
    "body", list(MALFORMED.values()) + [None] * len(RAW_MALFORMED), ids=list(MALFORMED) + list(RAW_MALFORMED)
)
def test_malformed_body_is_a_400_in_openai_shape(body, request, capfd, shared):
    server, echo = shared
    calls = echo.calls
    status, headers, reply = _request(server, body, raw=RAW_MALFORMED.get(request.node.callspec.id))
    after = _request(server, {"messages": MSG})  # the server is still fine
    assert status == 400, reply
    assert _is_openai_error(reply) and headers["content-type"] == "application/json"
    assert echo.calls == calls + 1 and after[0] == 200  # only the good request reached the model
    assert server.internal_errors == 0 and "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "length, status",
    [("abc", 400), ("-5", 400), ("1e3", 400), ("+5", 400), (None, 411), ("5, 6", 400)],
    ids=["abc", "negative", "float", "plus", "missing", "two_values"],
)
def test_bad_content_length_is_refused(length, status, shared):
    server, _ = shared
    got, _, reply = _request(server, {"messages": MSG}, headers={"content-length": length})
    assert got == status and _is_openai_error(reply) and server.internal_errors == 0


def test_chunked_body_needs_a_content_length():
    with ChatServer(Echo(), "echo") as server:
        status, _, reply = _request(
            server, raw=b"5\r\nhello\r\n0\r\n\r\n", headers={"content-length": None, "transfer-encoding": "chunked"}
        )
    assert status == 411 and _is_openai_error(reply)


def test_10mb_message_is_refused_at_once_and_others_are_served():
    echo = Echo()
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 10_000_000}]}).encode()
    with ChatServer(echo, "echo") as server:
        result = {}
        thread = threading.Thread(target=lambda: result.update(big=_request(server, raw=body, timeout=10)))
        start = time.perf_counter()
        thread.start()
        normal = _request(server, {"messages": MSG})
        thread.join(10)
        elapsed = time.perf_counter() - start
    status, _, reply = result["big"]
    assert status == 413 and _is_openai_error(reply) and "max-body-bytes" in reply["error"]["message"]
    assert normal[0] == 200 and echo.calls == 1 and elapsed < 5


def test_expect_continue_is_answered_only_after_the_checks(shared):
    server, _ = shared
    data = json.dumps({"messages": MSG}).encode()
    head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n"
    with _connect(server) as sock:  # too big: the final 413 comes instead of "100 Continue"
        sock.sendall(head.format(10_000_000).encode())
        status, _, reply = _read_response(sock)
    assert status == 413 and _is_openai_error(reply)
    with _connect(server) as sock:
        sock.sendall(head.format(len(data)).encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(data)
        assert _read_response(sock)[0] == 200


def test_long_prompt_under_the_body_cap_is_refused_before_the_model():
    echo = Echo()
    with ChatServer(echo, "echo", limits=Limits(max_prompt_chars=1000)) as server:
        status, _, reply = _request(server, {"messages": [{"role": "user", "content": "x" * 1001}]})
    assert status == 400 and reply["error"]["code"] == "context_length_exceeded" and echo.calls == 0


def test_body_shorter_than_content_length_frees_the_thread():
    with ChatServer(Echo(), "echo", limits=FAST) as server, _connect(server) as sock:
        start = time.perf_counter()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{}")
        status, _, reply = _read_response(sock)
        elapsed = time.perf_counter() - start
    assert status == 408 and _is_openai_error(reply) and elapsed < FAST.read_timeout + 1


def test_trickling_headers_cannot_outlive_the_read_timeout():
    with ChatServer(Echo(), "echo", limits=FAST) as server, _connect(server) as sock:
        start, closed = time.perf_counter(), False
        for byte in b"POST /v1/chat/completions HTTP/1.1\r\nx-slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)  # each byte well inside any per-read timeout
            if time.perf_counter() - start > 3:
                break
        if not closed:
            try:
                closed = sock.recv(1024) == b""
            except ConnectionResetError:  # unread bytes at close turn the FIN into a reset
                closed = True
    assert closed and time.perf_counter() - start < 3


def test_idle_connections_are_bounded_and_excess_ones_get_a_quick_503():
    limits = Limits(max_workers=4, read_timeout=1.0)
    baseline = threading.active_count()
    with ChatServer(Echo(), "echo", limits=limits) as server:
        idle = [_connect(server, timeout=5) for _ in range(4)]
        time.sleep(0.2)  # let the four take every worker
        start = time.perf_counter()
        excess = [_connect(server, timeout=5) for _ in range(40)]
        replies = [_read_response(s) for s in excess]
        refused_in = time.perf_counter() - start
        peak_threads = threading.active_count() - baseline
        time.sleep(limits.read_timeout + 0.3)  # the idle four are closed by now
        status_after, _, _ = _request(server, {"messages": MSG})
        for s in idle + excess:
            s.close()
    assert [r[0] for r in replies] == [503] * 40 and all(_is_openai_error(r[2], "server_error") for r in replies)
    assert replies[0][1]["retry-after"] == "1" and refused_in < 2
    assert peak_threads <= limits.max_workers + 1  # the workers plus the accept loop
    assert status_after == 200


def test_api_key_is_required_when_set():
    with ChatServer(Echo(), "echo", api_key="s3cret") as server:
        missing = _request(server, {"messages": MSG})
        wrong = _request(server, {"messages": MSG}, headers={"authorization": "Bearer nope"})
        right = _request(server, {"messages": MSG}, headers={"authorization": "Bearer s3cret"})
        models = _request(server, method="GET", path="/v1/models", raw=b"", headers={"content-length": None})
        health = _request(server, method="GET", path="/health", raw=b"", headers={"content-length": None})
    assert missing[0] == wrong[0] == 401 and missing[2]["error"]["code"] == "invalid_api_key"
    assert missing[1]["www-authenticate"] == "Bearer"
    assert right[0] == 200 and models[0] == 401 and health[0] == 200


def test_openai_client_sends_the_key(monkeypatch):
    from rlsurrogate.prompt_opt.clients import OpenAIChatClient

    monkeypatch.setenv("SERVE_TEST_KEY", "s3cret")
    with ChatServer(Echo(), "echo", api_key="s3cret") as server:
        client = OpenAIChatClient("echo", base_url=server.base_url, api_key_env="SERVE_TEST_KEY", max_retries=0)
        assert client.complete([MSG])[0].text == "HELLO"


def test_bind_warning_only_off_loopback():
    assert chat_server._bind_warning("127.0.0.1", 8000, has_key=False) is None
    loud = chat_server._bind_warning("0.0.0.0", 8000, has_key=False)
    assert loud.startswith("WARNING") and "WITHOUT an API key" in loud and "\n" not in loud
    assert chat_server._bind_warning("0.0.0.0", 8000, has_key=True).startswith("warning: ")


def test_failing_model_is_a_500_not_a_traceback(capfd):
    def broken(messages, max_tokens, temperature):
        raise RuntimeError("CUDA out of memory")

    with ChatServer(broken, "broken") as server:
        status, _, reply = _request(server, {"messages": MSG})
    err = capfd.readouterr().err
    assert status == 500 and _is_openai_error(reply, "server_error")
    assert "Traceback" not in err and err.count("\n") == 1 and server.internal_errors == 1


@pytest.mark.parametrize(
    "raw_request, status",
    [
        (b"PUT /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n", 501),
        (b"POST /v1/chat/completions HTTP/1.1\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
    ids=["unknown_method", "header_too_long"],
)
def test_http_level_errors_are_json_too(raw_request, status):
    with ChatServer(Echo(), "echo") as server, _connect(server) as sock:
        sock.sendall(raw_request)
        got, _, reply = _read_response(sock)
    assert got == status and _is_openai_error(reply)


def test_garbage_request_line_gets_a_json_error():
    with ChatServer(Echo(), "echo") as server, _connect(server) as sock:
        sock.sendall(b"\x16\x03\x01 garbage\r\n\r\n")  # e.g. a TLS hello sent to plain HTTP
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert _is_openai_error(json.loads(data)) and server.internal_errors == 0  # an HTTP/0.9-style bare body


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="max_body_bytes = 0") as err:
        Limits(max_body_bytes=0, read_timeout=float("inf"))
    assert "read_timeout = inf" in str(err.value)
