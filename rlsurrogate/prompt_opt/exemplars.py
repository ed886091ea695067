"""Instruction x exemplar candidates: a pool of prompts (an instruction plus k demonstrations) for the neural bandit.

A small white box writes poor instructions (the embedded 135M model mostly writes "Provide a list of inputs that
could be used to create a list of outputs."), and a small black box follows a bare instruction poorly; both gain from
seeing a few input/output demonstrations in the prompt. EASE (Wu, Lin, Dai, Ng, Low; "Prompt Optimization with EASE?
Efficient Ordering-aware Automated Selection of Exemplars", NeurIPS 2024, arXiv 2405.16122) selects exemplars with the
same NeuralUCB as INSTINCT, scoring each candidate by a white-box embedding of the whole prompt; MIPROv2 (Opsahl-Ong
et al. 2024, arXiv 2406.11695) searches instructions and demo sets jointly. This module builds that joint space:

    candidate c = (instruction i, ordered demos D, |D| = k in [0, max_demos])
    prompt(c)   = i + "\\n\\n" + "Input: x_1\\nOutput: y_1\\n\\n...Input: x_k\\nOutput: y_k"
    h(c)        = last-token final-layer hidden state of the white box on "Instruction: " + prompt(c)

The prompt is an ordinary instruction string for `InstructionEvaluator`: the evaluation template
"Instruction: {prompt}\\n\\nInput: {input}\\nOutput:" then shows the demos right before the query, so the query log,
the cache, the budget and the duplicate rule apply unchanged, and every method is charged the same per call.

`Z` (what GP-BO models) is the first `intrinsic_dim` principal components of the standardised features, scaled to
[0, 1]^d: INSTINCT's surrogate sees h, GP-BO the low-dimensional summary of the same h.

Deviations from EASE: candidates are a seeded random sample of (instruction, demo sequence) pairs instead of
permutations of one exemplar set; EASE's optimal-transport filtering of the pool is not implemented.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    from rlsurrogate.prompt_opt.tasks import Example

__all__ = ["ExemplarConfig", "ExemplarPromptPool", "compose_prompt"]


@dataclass
class ExemplarConfig:
    """Knobs of the instruction x exemplar pool."""

    pool_size: int = field(default=128, metadata={"help": "Candidates (instruction, demo sequence) in the pool."})
    max_demos: int = field(default=4, metadata={"help": "Largest k; k is uniform in [0, max_demos] (MIPROv2: 4)."})
    intrinsic_dim: int = field(default=10, metadata={"help": "Principal components in Z, GP-BO's inputs (ours)."})
    seed: int = field(default=0, metadata={"help": "Seed of the pairs and demo sequences drawn."})

    def __post_init__(self) -> None:
        problems = []
        if self.pool_size < 1 or self.intrinsic_dim < 1:
            problems.append(
                f"exemplars.pool_size = {self.pool_size}, intrinsic_dim = {self.intrinsic_dim}: both must be >= 1."
            )
        if self.max_demos < 0:
            problems.append(f"exemplars.max_demos = {self.max_demos}: must be >= 0 (0 = instructions only).")
        if problems:
            raise ConfigError(problems)


def compose_prompt(instruction: str, demos: list[Example]) -> str:
    """The candidate's prompt: the instruction, then the demos in the evaluation template's own format.

    >>> from rlsurrogate.prompt_opt.tasks import Example
    >>> compose_prompt("Say the opposite.", [Example("hot", "cold")])
    'Say the opposite.\\n\\nInput: hot\\nOutput: cold'
    """
    blocks = [f"Input: {e.input}\nOutput: {e.output}" for e in demos]
    return "\n\n".join([instruction, *blocks])


class ExemplarPromptPool:
    """A fixed pool of (instruction, demos) prompts with white-box features, queried like INSTINCT's pool.

    It has the interface `instinct.optimize` uses of a candidate generator: `Z` `(N, d)` in [0, 1]^d,
    `generate(Z_rows) -> prompts`, `cached_instruction(z)` and `pool_features()` `(N, hidden)`.

    Args:
        instructions: distinct candidate instructions (e.g. INSTINCT's soft-prompt pool and APE samples).
        demos: the examples demonstrations are drawn from (the task's train / demo split, never validation).
        featurize: prompt texts -> `(n, hidden)` features (`reward.InstructionFeaturizer` of the white box).
        config: pool size, k, d and seed.

    Example:
        >>> featurize = InstructionFeaturizer(model, tokenizer)  # doctest: +SKIP
        >>> pool = ExemplarPromptPool(instructions, task.split()[0], featurize)  # doctest: +SKIP
        >>> result = optimize("instinct", evaluator, pool, config)  # doctest: +SKIP
    """

    def __init__(
        self,
        instructions: list[str],
        demos: list[Example],
        featurize: Callable[[list[str]], Tensor],
        config: ExemplarConfig | None = None,
    ):
        self.config = config = config or ExemplarConfig()
        instructions = list(dict.fromkeys(instructions))
        if not instructions:
            raise ConfigError("the exemplar pool needs at least one instruction (got none).")
        if config.max_demos > len(demos):
            raise ConfigError(
                f"exemplars.max_demos = {config.max_demos} but only {len(demos)} demo examples: lower max_demos."
            )
        self.instructions, self.demos, self.featurize = instructions, list(demos), featurize
        rng = random.Random(config.seed)
        prompts: dict[str, None] = {}
        for _ in range(config.pool_size * 20):  # distinct prompts; small spaces (few instructions, k = 0) end early
            k = rng.randint(0, config.max_demos)
            prompts[compose_prompt(rng.choice(instructions), rng.sample(self.demos, k))] = None
            if len(prompts) == config.pool_size:
                break
        self.prompts = list(prompts)  # N distinct prompts
        self._features: Tensor | None = None
        self._Z: Tensor | None = None
        self._by_z: dict[tuple[float, ...], str] = {}

    @property
    def Z(self) -> Tensor:  # noqa: N802 - the paper's symbol
        """`(N, d)` the pool in [0, 1]^d: principal components of the features, min-max scaled."""
        if self._Z is None:
            H = self.pool_features().double()  # (N, hidden)
            H = (H - H.mean(0)) / H.std(0).clamp_min(1e-6) if len(H) > 1 else H * 0
            d = min(self.config.intrinsic_dim, len(H), H.shape[1])
            U, S, _ = torch.linalg.svd(H, full_matrices=False)
            P = U[:, :d] * S[:d]  # (N, d)
            span = (P.max(0).values - P.min(0).values).clamp_min(1e-12)
            self._Z = (P - P.min(0).values) / span  # (N, d)
            self._by_z = {tuple(z.tolist()): p for z, p in zip(self._Z, self.prompts)}
        return self._Z

    def pool_features(self) -> Tensor:
        """`(N, hidden)` white-box features of the prompts, computed on first use and kept."""
        if self._features is None:
            self._features = self.featurize(self.prompts).float()
        return self._features

    def generate(self, Z: Tensor) -> list[str]:
        """The prompts of `(n, d)` rows of `Z` (each candidate's prompt is fixed: nothing is generated)."""
        self.Z  # noqa: B018 - builds the lookup
        return [self._by_z[tuple(z.tolist())] for z in torch.as_tensor(Z).reshape(-1, self.Z.shape[1])]

    def cached_instruction(self, z: Tensor) -> str | None:
        """The prompt of one row `z` `(d,)` of `Z`."""
        return self._by_z.get(tuple(torch.as_tensor(z).reshape(-1).tolist()))
