"""Synthetic candidate pools: a hidden score function of the features plus noise, for measuring pool optimizers.

A synthetic pool stands in for the instruction x exemplar pool of a real task, with no language model anywhere, so
an optimizer can be run over hundreds of seeds in seconds and scored against the truth:

    latents   a(c) ~ N(0, I_k) (the score depends on these),  b(c) ~ N(0, I_m) (nuisance, larger variance),
    features  h(c) = o + s * (a(c) A + nuisance_scale * b(c) B + noise * e(c)),  e(c) ~ N(0, I_hidden),
    score     q(c) = 0.05 + 0.9 * sigmoid(sharpness * (u(c) - u_top)),  u(c) = a(c) . w + a_1(c) a_2(c) / 2,

with o a large common offset and s a per-coordinate scale (LLM hidden states have both), A, B random mixing
matrices, and u_top the pool's (1 - top_share) quantile of u, so a `top_share` of the candidates scores above 0.5
and the rest near 0.05. The black box (`SyntheticBlackBox`) answers one validation input right with probability
q(c), deterministically per (pool seed, prompt, input) like a greedy model: one query's score is a binomial mean
over the validation split, q(c) plus sampling noise.

The pool is an `ExemplarPromptPool` (prompts "candidate 17", no demos), so every optimizer uses it through the
same interface as a real one (`instinct.search_pool`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.clients import Completion, Usage
from rlsurrogate.prompt_opt.exemplars import ExemplarConfig, ExemplarPromptPool
from rlsurrogate.prompt_opt.tasks import Example, Task

__all__ = ["SyntheticPoolConfig", "SyntheticPool", "SyntheticBlackBox", "make_synthetic_pool"]


@dataclass
class SyntheticPoolConfig:
    """Knobs of a synthetic pool (defaults: the embedded 135M model's feature width, a 10 % top share)."""

    size: int = field(default=400, metadata={"help": "Candidates in the pool."})
    hidden: int = field(default=576, metadata={"help": "Feature width (SmolLM2-135M's hidden size)."})
    signal_dims: int = field(default=4, metadata={"help": "Latent directions the hidden score depends on."})
    nuisance_dims: int = field(default=16, metadata={"help": "Latent directions it does not depend on."})
    nuisance_scale: float = field(default=1.5, metadata={"help": "Std of the nuisance latents (signal: 1)."})
    noise: float = field(default=0.5, metadata={"help": "Std of the isotropic feature noise."})
    top_share: float = field(default=0.1, metadata={"help": "Share of candidates scoring above 0.5."})
    sharpness: float = field(default=3.0, metadata={"help": "Slope of the sigmoid from latent utility to score."})
    n_val: int = field(default=8, metadata={"help": "Validation inputs: calls per query."})
    seed: int = field(default=0, metadata={"help": "Seed of the pool, its score function and the black box."})

    def __post_init__(self) -> None:
        problems = []
        if min(self.size, self.hidden, self.signal_dims, self.n_val) < 2 or self.nuisance_dims < 0:
            problems.append(
                f"synthetic size = {self.size}, hidden = {self.hidden}, signal_dims = {self.signal_dims}, n_val = "
                f"{self.n_val}: each must be >= 2 (nuisance_dims = {self.nuisance_dims} >= 0)."
            )
        if not 0 < self.top_share < 1:
            problems.append(f"synthetic top_share = {self.top_share}: must be in (0, 1).")
        if min(self.noise, self.nuisance_scale) < 0 or self.sharpness <= 0:
            problems.append("synthetic noise and nuisance_scale must be >= 0 and sharpness > 0.")
        if problems:
            raise ConfigError(problems)


@dataclass
class SyntheticPool:
    """A pool, its task and black box, and the truth: `scores[prompt]` and the `top` prompts (top_share of them)."""

    pool: ExemplarPromptPool
    task: Task
    client: SyntheticBlackBox
    scores: dict[str, float]
    top: set[str]
    config: SyntheticPoolConfig


class SyntheticBlackBox:
    """A `ChatClient` answering "yes" (right) with probability q(prompt), deterministic per request."""

    name = "synthetic"

    def __init__(self, scores: dict[str, float], seed: int):
        self.scores, self.seed, self.usage = scores, seed, Usage()

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None) -> list[Completion]:
        out = []
        for i, messages in enumerate(requests):
            text = messages[-1]["content"]  # EVAL_TEMPLATE: "Instruction: {prompt}\n\nInput: {input}\nOutput:"
            prompt, query = text.removeprefix("Instruction: ").rsplit("\n\nInput: ", 1)
            draw = random.Random(f"{self.seed}|{prompt}|{query}").random()
            c = Completion("yes" if draw < self.scores[prompt] else "no", 8, 1)
            self.usage.record(c)
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


def make_synthetic_pool(config: SyntheticPoolConfig | None = None) -> SyntheticPool:
    """Builds the pool, the hidden scores and the black box of the module docstring from `config.seed`.

    Example:
        >>> synthetic = make_synthetic_pool(SyntheticPoolConfig(size=50, seed=1))
        >>> len(synthetic.pool.prompts), len(synthetic.top)
        (50, 5)
    """
    c = config or SyntheticPoolConfig()
    g = torch.Generator().manual_seed(c.seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    a, b = randn(c.size, c.signal_dims), randn(c.size, c.nuisance_dims) * c.nuisance_scale
    A, B = randn(c.signal_dims, c.hidden), randn(c.nuisance_dims, c.hidden)
    offset, scale = 10.0 * randn(c.hidden), randn(c.hidden).exp()
    H = offset + scale * (a @ A + b @ B + c.noise * randn(c.size, c.hidden))  # (N, hidden)
    w = randn(c.signal_dims)
    u = a @ (w / w.norm()) + a[:, 0] * a[:, 1] / 2  # (N,)
    u_top = torch.quantile(u, 1 - c.top_share)
    q = 0.05 + 0.9 * torch.sigmoid(c.sharpness * (u - u_top))  # (N,)

    names = [f"candidate {i}" for i in range(c.size)]
    row = {name: i for i, name in enumerate(names)}
    pool = ExemplarPromptPool(
        names, [], lambda prompts: H[[row[p] for p in prompts]], ExemplarConfig(pool_size=c.size, max_demos=0)
    )
    scores = {name: float(q[i]) for i, name in enumerate(names)}
    n_top = max(1, round(c.top_share * c.size))
    top = {names[i] for i in q.argsort(descending=True)[:n_top].tolist()}
    examples = [Example(f"q{i}", "yes") for i in range(c.n_val + 1)]
    task = Task(f"synthetic-{c.seed}", examples, metric="exact_match", n_demo=1, n_val=c.n_val)
    return SyntheticPool(pool, task, SyntheticBlackBox(scores, c.seed), scores, top, c)
