"""Chat clients for the black-box LLM: any OpenAI-compatible endpoint, or a local Hugging Face model.

Both clients answer a batch of chat requests with `complete(requests, ...) -> list[Completion]` and call
`on_result(i, completion)` as each request returns, so the caller can log it before the next one finishes
(`query_log.py`). Both count tokens; the OpenAI client also counts retries and cost.

OpenAI-compatible client (the `openai` package, any `base_url`):
- the API key is read from an environment variable whose *name* is configurable; its value is never logged, printed
  or stored in `repr`; a loopback `base_url` needs no key;
- requests run on a thread pool of `concurrency` workers, each with a `timeout`;
- 429, 5xx, timeouts, connection errors and malformed bodies are retried at most `max_retries` times with
  exponential backoff and jitter (honouring `Retry-After`, capped at `max_backoff`); other 4xx fail at once;
- the SDK's own retries are switched off so that ours are the only ones and are bounded exactly.

Target strings (CLI `--target`): `openai:<model>@<base_url>` (base_url optional: the SDK default) or `hf:<name>`
(a hub id, a local path, or the embedded default "smollm2-135m-instruct").
"""

from __future__ import annotations

import os
import random
import threading
import time
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
    "make_client",
]

Messages = list[dict[str, str]]

# Default sampling for scoring: greedy answers, short outputs (instruction-induction answers are a few words).
DEFAULT_MAX_TOKENS = 16


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


class OpenAIChatClient:
    """An OpenAI-compatible `/v1/chat/completions` endpoint with bounded retries and accounting.

    Args:
        model: the model name sent with each request.
        base_url: e.g. "http://127.0.0.1:8000/v1"; None uses the SDK default (api.openai.com).
        api_key_env: NAME of the environment variable holding the key (the value is never logged).
        concurrency: requests in flight at once.
        timeout: seconds per request attempt.
        max_retries: retries per request after the first attempt (429, 5xx, timeouts, malformed bodies).
        backoff: first backoff in seconds; doubles per retry, times a jitter in [0.5, 1.5).
        max_backoff: cap on one backoff, `Retry-After` included.
        price_per_1k_prompt: cost per 1000 prompt tokens, for the cost total.
        price_per_1k_completion: cost per 1000 completion tokens.

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
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        seed: int = 0,
    ):
        problems = []
        if concurrency < 1:
            problems.append(f"concurrency = {concurrency}: must be >= 1.")
        if timeout <= 0:
            problems.append(f"timeout = {timeout}: must be > 0 seconds.")
        if max_retries < 0:
            problems.append(f"max_retries = {max_retries}: must be >= 0.")
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
        self.backoff, self.max_backoff = backoff, max_backoff
        self.prices = (price_per_1k_prompt, price_per_1k_completion)
        self.usage = Usage()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._openai = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)

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
        openai = self._openai
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
                completion = _parse_completion(response)
            except (openai.RateLimitError, openai.InternalServerError) as err:
                failure, retry_after = f"HTTP {err.status_code}", _retry_after(err)
            except openai.APIStatusError as err:
                if err.status_code < 500 and err.status_code not in (408, 409):
                    raise BlackBoxError(
                        f"{self.base_url or 'endpoint'} rejected the request with HTTP {err.status_code}: "
                        f"{_short(err.message)}; check --target and the model name."
                    ) from err
                failure = f"HTTP {err.status_code}"
            except (
                openai.APIConnectionError,
                openai.APIResponseValidationError,
                _MalformedResponse,
                ValueError,
            ) as err:
                failure = f"{type(err).__name__}: {_short(str(err))}"
            else:
                self._account(completion)
                return completion
            if attempt == self.max_retries:
                raise BlackBoxError(
                    f"{self.base_url or 'endpoint'} failed {attempt + 1} times (last: {failure}); giving up after "
                    f"max_retries = {self.max_retries}. Raise --max-retries or check the server."
                )
            with self._lock:
                self.usage.retries += 1
                jitter = 0.5 + self._rng.random()
            delay = min(
                self.max_backoff, retry_after if retry_after is not None else self.backoff * 2**attempt * jitter
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

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


def make_client(target: str, **kwargs: Any) -> ChatClient:
    """A client from a target string: "openai:<model>@<base_url>" or "hf:<name>".

    Args:
        target: the target string.
        **kwargs: passed to `OpenAIChatClient` (concurrency, timeout, ...); `dtype` for `hf:` targets.
    """
    kind, _, rest = target.partition(":")
    if kind == "openai" and rest:
        model, _, base_url = rest.partition("@")
        return OpenAIChatClient(model, base_url=base_url or None, **kwargs)
    if kind == "hf" and rest:
        from rlsurrogate.models import load_model

        lm, tokenizer = load_model(rest, dtype=kwargs.get("dtype", "float32"))
        return LocalHFClient(lm, tokenizer, name=rest)
    raise ConfigError(
        f"--target {target!r}: expected openai:<model>@<base_url> (e.g. openai:gpt-4o-mini@https://api.openai.com/v1) "
        "or hf:<name> (e.g. hf:smollm2-135m-instruct)."
    )


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


def _retry_after(err: Any) -> float | None:
    try:
        value = err.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


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
