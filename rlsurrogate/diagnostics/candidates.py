"""Candidate rewards for the teacher report: each turns one set of sampled completions into a `(P, K)` matrix.

Three kinds, named by a spec string:
- a reward the registry resolves (`accuracy`, `format_length`, `pkg.mod:fn`, `path/file.py:fn`), called once with
  TRL's keywords (`prompts`, `completions`, `completion_ids` and every dataset column) on all P*K completions;
- `rm:<path or hub id>`: a Hugging Face sequence-classification reward model (`num_labels=1`), scored on the chat
  template of prompt + completion (plain concatenation when its tokenizer has no template); an existing local
  directory with a `config.json` is taken as a reward model without the prefix;
- `squash:<spec>` or `squash(scale=0.1,spread=1.0):<spec>`: a strictly increasing per-prompt transform of another
  candidate, `r' = 0.5 + scale * (r - 0.5) + spread * u(x)` with `u(x)` in [0, 1) a fixed hash of the prompt. It
  keeps the ranking of every prompt's completions (so the accuracy) and multiplies the raw variance by scale^2.
  An affine map leaves the *whitened* variance unchanged; a spread between prompts makes the global std large
  compared with the within-prompt spread, so the whitened variance drops as well. This is the paper's
  construction of a perfectly accurate reward with low variance (Razin et al. 2025, arXiv 2503.15477, Thm. 2).

NaN marks a completion a reward did not score (it returned None).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlsurrogate.errors import ConfigError, RewardError

__all__ = ["Samples", "Candidate", "build_candidate", "reward_candidate", "reward_model_candidate", "squash"]

# The example squash, 0.5 + 0.1 * (r - 0.5): variance shrinks 100x, ranking unchanged.
DEFAULT_SQUASH_SCALE = 0.1
_SQUASH = re.compile(r"^squash(?:\((?P<args>[^)]*)\))?:(?P<inner>.+)$")


@dataclass
class Samples:
    """K sampled completions for each of P prompts, in TRL's order (completion k of prompt p is row p*K + k).

    Attributes:
        rows: the P dataset rows (chat `prompt` plus columns such as `answer`).
        k: completions per prompt.
        completions: P*K completion texts.
        completion_ids: P*K token id lists (up to and including the EOS token, as TRL passes them).
    """

    rows: list[dict[str, Any]]
    k: int
    completions: list[str]
    completion_ids: list[list[int]]

    @property
    def num_prompts(self) -> int:
        return len(self.rows)


@dataclass
class Candidate:
    """A named way to score samples: `score(samples)` returns `(P, K)` float64 rewards, NaN where not applicable."""

    name: str
    score: Callable[[Samples], torch.Tensor]


def build_candidate(
    spec: str,
    params: dict[str, Any] | None = None,
    max_length: int | None = None,
    cache: dict[str, torch.Tensor] | None = None,
    rm_batch_size: int = 16,
) -> Candidate:
    """Resolves a candidate spec (see the module docstring) into a `Candidate`.

    Args:
        spec: `NAME`, `pkg.mod:fn`, `path/file.py:fn`, `rm:PATH_OR_HUB_ID`, or `squash[(...)]:SPEC`.
        params: factory arguments for a registry reward.
        max_length: filled into a registry factory's `max_length` when `params` lacks it (as `train` does with
            `generation.max_completion_length`).
        cache: spec -> scored matrix, shared between candidates so `squash:accuracy` reuses `accuracy`'s scores.
        rm_batch_size: completions per reward-model forward pass.

    Example:
        >>> build_candidate("squash:format").name
        'squash:format'
    """
    cache = {} if cache is None else cache
    match = _SQUASH.match(spec)
    if match:
        inner = build_candidate(match["inner"], params, max_length, cache, rm_batch_size)
        kwargs = _parse_squash_args(spec, match["args"] or "")
        return Candidate(spec, _Cached(spec, lambda s: squash(inner.score(s), _prompt_hash(s), **kwargs), cache))
    if spec.startswith("rm:") or (Path(spec).is_dir() and (Path(spec) / "config.json").is_file()):
        path = spec.removeprefix("rm:")
        return Candidate(spec, _Cached(spec, _LazyRewardModel(path, rm_batch_size), cache))
    from rlsurrogate.rewards import REWARDS, build_reward

    params = dict(params or {})
    if spec in REWARDS and max_length is not None and "max_length" in inspect.signature(REWARDS.get(spec)).parameters:
        params.setdefault("max_length", max_length)
    reward = build_reward(spec, params)
    return reward_candidate(reward, name=spec, cache=cache)


def reward_candidate(reward: Callable[..., Any], name: str | None = None, cache: dict | None = None) -> Candidate:
    """A candidate from any callable with TRL's reward signature (sync or async)."""
    name = name or getattr(reward, "__name__", type(reward).__name__)

    def score(samples: Samples) -> torch.Tensor:
        k = samples.k
        prompts = [row["prompt"] for row in samples.rows for _ in range(k)]
        chat = isinstance(samples.rows[0]["prompt"], list)
        completions = [[{"role": "assistant", "content": c}] if chat else c for c in samples.completions]
        columns = {
            key: [row.get(key) for row in samples.rows for _ in range(k)]
            for key in samples.rows[0]
            if key not in ("prompt", "completion", "completion_ids")
        }
        try:
            values = reward(prompts=prompts, completions=completions, completion_ids=samples.completion_ids, **columns)
            if inspect.isawaitable(values):
                values = asyncio.run(_await(values))
        except RewardError:
            raise
        except Exception as err:
            raise RewardError(f"candidate {name} raised {type(err).__name__}: {err}") from err
        if values is None or len(values) != len(completions):
            got = "None" if values is None else len(values)
            raise RewardError(f"candidate {name} returned {got} values for {len(completions)} completions")
        out = torch.tensor([float("nan") if v is None else float(v) for v in values], dtype=torch.float64)
        return out.reshape(samples.num_prompts, k)  # (P, K)

    return Candidate(name, _Cached(name, score, cache if cache is not None else {}))


