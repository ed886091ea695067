"""Chat clients for the black-box LLM: any OpenAI-compatible endpoint, or a local Hugging Face model.

Both clients answer a batch of chat requests with `complete(requests, ...) -> list[Completion]` and call
`on_result(i, completion)` as each request returns, so the caller can log it before the next one finishes
(`query_log.py`). Both count tokens; the OpenAI client also counts retries and cost.

OpenAI-compatible client (the `openai` package, any `base_url`), configured the way the SDK is:
- `base_url` defaults to `$OPENAI_BASE_URL`, then the SDK's default (api.openai.com); the API key is read from an
  environment variable whose *name* is configurable (`OPENAI_API_KEY`); its value is never logged, printed or stored
  in `repr`; a loopback `base_url` needs no key;
- requests run on a thread pool of `concurrency` workers, each with a `timeout`;
- retries are the SDK's own (`max_retries`): 408, 409, 429, 5xx, timeouts and connection errors, with its exponential
  backoff and the server's `Retry-After` (up to 120 s). An httpx request hook counts every HTTP attempt, so
  `usage.retries` is exact. A 200 whose body is not a chat completion (which the SDK does not retry) is retried here,
  within the same `max_retries` attempts; other 4xx fail at once;
- reasoning models (`o1`, `o3`, `o4-*`, `gpt-5*`, or `reasoning=True`) get `max_completion_tokens` and no
  `temperature`. Any model whose 400 names a parameter it does not support (`param` of OpenAI's error body:
  `max_tokens`, `temperature`, `top_p`, ...) is retried once with that parameter dropped or renamed, and the change
  is kept for the rest of the run (a warning says so when it makes answers sampled instead of greedy).

Target strings (CLI `--target`): `openai:<model>@<base_url>` (the URL starts with http:// or https://; without one,
`$OPENAI_BASE_URL` or the SDK default; the model name may itself contain `@`) or `hf:<name>` (a hub id, a local
path, or the embedded default "smollm2-135m-instruct").
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from rlsurrogate.errors import ConfigError, RLSurrogateError

if TYPE_CHECKING:
    import torch

__all__ = [
    "BlackBoxError",
    "ChatClient",
    "Completion",
    "LocalHFClient",
    "OpenAIChatClient",
    "Usage",
    "generate_chat",
    "is_reasoning_model",
    "make_client",
    "parse_target",
]

Messages = list[dict[str, str]]

# Default sampling for scoring: greedy answers, short outputs (instruction-induction answers are a few words).
DEFAULT_MAX_TOKENS = 16
# OpenAI's reasoning models take max_completion_tokens and only the default sampling parameters.
_REASONING = re.compile(r"^(o\d+(-.*)?|gpt-5.*)$")
# Renames a 400 may ask for; any other named parameter is dropped.
_RENAMES = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
_FIRST_BACKOFF = 0.5  # the SDK's first retry delay, for the malformed-body retries it does not do itself


class BlackBoxError(RLSurrogateError, RuntimeError):
    """The black-box endpoint failed for good: a non-retryable status, or retries exhausted."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Usage:
    """Running totals, updated under a lock by the client's worker threads."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def record(self, completion: Completion, cost: float = 0.0) -> None:
        """Counts one answered call, its tokens and its cost."""
        self.calls += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.cost += cost


class ChatClient(Protocol):
    name: str  # the model name, recorded in logs and request keys
    usage: Usage

    def complete(
        self,
        requests: list[Messages],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        on_result: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]: ...


def is_reasoning_model(model: str) -> bool:
    """Whether `model` (optionally "provider/model") is an OpenAI reasoning model.

    >>> is_reasoning_model("o3-mini"), is_reasoning_model("openai/gpt-5"), is_reasoning_model("gpt-4o")
    (True, True, False)
    """
    return bool(_REASONING.match(model.rsplit("/", 1)[-1]))


class OpenAIChatClient:
    """An OpenAI-compatible `/v1/chat/completions` endpoint with the SDK's retries and exact accounting.

    Args:
        model: the model name sent with each request (any characters, `@` included).
        base_url: e.g. "http://127.0.0.1:8000/v1"; None uses `$OPENAI_BASE_URL`, then the SDK default.
        api_key_env: NAME of the environment variable holding the key (the value is never logged).
        concurrency: requests in flight at once.
        timeout: seconds per request attempt.
        max_retries: retries per request after the first attempt (the SDK's `max_retries`).
        price_per_1k_prompt: cost per 1000 prompt tokens, for the cost total.
        price_per_1k_completion: cost per 1000 completion tokens.
        reasoning: send `max_completion_tokens` and no `temperature`; None decides from the model name.

    Example:
        >>> client = OpenAIChatClient("gpt-4o-mini", api_key_env="OPENAI_API_KEY")  # doctest: +SKIP
        >>> client.complete([[{"role": "user", "content": "Say hi"}]])[0].text  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 4,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        reasoning: bool | None = None,
    ):
        problems = []
        if not model:
            problems.append("model is empty: name the model the endpoint serves (--model NAME).")
        if concurrency < 1:
            problems.append(f"concurrency = {concurrency}: must be >= 1.")
        if timeout <= 0:
            problems.append(f"timeout = {timeout}: must be > 0 seconds.")
        if max_retries < 0:
            problems.append(f"max_retries = {max_retries}: must be >= 0.")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        if base_url is not None and urlparse(base_url).scheme not in ("http", "https"):
            problems.append(
                f"base_url = {base_url!r}: must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)."
            )
        api_key = os.environ.get(api_key_env)
        if not api_key:
            if base_url is not None and _is_loopback(base_url):
                api_key = "not-needed"  # a local server takes any key
            else:
                problems.append(
                    f"environment variable {api_key_env} is not set: export it with your API key for "
                    f"{base_url or 'the OpenAI API'}, or name another variable with --api-key-env."
                )
        if problems:
            raise ConfigError(problems)
        import openai

        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.name = model
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        self.prices = (price_per_1k_prompt, price_per_1k_completion)
        self.reasoning = is_reasoning_model(model) if reasoning is None else reasoning
        self.token_param = "max_completion_tokens" if self.reasoning else "max_tokens"
        self.dropped: set[str] = {"temperature"} if self.reasoning else set()  # parameters the model refused
        self.usage = Usage()
        self._lock = threading.Lock()
        self._attempts = threading.local()  # HTTP attempts of the call running in this thread
        self._openai = openai
        http_client = openai.DefaultHttpxClient(event_hooks={"request": [self._count_attempt]})
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, http_client=http_client
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatClient(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def complete(
        self,
        requests: list[Messages],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        on_result: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]:
        """Sends every request (concurrently) and returns the completions in request order.

        Raises:
            BlackBoxError: a request failed with a non-retryable status or ran out of retries.
        """

        def one(i: int) -> Completion:
            completion = self._complete_one(requests[i], max_tokens, temperature)
            if on_result is not None:
                on_result(i, completion)
            return completion

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(len(requests), 1))) as pool:
            return list(pool.map(one, range(len(requests))))

    def _complete_one(self, messages: Messages, max_tokens: int, temperature: float) -> Completion:
        self._attempts.n = 0
        adapted: set[str] = set()  # a 400 naming a parameter is retried once per parameter, with it changed
        malformed = 0
        try:
            while True:
                params = self._params(max_tokens, temperature)
                left = self.max_retries + 1 - (self._attempts.n - len(adapted))  # a 400 retry is not a failure
                try:
                    response = self._client.with_options(max_retries=left - 1).chat.completions.create(
                        model=self.model,
                        messages=messages,  # type: ignore[arg-type]
                        **params,
                    )
                    completion = _parse_completion(response)
                except self._openai.BadRequestError as err:
                    named = self._adapt(err, params, adapted)
                    if named is None:
                        raise self._failure(
                            f"rejected the request with HTTP 400: {_short(_api_message(err))}"
                        ) from err
                    adapted.add(named)
                    continue
                except self._openai.APIStatusError as err:
                    if err.status_code < 500 and err.status_code not in (408, 409, 429):
                        raise self._failure(
                            f"rejected the request with HTTP {err.status_code}: {_short(_api_message(err))}; "
                            "check the model name and the base URL"
                        ) from err
                    raise self._gave_up(f"HTTP {err.status_code}") from err
                except (self._openai.APIConnectionError, self._openai.APIResponseValidationError) as err:
                    raise self._gave_up(f"{type(err).__name__}: {_short(str(err))}") from err
                except (_MalformedResponse, ValueError) as err:  # a 200 that is not a completion: the SDK keeps it
                    if self._attempts.n - len(adapted) > self.max_retries:
                        raise self._gave_up(f"{type(err).__name__}: {_short(str(err))}") from err
                    time.sleep(min(_FIRST_BACKOFF * 2**malformed, 8.0))
                    malformed += 1
                    continue
                self._account(completion)
                return completion
        finally:
            with self._lock:
                self.usage.retries += max(self._attempts.n - 1, 0)

    def _params(self, max_tokens: int, temperature: float) -> dict[str, Any]:
        params: dict[str, Any] = {self.token_param: max_tokens, "temperature": temperature}
        return {k: v for k, v in params.items() if k not in self.dropped}

    def _adapt(self, err: Any, params: dict[str, Any], adapted: set[str]) -> str | None:
        """After a 400 naming a parameter we sent, changes what requests send; returns that parameter, else None."""
        named = err.param or next((p for p in params if re.search(rf"\b{p}\b", _api_message(err))), None)
        if named not in params or named in adapted:
            return None
        with self._lock:
            if named in _RENAMES and _RENAMES[named] not in self.dropped:
                self.token_param = _RENAMES[named]
            else:
                self.dropped.add(named)
        if named == "temperature":
            warnings.warn(
                f"{self.model} does not accept temperature={params['temperature']} "
                f"({_short(_api_message(err), 120)}); requests go without it from now on, so its answers are "
                "sampled at the model's default and scores are noisier.",
                stacklevel=4,
            )
        return named

    def _count_attempt(self, request: Any) -> None:
        self._attempts.n = getattr(self._attempts, "n", 0) + 1

    def _failure(self, what: str) -> BlackBoxError:
        return BlackBoxError(f"{self.base_url or 'the OpenAI API'} {what}.")

    def _gave_up(self, failure: str) -> BlackBoxError:
        return BlackBoxError(
            f"{self.base_url or 'the OpenAI API'} failed {self._attempts.n} times (last: {failure}); giving up after "
            f"max_retries = {self.max_retries}. Raise --max-retries or check the server."
        )

    def _account(self, completion: Completion) -> None:
        cost = (completion.prompt_tokens * self.prices[0] + completion.completion_tokens * self.prices[1]) / 1000
        with self._lock:
            self.usage.record(completion, cost)


