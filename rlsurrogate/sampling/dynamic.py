"""Dynamic sampling: drop groups whose trained reward has zero variance and refill with fresh prompts (DAPO).

Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at Scale" (2025, arXiv 2503.14476), §3.2 and
Eq. 11: a group whose G rewards are all equal has zero advantage for every completion, so it contributes no policy
gradient while still diluting the batch. DAPO over-samples and keeps only groups with
`0 < |{o_i : is_equivalent(a, o_i)}| < G`, i.e. with non-zero reward variance, refilling until the batch is full
(verl's `algorithm.filter_groups`, up to `max_num_gen_batches` generation batches).

Here: round 0 is TRL's own batch; each further round generates fresh prompts from the sampler's seeded stream,
sized by the run's keep rate, until every process holds its share of groups with signal or `max_rounds` rounds
have run (then the step trains on the groups with signal it has; see `rlsurrogate.sampling.base` and `.batch`).

Deviations from verl's implementation:
- Signal is the within-group variance of the trained reward (the weighted sum TRL turns into advantages, any reward
  type), not equality of a 0/1 accuracy; NaN (a group nobody scored) counts as no signal.
- Refill rounds generate only what the largest per-process deficit needs (deficit / keep rate, at most a full
  batch), not a full generation batch; verl generates `gen_prompt_bsz` prompts every round.
- When the rounds run out, verl stops with an error (or continues without a cap); we train on the groups with signal
  and keep filler out of the loss (`sampling/short`).
- Each process fills its own share; signal groups beyond a share are discarded (`sampling/groups_discarded`).

Checked: drops exactly the zero-variance groups and keeps process agreement (tests/sampling, 2 gloo processes);
the loss of the kept groups is unchanged by the filler (every TRL loss type). DAPO's accuracy gains are not
reproduced here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling.base import Sampler, SamplingContext, check_max_rounds, sampler_config

__all__ = ["DynamicConfig", "DynamicSampling"]


@dataclass
class DynamicConfig:
    max_rounds: int = field(
        default=10,
        metadata={"help": "Generation rounds per step at most (verl's DAPO recipe: max_num_gen_batches = 10)."},
    )

    def __post_init__(self) -> None:
        problems = check_max_rounds(self.max_rounds, "sampling.params.max_rounds", "verl's DAPO recipe uses 10")
        if problems:
            raise ConfigError(problems)


class DynamicSampling(Sampler):
    """DAPO's dynamic sampling: round 0 is TRL's batch; refills come from a seeded stream over the dataset."""

    name = "dynamic"
    filters = True
    needs_dataset = True

    def __init__(self, **params: Any):
        super().__init__()
        self.config = sampler_config(DynamicConfig, "dynamic", params)
        self.max_rounds = self.config.max_rounds

    def propose(self, ctx: SamplingContext, round_index: int, num_prompts: int) -> list[int] | None:
        if round_index == 0:
            return None
        assert self.stream is not None, "bind() runs before training"
        return self.stream.draw(num_prompts)
