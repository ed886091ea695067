"""Candidate instructions from a white-box LLM: INSTINCT's soft-prompt pool and an APE-style sampler.

INSTINCT (Lin, Wu, Dai, Hu, Shu, Ng, Jaillet, Low; ICML 2024; METHODS.md §4.1 steps 2-5), following InstructZero
(Chen et al. 2023): a candidate is a point z of a scrambled Sobol set in [0, 1]^d (d = `intrinsic_dim`), mapped by a
FIXED random matrix A with U(-1, 1) entries to `n_prompt_tokens` soft-token embeddings. The white-box model reads

    template(demos) + [soft prompt] + "The instruction was to"

and greedily continues it; the continuation is the candidate's instruction. The candidate's feature, used by the
neural-bandit scorer, is the final-layer hidden state at the LAST input position, computed once per candidate by
one forward pass (no generation); instructions are generated only for the candidates that get queried.

The APE-style sampler (Zhou et al. 2022, arXiv 2211.01910) shows the same demos in APE's forward template and samples
instructions at temperature 0.9, with no soft prompt.

Deviations from the official code (INST @ 10edbb3):
- The soft prompt sits after the demos, just before "The instruction was to" (the paper: before everything). The
  demos prefix is then the same for every candidate, so it is encoded once and reused through the KV cache; a
  candidate's forward pass costs its soft tokens plus the short suffix instead of the whole prompt.
- z is centred to [-1, 1] and A is scaled by `soft_prompt_scale * 3 std(E) / sqrt(d)`, so a soft token's entries have
  about the spread of real token embeddings E; unscaled U(-1, 1) projections put soft tokens far outside the
  embedding distribution of small models, which then emit noise for every z.
- The template is rendered with the white-box model's chat template (user turn: APE's forward template; assistant
  turn prefilled with "The instruction was to"), because chat-tuned small models continue raw text poorly.
- The instruction kept is the first line / first sentence of the continuation, capitalised, instead of
  "The instruction was to ..." cut at "Comment:".
- Default pool size 500 (the paper: 10,000) to keep one forward pass per candidate affordable on a CPU.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    from rlsurrogate.prompt_opt.tasks import Example

__all__ = ["CandidateConfig", "InstructionGenerator", "clean_instruction", "format_demos", "sobol_pool"]

# APE's forward template (Zhou et al. 2022, "instruction induction" prompt), in our words where it allows.
APE_TEMPLATE = (
    "I gave a friend an instruction and some inputs. The friend read the instruction and wrote an output for every "
    "one of the inputs. Here are the input-output pairs:\n\n{demos}\n\nWhat was the instruction?"
)
INSTRUCTION_PREFIX = "The instruction was to"


@dataclass
class CandidateConfig:
    """Knobs of the soft-prompt pool and the samplers (defaults: INSTINCT's induction scripts unless noted)."""

    n_prompt_tokens: int = field(default=5, metadata={"help": "Soft tokens per candidate (INSTINCT induction: 5)."})
    intrinsic_dim: int = field(default=10, metadata={"help": "Dimension d of the Sobol search space (INSTINCT: 10)."})
    pool_size: int = field(default=500, metadata={"help": "Candidates in the pool (paper: 10,000; smaller for CPU)."})
    n_demos: int = field(default=5, metadata={"help": "Demonstrations shown to the white-box model (INSTINCT: 5)."})
    soft_prompt_scale: float = field(
        default=1.0, metadata={"help": "Soft-token spread in units of the embedding std (our deviation, see module)."}
    )
    max_new_tokens: int = field(default=24, metadata={"help": "Tokens generated per instruction (INSTINCT: 64)."})
    ape_temperature: float = field(default=0.9, metadata={"help": "APE sampling temperature (APE config: 0.9)."})
    batch_size: int = field(default=32, metadata={"help": "Candidates per forward/generate batch."})
    seed: int = field(
        default=0, metadata={"help": "Seed of the Sobol set, the projection A and the demos (INSTINCT: 0)."}
    )

    def __post_init__(self) -> None:
        problems = [
            f"candidates.{name} = {getattr(self, name)}: must be >= 1."
            for name in ("n_prompt_tokens", "intrinsic_dim", "pool_size", "n_demos", "max_new_tokens", "batch_size")
            if getattr(self, name) < 1
        ]
        if self.soft_prompt_scale <= 0:
            problems.append(f"candidates.soft_prompt_scale = {self.soft_prompt_scale}: must be > 0.")
        if problems:
            raise ConfigError(problems)


def sobol_pool(n: int, d: int, seed: int = 0) -> Tensor:
    """`n x d` scrambled Sobol points in [0, 1]^d; the same (n, d, seed) always gives the same points."""
    from torch.quasirandom import SobolEngine

    return SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=torch.float64)