class LocalHFClient:
    """A local causal LM answering chat requests in batches (greedy at temperature 0).

    Args:
        model: a `transformers` causal LM (eval mode is set here).
        tokenizer: its tokenizer; its chat template is used when it has one.
        name: the model name recorded in logs and request keys.
        batch_size: requests per `generate` call.
        seed: seed of the sampling generator (temperature > 0).
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "local", batch_size: int = 16, seed: int = 0):
        import torch

        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.batch_size = batch_size
        self.usage = Usage()
        self._generator = torch.Generator().manual_seed(seed)

    def complete(
        self,
        requests: list[Messages],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        on_result: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            for j, completion in enumerate(
                generate_chat(self.model, self.tokenizer, batch, max_tokens, temperature, self._generator)
            ):
                self.usage.record(completion)
                if on_result is not None:
                    on_result(start + j, completion)
                out.append(completion)
        return out


def generate_chat(
    model: Any,
    tokenizer: Any,
    requests: list[Messages],
    max_new_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[Completion]:
    """One batched `generate` call: chat template, left padding, greedy at temperature 0.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        requests: B chat message lists.
        max_new_tokens: cap on generated tokens.
        temperature: 0 for greedy, else sampling at this temperature.
        generator: seeds sampling (ignored when greedy).

    Returns:
        B completions with token counts (prompt tokens exclude padding).
    """
    import torch

    prompts = [render_chat(tokenizer, messages) for messages in requests]
    enc = _encode_left_padded(tokenizer, prompts)  # input_ids: (B, T)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.no_grad(), _seeded(generator):
        out = model.generate(**enc, **kwargs)  # (B, T + new)
    new = out[:, enc["input_ids"].shape[1] :]  # (B, new)
    completions = []
    for row, mask in zip(new, enc["attention_mask"]):
        ids = row.tolist()
        eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        n = next((k for k, t in enumerate(ids) if t in eos), len(ids))
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        completions.append(Completion(text.strip(), int(mask.sum()), n))
    return completions


def render_chat(tokenizer: Any, messages: Messages) -> str:
    """The prompt string for a chat: the tokenizer's chat template, or a plain "role: content" fallback."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def parse_target(target: str) -> tuple[str, str, str | None]:
    """`(kind, model, base_url)` of a target string; `kind` is "openai" or "hf", `base_url` None when not given.

    The URL of "openai:<model>@<url>" is what follows the first "@" that starts `http://` or `https://`, so a model
    name may contain "@" (`openai:org/model@v2@http://127.0.0.1:8000/v1`).

    >>> parse_target("openai:org/model@v2@http://127.0.0.1:8000/v1")
    ('openai', 'org/model@v2', 'http://127.0.0.1:8000/v1')
    """
    kind, _, rest = target.partition(":")
    if kind == "openai" and rest:
        match = re.match(r"(.+?)@(https?://\S+)$", rest)
        model, base_url = (match.group(1), match.group(2)) if match else (rest, None)
        return kind, model, base_url
    if kind == "hf" and rest:
        return kind, rest, None
    raise ConfigError(
        f"--target {target!r}: expected openai:<model>@<base_url> (e.g. "
        "openai:gpt-4o-mini@https://api.openai.com/v1), openai:<model> (with $OPENAI_BASE_URL) or hf:<name> "
        "(e.g. hf:smollm2-135m-instruct); or use --model NAME --base-url URL."
    )


