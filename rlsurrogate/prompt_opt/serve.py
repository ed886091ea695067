"""`rlsurrogate serve`: a local model behind an OpenAI-compatible `/v1/chat/completions` on 127.0.0.1.

Standard library only (`http.server`), one generation at a time (a lock around the model), so that any
OpenAI-compatible client, our `OpenAIChatClient` included, can use a local model as its "black box". It also
serves `GET /v1/models` and `GET /health`.

Faults can be injected, for testing clients against a misbehaving endpoint:
- `script`: faults for the first requests, in order (e.g. `429,500,malformed,slow,ok`);
- rates: after the script, each request independently gets a 429 / 500 / malformed body with the given
  probability (seeded); `slow_seconds` delays every "slow" response (and every response when `slow_rate` is 1).
A 429 carries `Retry-After: 0`. A malformed body is truncated JSON with status 200.

Every request that reaches the model is appended to `request_log` (JSONL, one line per generation), so that a
test can count how many times each prompt was actually answered.

Example:
    rlsurrogate serve --model smollm2-135m-instruct --port 8000
    # then: --target openai:smollm2-135m-instruct@http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rlsurrogate.errors import ConfigError

__all__ = ["ChatServer", "Faults", "add_arguments", "run"]

Messages = list[dict[str, str]]
GenerateFn = Callable[[Messages, int, float], tuple[str, int, int]]  # -> (text, prompt_tokens, completion_tokens)

_FAULTS = ("ok", "429", "500", "malformed", "slow")


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
        seed: seed of the fault RNG.
    """

    script: list[str] = field(default_factory=list)
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_malformed: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
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
    ):
        self.generate, self.model_name = generate, model_name
        self.faults = faults or Faults()
        self.request_log = Path(request_log) if request_log else None
        self.counts = {name: 0 for name in _FAULTS}
        self._model_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/v1"

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
        """The chat.completion object for one parsed request body (`received`: arrival time, for the log)."""
        messages = body["messages"]
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 64)
        temperature = float(body.get("temperature") or 0.0)
        with self._model_lock:
            text, n_prompt, n_completion = self.generate(messages, max_tokens, temperature)
            if self.request_log is not None:
                key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
                with open(self.request_log, "a") as f:
                    f.write(json.dumps({"key": key, "time": received or time.time()}) + "\n")
        return {
            "id": f"chatcmpl-{int(time.time() * 1e6)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="hub id, local path, embedded name, or 'tiny'"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument("--fault-script", default="", help="comma-separated faults for the first requests")
    parser.add_argument("--rate-429", type=float, default=0.0, help="probability of a 429 response")
    parser.add_argument("--rate-500", type=float, default=0.0, help="probability of a 500 response")
    parser.add_argument("--rate-malformed", type=float, default=0.0, help="probability of a truncated JSON body")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="probability of a delayed response")
    parser.add_argument("--slow-seconds", type=float, default=0.0, help="delay of a slow response")
    parser.add_argument("--request-log", default=None, help="JSONL file with one line per generation")


def run(args: argparse.Namespace) -> int:
    faults = Faults(
        script=[f.strip() for f in args.fault_script.split(",") if f.strip()],
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_malformed=args.rate_malformed,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
    )
    model, tokenizer = _load(args.model)
    server = ChatServer(hf_generate_fn(model, tokenizer), args.model, args.host, args.port, faults, args.request_log)
    print(f"serving {args.model} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0


# ---- private helpers ---------------------------------------------------------------------------------------------


def _load(name: str) -> tuple[Any, Any]:
    from rlsurrogate import models

    if name == "tiny":
        return models.tiny_model(seed=0)
    return models.load_model(name)


def _make_handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: request lines carry no secrets, but noise
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            elif self.path == "/health":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:  # noqa: N802
            received = time.time()
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            try:
                body = json.loads(raw)
                if not isinstance(body.get("messages"), list):
                    raise ValueError("'messages' must be a list")
            except (json.JSONDecodeError, ValueError, AttributeError) as err:
                self._json(400, {"error": {"message": f"bad request: {err}", "type": "invalid_request_error"}})
                return
            fault = server.faults.next()
            server.counts[fault] += 1
            if fault == "429":
                self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"retry-after": "0"})
            elif fault == "500":
                self._json(500, {"error": {"message": "injected server error", "type": "server_error"}})
            elif fault == "malformed":
                self._raw(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc')
            else:
                if fault == "slow":
                    time.sleep(server.faults.slow_seconds)
                self._json(200, server.answer(body, received))

        def _json(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(obj).encode(), headers)

        def _raw(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout) or died: nothing to do
                pass

    return Handler
