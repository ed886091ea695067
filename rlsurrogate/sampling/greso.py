"""GRESO: skip, before generating, the prompts whose groups were zero-variance in their recent appearances.

Zheng et al., "Act Only When It Pays: Efficient Reinforcement Learning for LLM Reasoning via Selective Rollouts"
(2025, arXiv 2506.02177): a prompt that gave a zero-variance group is likely to give one again (temporal
consistency), so GRESO skips it before rollout with a probability that grows with its run of zero-variance
appearances, and keeps a chance of retrying it as the policy moves. With z_i the number of consecutive most recent
appearances of prompt i whose group was flat, and the kind of the last one (easy: every completion passed; hard:
none did), prompt i is generated with probability

    P(generate i) = p_easy^z_i  or  p_hard^z_i,                                                        (1)

and after each generation each exploration probability moves by `step` toward keeping the share of flat groups of
that kind at its target:

    p_kind <- clip(p_kind - step, p_min, 1)  if share_kind > target_kind,  else clip(p_kind + step, p_min, 1).   (2)

Each round draws prompts from the sampler's seeded stream and keeps each with probability (1) until it holds the
round's prompts (at most `scan_factor` x as many draws; then the rest are taken without skipping). Dynamic sampling
(DAPO) runs on top by default, as in the paper: flat groups are dropped and refilled, up to `max_rounds`.

Deviations: flat groups are classified by their (common) trained reward, easy when >= `easy_reward`, so any reward
type works; the defaults (`p_init`, `step`, `p_min`, the targets) are this module's choices, not checked against the
official code; a round's batch is sized by the seam's keep rate instead of GRESO's adaptive batch size.

Metrics: `sampling/skipped` (draws skipped this generation), `sampling/p_easy`, `sampling/p_hard`.

Checked: skip probabilities and their adaptation on hand-made sequences, checkpoint round trip, 2-process agreement
(tests/sampling); on a synthetic world (scripts/bench_pass_rate.py) only. GRESO's speed-ups are not reproduced here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling.base import Sampler, SamplingContext, check_max_rounds, has_signal, sampler_config

__all__ = ["GRESOConfig", "GRESOSampling", "adapt_probability", "generate_probability"]


@dataclass
class GRESOConfig:
    p_init: float = field(
        default=0.5, metadata={"help": "Initial exploration probabilities p_easy and p_hard (Eq. 1)."}
    )
    step: float = field(
        default=0.01, metadata={"help": "Change of an exploration probability per generation (Eq. 2)."}
    )
    p_min: float = field(
        default=0.05, metadata={"help": "Lowest exploration probability: no prompt is skipped forever."}
    )
    target_easy: float = field(default=0.15, metadata={"help": "Target share of flat groups that all passed (Eq. 2)."})
    target_hard: float = field(default=0.10, metadata={"help": "Target share of flat groups that all failed (Eq. 2)."})
    easy_reward: float = field(default=0.5, metadata={"help": "A flat group is easy when its reward >= this."})
    scan_factor: int = field(default=10, metadata={"help": "Stream draws per round's prompt at most before no skip."})
    filter: bool = field(
        default=True, metadata={"help": "Also drop zero-variance groups and refill (DAPO), as GRESO."}
    )
    max_rounds: int = field(default=10, metadata={"help": "With filter: rounds per step (verl's DAPO recipe: 10)."})

    def __post_init__(self) -> None:
        problems = []
        for name in ("p_init", "step", "p_min", "target_easy", "target_hard"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                problems.append(f"sampling.params.{name} = {value!r}: must be a number in [0, 1].")
        if isinstance(self.easy_reward, bool) or not isinstance(self.easy_reward, int | float):
            problems.append(f"sampling.params.easy_reward = {self.easy_reward!r}: must be a number; 0.5 for 0/1.")
        if isinstance(self.scan_factor, bool) or not isinstance(self.scan_factor, int) or not 1 <= self.scan_factor:
            problems.append(f"sampling.params.scan_factor = {self.scan_factor!r}: must be a whole number >= 1.")
        if not isinstance(self.filter, bool):
            problems.append(f"sampling.params.filter = {self.filter!r}: must be true or false.")
        problems += check_max_rounds(self.max_rounds, "sampling.params.max_rounds", "verl's DAPO recipe uses 10")
        if problems:
            raise ConfigError(problems)


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def generate_probability(flat_run: int, kind: str, p_easy: float, p_hard: float) -> float:
    """Eq. 1: the probability of generating a prompt whose last `flat_run` appearances were flat, the last `kind`."""
    if flat_run == 0:
        return 1.0
    return (p_easy if kind == "easy" else p_hard) ** flat_run


def adapt_probability(p: float, share: float, target: float, step: float, p_min: float) -> float:
    """Eq. 2: p one `step` down when the kind's flat share is above its target, else one up, within [p_min, 1]."""
    return min(1.0, max(p_min, p - step if share > target else p + step))