def make_client(target: str, **kwargs: Any) -> ChatClient:
    """A client from a target string: "openai:<model>[@<base_url>]" or "hf:<name>" (see `parse_target`).

    Args:
        target: the target string.
        **kwargs: passed to `OpenAIChatClient` (concurrency, timeout, ...); `dtype` for `hf:` targets.
    """
    kind, model, base_url = parse_target(target)
    if kind == "openai":
        return OpenAIChatClient(model, base_url=base_url, **kwargs)
    from rlsurrogate.models import load_model

    lm, tokenizer = load_model(model, dtype=kwargs.get("dtype", "float32"))
    return LocalHFClient(lm, tokenizer, name=model)


# ---- private helpers ---------------------------------------------------------------------------------------------


class _MalformedResponse(ValueError):
    pass


def _parse_completion(response: Any) -> Completion:
    """Checks the parsed body: the SDK builds objects from whatever JSON arrived, so a bad body surfaces here."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _MalformedResponse(f"no choices in response: {_short(repr(response))}")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str):
        raise _MalformedResponse(f"choices[0].message.content is not a string: {_short(repr(choices[0]))}")
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    return Completion(text, int(prompt_tokens or 0), int(completion_tokens or 0))


def _api_message(err: Any) -> str:
    """The `message` of an OpenAI-shaped error body, else the SDK's own text."""
    body = getattr(err, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else str(getattr(err, "message", err))


def _is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in {"127.0.0.1", "localhost", "::1"}


def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _encode_left_padded(tokenizer: Any, prompts: list[str]) -> dict[str, Any]:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return dict(tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False))
    finally:
        tokenizer.padding_side = side


class _seeded:
    """Runs sampling under a torch.Generator's state by forking the global RNG (HF generate has no generator arg)."""

    def __init__(self, generator: torch.Generator | None):
        self.generator = generator

    def __enter__(self) -> None:
        import torch

        if self.generator is None:
            return
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.generator)))

    def __exit__(self, *exc: Any) -> None:
        if self.generator is not None:
            self._fork.__exit__(*exc)