def format_demos(demos: list[Example]) -> str:
    """APE / INSTINCT demo format: "Input: x\\nOutput: y" blocks separated by blank lines."""
    return "\n\n".join(f"Input: {e.input}\nOutput: {e.output}" for e in demos)


def clean_instruction(text: str) -> str:
    """The instruction in a continuation of "The instruction was to": first line, first sentence, capitalised.

    >>> clean_instruction(' write the opposite of the word. Then stop.\\nInput: x')
    'Write the opposite of the word.'
    """
    text = text.strip().split("\n")[0].strip()
    if text.lower().startswith(INSTRUCTION_PREFIX.lower()):
        text = text[len(INSTRUCTION_PREFIX) :].strip()
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    text = (match.group(1) if match else text).strip(" \"'")
    return text[:1].upper() + text[1:] if text else ""


class InstructionGenerator:
    """The white-box side of INSTINCT: soft prompts, last-token features and instruction generation.

    Args:
        model: a causal LM (the embedded SmolLM2 by default in the CLI); put in eval mode here.
        tokenizer: its tokenizer.
        demos: the task's demonstration examples; `config.n_demos` of them are shown (a seeded subset).
        config: the pool / sampler settings.

    Example:
        >>> gen = InstructionGenerator(model, tokenizer, task.split()[0])  # doctest: +SKIP
        >>> H = gen.features(gen.Z[:8])  # (8, hidden)  # doctest: +SKIP
        >>> gen.generate(gen.Z[:2])  # doctest: +SKIP
        ['Write the opposite of the word.', 'Give the antonym.']
    """

    def __init__(self, model: Any, tokenizer: Any, demos: list[Example], config: CandidateConfig | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.config = config = config or CandidateConfig()
        rng = random.Random(config.seed)
        self.demos = rng.sample(list(demos), min(config.n_demos, len(demos)))
        self.Z = sobol_pool(config.pool_size, config.intrinsic_dim, config.seed)  # (N, d)
        embedding = model.get_input_embeddings().weight.detach()  # (V, hidden)
        self.hidden = embedding.shape[1]
        g = torch.Generator().manual_seed(config.seed)
        d, k = config.intrinsic_dim, config.n_prompt_tokens
        scale = config.soft_prompt_scale * 3.0 * float(embedding.float().std()) / d**0.5
        self.A = (torch.rand(k * self.hidden, d, generator=g, dtype=torch.float64) * 2 - 1) * scale  # (k*hidden, d)
        self.prefix_ids, self.suffix_ids = self._template_ids()  # (P,), (S,)
        self._prefix_cache: Any = None
        self._pool_features: Tensor | None = None
        self._generated: dict[tuple[float, ...], str] = {}  # z -> instruction: each candidate is generated once

    def soft_prompts(self, Z: Tensor) -> Tensor:
        """`(n, d)` points in [0, 1]^d -> `(n, n_prompt_tokens, hidden)` soft-token embeddings."""
        Z = torch.as_tensor(Z, dtype=torch.float64).reshape(-1, self.config.intrinsic_dim)
        P = (2 * Z - 1) @ self.A.T  # (n, k*hidden)
        return P.reshape(len(Z), self.config.n_prompt_tokens, self.hidden)

    @torch.no_grad()
    def features(self, Z: Tensor) -> Tensor:
        """Final-layer hidden state at the last input position, one forward pass per candidate.

        Args:
            Z: `(n, d)` candidates.

        Returns:
            `(n, hidden)` float32 features.
        """
        Z = torch.as_tensor(Z, dtype=torch.float64).reshape(-1, self.config.intrinsic_dim)
        chunks = [self._decode(self._soft_inputs(Z[s : s + self.config.batch_size]), 0)[0]
                  for s in range(0, len(Z), self.config.batch_size)]  # fmt: skip
        return torch.cat(chunks)

    def pool_features(self) -> Tensor:
        """`(pool_size, hidden)` features of the whole pool, computed on first use and kept."""
        if self._pool_features is None:
            self._pool_features = self.features(self.Z)
        return self._pool_features

    def generate(self, Z: Tensor) -> list[str]:
        """Greedy instructions for `(n, d)` candidates (batched; each distinct z is generated only once)."""
        keys = [tuple(z.tolist()) for z in torch.as_tensor(Z).reshape(-1, self.config.intrinsic_dim)]
        fresh = list(dict.fromkeys(k for k in keys if k not in self._generated))
        for start in range(0, len(fresh), self.config.batch_size):
            batch = fresh[start : start + self.config.batch_size]
            Z_new = torch.tensor(batch, dtype=torch.float64)  # (b, d)
            _, ids = self._decode(self._soft_inputs(Z_new), self.config.max_new_tokens)
            for key, text in zip(batch, self.tokenizer.batch_decode(ids, skip_special_tokens=True)):
                self._generated[key] = clean_instruction(text)
        return [self._generated[k] for k in keys]

    def cached_instruction(self, z: Tensor) -> str | None:
        """The instruction of candidate `z` (`(d,)`) if it was generated already, else None (never generates)."""
        return self._generated.get(tuple(torch.as_tensor(z).reshape(-1).tolist()))

    @torch.no_grad()
    def sample_ape(self, n: int, seed: int = 0) -> list[str]:
        """`n` APE-style instructions sampled at `config.ape_temperature` (duplicates possible)."""
        generator = torch.Generator().manual_seed(seed)
        texts: list[str] = []
        while len(texts) < n:
            b = min(self.config.batch_size, n - len(texts))
            embeds = self._embed(self.suffix_ids).unsqueeze(0).expand(b, -1, -1)  # (b, S, hidden)
            _, ids = self._decode(embeds, self.config.max_new_tokens, self.config.ape_temperature, generator)
            texts += [clean_instruction(t) for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return texts

    # ---- private ------------------------------------------------------------------------------------------------

    def _template_ids(self) -> tuple[Tensor, Tensor]:
        user = APE_TEMPLATE.format(demos=format_demos(self.demos))
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = user + "\n\n"
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        suffix = self.tokenizer(INSTRUCTION_PREFIX, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids), torch.tensor(suffix)

    def _embed(self, ids: Tensor) -> Tensor:
        return self.model.get_input_embeddings()(ids)

    def _soft_inputs(self, Z: Tensor) -> Tensor:
        soft = self.soft_prompts(Z).to(self.model.get_input_embeddings().weight.dtype)  # (b, k, hidden)
        suffix = self._embed(self.suffix_ids).unsqueeze(0).expand(len(soft), -1, -1)  # (b, S, hidden)
        return torch.cat([soft, suffix], dim=1)  # (b, k+S, hidden)

    @torch.no_grad()
    def _decode(
        self, embeds: Tensor, max_new_tokens: int, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[list[int]]]:
        """Runs `(b, L, hidden)` embeddings after the cached prefix; returns last-position features and new tokens."""
        if self._prefix_cache is None:  # the demos prefix is shared by every candidate: encode it once
            self._prefix_cache = self.model(input_ids=self.prefix_ids.unsqueeze(0), use_cache=True).past_key_values
        b, P = len(embeds), len(self.prefix_ids)
        cache = copy.deepcopy(self._prefix_cache)
        cache.batch_repeat_interleave(b)
        mask = torch.ones(b, P + embeds.shape[1], dtype=torch.long)
        out = self.model(
            inputs_embeds=embeds, attention_mask=mask, past_key_values=cache, use_cache=True, output_hidden_states=True
        )
        features = out.hidden_states[-1][:, -1, :].float()  # (b, hidden)
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}
        tokens: list[list[int]] = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool)
        for _ in range(max_new_tokens):
            logits = out.logits[:, -1, :].float()  # (b, V)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (b,)
            else:
                nxt = logits.argmax(-1)  # (b,)
            for i, t in enumerate(nxt.tolist()):
                if not done[i]:
                    done[i] = t in eos
                    if not done[i]:
                        tokens[i].append(t)
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], dim=1)
            out = self.model(input_ids=nxt.unsqueeze(-1), attention_mask=mask, past_key_values=out.past_key_values,
                             use_cache=True)  # fmt: skip
        return features, tokens