# ---------------------------------------------------------------------------------------------------------------
# the sampler


class GRESOSampling(Sampler):
    """Draws prompts from the seeded stream, skipping recently flat ones with the probability of Eq. 1."""

    name = "greso"
    needs_dataset = True

    def __init__(self, **params: Any):
        super().__init__()
        self.config = sampler_config(GRESOConfig, "greso", params)
        self.filters = self.config.filter
        self.max_rounds = self.config.max_rounds if self.config.filter else 1
        self.p_easy = self.p_hard = float(self.config.p_init)
        self.history: dict[int, tuple[int, str]] = {}  # index -> (z_i: flat run, kind of the last flat group)
        self.calls = 0
        self._counts = {"groups": 0, "easy": 0, "hard": 0, "skipped": 0}

    def propose(self, ctx: SamplingContext, round_index: int, num_prompts: int) -> list[int]:
        assert self.stream is not None, "bind() runs before training"
        if round_index == 0:
            self._adapt()
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + self.calls)
        self.calls += 1
        chosen: list[int] = []
        for _ in range(self.config.scan_factor * num_prompts):
            if len(chosen) == num_prompts:
                break
            (index,) = self.stream.draw(1)
            z, kind = self.history.get(index, (0, "easy"))
            if float(torch.rand(1, generator=generator, dtype=torch.float64)) < generate_probability(
                z, kind, self.p_easy, self.p_hard
            ):
                chosen.append(index)
            else:
                self._counts["skipped"] += 1
        return chosen + self.stream.draw(num_prompts - len(chosen))

    def observe(
        self,
        ctx: SamplingContext,
        indices: list[int] | None,
        variances: torch.Tensor,
        rewards: torch.Tensor | None = None,
    ) -> None:
        assert indices is not None and rewards is not None
        signal = has_signal(variances).tolist()
        level = torch.nanmean(rewards.double(), dim=1).tolist()  # (P,) a flat group's common reward
        for index, ok, value, v in zip(indices, signal, level, variances.tolist(), strict=True):
            if v != v:  # NaN: nobody scored this group
                continue
            self._counts["groups"] += 1
            if ok:
                self.history[index] = (0, "easy")
                continue
            kind = "easy" if value >= self.config.easy_reward else "hard"
            self._counts[kind] += 1
            z, _ = self.history.get(index, (0, kind))
            self.history[index] = (z + 1, kind)

    def round_metrics(self) -> dict[str, float]:
        return {"sampling/skipped": float(self._counts["skipped"]), "sampling/p_easy": self.p_easy} | {
            "sampling/p_hard": self.p_hard
        }

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        state, tensors = super().state_dict()
        state |= {
            "p_easy": self.p_easy,
            "p_hard": self.p_hard,
            "calls": self.calls,
            "counts": dict(self._counts),
            "history": [[i, z, kind] for i, (z, kind) in self.history.items()],
        }
        return state, tensors

    def load_state_dict(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state, tensors)
        self.p_easy, self.p_hard, self.calls = float(state["p_easy"]), float(state["p_hard"]), int(state["calls"])
        self._counts = {k: int(v) for k, v in state["counts"].items()}
        self.history = {int(i): (int(z), str(kind)) for i, z, kind in state["history"]}

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _adapt(self) -> None:
        """Eq. 2 from the last generation's flat shares, then fresh counts for this one."""
        c, cfg = self._counts, self.config
        if c["groups"]:
            self.p_easy = adapt_probability(self.p_easy, c["easy"] / c["groups"], cfg.target_easy, cfg.step, cfg.p_min)
            self.p_hard = adapt_probability(self.p_hard, c["hard"] / c["groups"], cfg.target_hard, cfg.step, cfg.p_min)
        self._counts = {"groups": 0, "easy": 0, "hard": 0, "skipped": 0}