def reward_model_candidate(model: Any, tokenizer: Any, name: str, batch_size: int = 16) -> Candidate:
    """A candidate from a loaded sequence-classification model with one output (`num_labels=1`).

    Identical (prompt, completion) texts are scored once, so they get identical rewards: with padding, two forward
    passes of the same text can differ in the last bits, which would break ties the pairwise accuracy relies on.
    """
    if getattr(model.config, "num_labels", 1) != 1:
        raise ConfigError(
            f"candidate {name}: the reward model has num_labels = {model.config.num_labels}; a scalar reward model "
            "has num_labels = 1."
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id

    def score(samples: Samples) -> torch.Tensor:
        texts = [
            _rm_text(tokenizer, row["prompt"], samples.completions[p * samples.k + j])
            for p, row in enumerate(samples.rows)
            for j in range(samples.k)
        ]
        unique = sorted(set(texts), key=len)  # similar lengths in one batch: less padding
        scores: dict[str, float] = {}
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(unique), batch_size):
                chunk = unique[start : start + batch_size]
                enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                logits = model(**enc).logits  # (b, 1)
                scores.update(zip(chunk, logits[:, 0].double().tolist()))
        values = torch.tensor([scores[t] for t in texts], dtype=torch.float64)
        return values.reshape(samples.num_prompts, samples.k)  # (P, K)

    return Candidate(name, score)


def squash(
    rewards: torch.Tensor, prompt_offsets: torch.Tensor, scale: float = DEFAULT_SQUASH_SCALE, spread: float = 0.0
) -> torch.Tensor:
    """A strictly increasing per-prompt transform: `0.5 + scale * (r - 0.5) + spread * u`.

    Args:
        rewards: `(P, K)`.
        prompt_offsets: `(P,)` values u in [0, 1), one per prompt.
        scale: > 0; the raw variance is multiplied by scale^2.
        spread: >= 0; the largest offset between prompts.

    Example:
        >>> squash(torch.tensor([[0.0, 1.0]]), torch.zeros(1))
        tensor([[0.4500, 0.5500]])
    """
    return 0.5 + scale * (rewards - 0.5) + spread * prompt_offsets.to(rewards.dtype).unsqueeze(1)


# ---------------------------------------------------------------------------------------------------------------


class _Cached:
    """Scores once per Samples object and spec; later candidates built on the same spec reuse the matrix."""

    def __init__(self, key: str, fn: Callable[[Samples], torch.Tensor], cache: dict[str, Any]):
        self.key, self.fn, self.cache = key, fn, cache

    def __call__(self, samples: Samples) -> torch.Tensor:
        hit = self.cache.get(self.key)
        if hit is not None and hit[0] is samples:
            return hit[1]
        value = self.fn(samples)
        self.cache[self.key] = (samples, value)
        return value


class _LazyRewardModel:
    """Loads the reward model on first use, so a bad spec elsewhere fails before the slow load."""

    def __init__(self, path: str, batch_size: int):
        self.path, self.batch_size = path, batch_size
        self._candidate: Candidate | None = None

    def __call__(self, samples: Samples) -> torch.Tensor:
        if self._candidate is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(self.path)
                model = AutoModelForSequenceClassification.from_pretrained(self.path)
            except (OSError, ValueError) as err:
                raise ConfigError(f'candidate "rm:{self.path}": cannot load a reward model ({err}).') from None
            self._candidate = reward_model_candidate(model, tokenizer, f"rm:{self.path}", self.batch_size)
        return self._candidate.score(samples)


def _rm_text(tokenizer: Any, prompt: Any, completion: str) -> str:
    if isinstance(prompt, list) and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": completion}], tokenize=False)
    if isinstance(prompt, list):
        prompt = "\n".join(m["content"] for m in prompt)
    return f"{prompt}\n{completion}"


def _prompt_hash(samples: Samples) -> torch.Tensor:
    """`(P,)` in [0, 1): a fixed function of each prompt's text (the same prompt always gets the same offset)."""
    values = []
    for row in samples.rows:
        digest = hashlib.sha256(repr(row["prompt"]).encode()).digest()
        values.append(int.from_bytes(digest[:8], "big") / 2**64)
    return torch.tensor(values, dtype=torch.float64)


def _parse_squash_args(spec: str, args: str) -> dict[str, float]:
    kwargs = {"scale": DEFAULT_SQUASH_SCALE, "spread": 0.0}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in kwargs:
            raise ConfigError(f"candidate {spec!r}: unknown squash argument {key.strip()!r}; valid: scale, spread.")
        try:
            kwargs[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"candidate {spec!r}: {key.strip()} = {value!r} is not a number.") from None
    if kwargs["scale"] <= 0 or kwargs["spread"] < 0:
        raise ConfigError(
            f"candidate {spec!r}: needs scale > 0 (strictly increasing) and spread >= 0, "
            "e.g. squash(scale=0.1):accuracy."
        )
    return kwargs


async def _await(values: Any) -> Any:
    return await values
