"""`rlsurrogate serve`: a local model as an OpenAI-compatible chat endpoint, so it can stand in for a black box.

Loads the model (a hub id, a local path, an embedded name, or "tiny" for smoke tests), then runs a
`rlsurrogate.prompt_opt.chat_server.ChatServer` in the foreground until Ctrl-C. The flags set its `Limits`, its API
key (else `$RLSURROGATE_API_KEY`) and its injected `Faults`; the server's docstring says what each one does.

Example:
    rlsurrogate serve --model smollm2-135m-instruct --port 8000
    # then: --target openai:smollm2-135m-instruct@http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import os
import sys

from rlsurrogate.models import load_named_model
from rlsurrogate.prompt_opt.chat_server import API_KEY_ENV, ChatServer, Faults, Limits, hf_generate_fn

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Limits()
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="hub id, local path, embedded name, or 'tiny'"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument(
        "--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}, if set)"
    )
    parser.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes, help="largest request body (413)")
    parser.add_argument(
        "--max-prompt-chars", type=int, default=d.max_prompt_chars, help="largest message content, characters (400)"
    )
    parser.add_argument(
        "--max-completion-tokens", type=int, default=d.max_completion_tokens, help="largest max_tokens (400)"
    )
    parser.add_argument("--max-workers", type=int, default=d.max_workers, help="connections at once (then 503)")
    parser.add_argument(
        "--read-timeout", type=float, default=d.read_timeout, help="seconds for a whole request to arrive"
    )
    parser.add_argument("--fault-script", default="", help="comma-separated faults for the first requests")
    parser.add_argument("--rate-429", type=float, default=0.0, help="probability of a 429 response")
    parser.add_argument("--rate-500", type=float, default=0.0, help="probability of a 500 response")
    parser.add_argument("--rate-malformed", type=float, default=0.0, help="probability of a truncated JSON body")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="probability of a delayed response")
    parser.add_argument("--slow-seconds", type=float, default=0.0, help="delay of a slow response")
    parser.add_argument(
        "--retry-after", type=float, default=0.0, help="Retry-After seconds of an injected 429 (and 500 when > 0)"
    )
    parser.add_argument("--request-log", default=None, help="JSONL file with one line per generation")


def run(args: argparse.Namespace) -> int:
    faults = Faults(
        script=[f.strip() for f in args.fault_script.split(",") if f.strip()],
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_malformed=args.rate_malformed,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        retry_after=args.retry_after,
    )
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_prompt_chars=args.max_prompt_chars,
        max_completion_tokens=args.max_completion_tokens,
        max_workers=args.max_workers,
        read_timeout=args.read_timeout,
    )
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    model, tokenizer = load_named_model(args.model)
    server = ChatServer(
        hf_generate_fn(model, tokenizer), args.model, args.host, args.port, faults, args.request_log, limits, api_key
    )
    if server.exposure_warning:
        print(server.exposure_warning, file=sys.stderr, flush=True)
    auth = ", API key required" if api_key else ""
    print(f"serving {args.model} at {server.base_url}{auth} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0
