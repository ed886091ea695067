"""The sampling seam: which prompts each generation uses, and which generated groups the step trains on.

A sampler runs one *generation* of RLTrainer (TRL 1.16 generates once every `steps_per_generation` micro-batches)
as up to `max_rounds` *rounds*. Each round asks the sampler for prompts (`propose`), generates and scores G
completions for each through TRL's own `_generate_and_score_completions`, and tells the sampler each completion's
trained reward and each group's within-group variance (`observe`). A filtering sampler keeps only groups with signal
(variance > 0) and refills until every process holds its share of groups or the rounds run out. `uniform` is one
round of TRL's own batch, unchanged; `dynamic` (DAPO's group filter), `greso` (skips prompts that were flat lately),
`predictive` (a GP predicts the variance) and `pass_rate` / `mopps` (a Beta posterior on each prompt's pass rate)
live beside this file.

Design (what makes the result exact and every process agree):
- **Agreement.** Every decision is a function of what every process holds identically: the rewards TRL gathers
  across processes (`ScoredBatch.rewards_per_func`), the sampler's own state and a seeded stream of dataset
  indices. Generation and the gathers inside it are collective, so every process runs the same number of rounds
  with the same number of prompts; the round count and each round's size come from the gathered rewards.
- **Whole groups per process.** TRL places a prompt's G completions next to each other and splits the generation
  batch across processes; a filtering sampler needs each process's share (`per_device_train_batch_size x
  steps_per_generation`) to be a multiple of G (checked before training). Each process keeps its own groups with
  signal, in round order, up to its share; no completion moves between processes. Signal groups beyond a
  process's share are discarded (`sampling/groups_discarded`); refill rounds are sized by the run's keep rate so
  that few are.
- **Fresh prompts** come from `PromptStream`, a seeded permutation of the train dataset's indices that is
  separate from TRL's sampler, identical on every process, and saved with checkpoints (`rlsurrogate.sampling.state`).
- **max_rounds exhausted.** A process short of signal groups fills the rest of its share with dropped groups whose
  loss mask is zero ("filler"): they carry no loss tokens, zero advantages and NaN rewards for the objective, and the
  loss is renormalised so that neither they nor the dropped groups enter its normalisation
  (`rlsurrogate.sampling.batch`). With no signal anywhere, the step's policy gradient is zero, as in TRL when every
  group is flat. Logged as `sampling/short`.
- **steps_per_generation > gradient_accumulation_steps** needs nothing special: the assembled generation batch has
  TRL's size, TRL shuffles and splits it into micro-batches, and the loss correction is one constant per generation.
- **Advantages** are TRL's, computed in the round a group was generated: group-normalised advantages do not depend
  on other groups. Deviation: with `scale_rewards: batch` (or `multi_objective_aggregation: normalize_then_sum`)
  the batch statistics are those of the group's round, dropped groups included.

Metrics, once per generation, identical on every process:
- `sampling/rounds`: generation rounds used; `sampling/prompts_generated`: groups generated (all processes).
- `sampling/completion_tokens`: completion tokens generated in all rounds (all processes).
- `sampling/groups_kept`: trained groups with signal; `sampling/groups_discarded`: signal groups beyond a share.
- `sampling/zero_var_share_before`, `_after`: share of zero-variance groups among all generated groups, and among
  the trained groups (filler counts as zero-variance).
- `sampling/short`: 1 when the rounds ran out before every process had its share.
- `sampling/reward_generated`, `sampling/reward_trained`: mean trained reward over every generated completion,
  and over the completions the step trains on.
- `sampling/overhead_s`: seconds spent in the sampler (everything but generation and scoring).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch

from rlsurrogate.diagnostics.reward_variance import FLAT_ATOL, group_rewards, within_group_variance
from rlsurrogate.errors import ConfigError, UnsupportedError
from rlsurrogate.sampling.batch import assemble

if TYPE_CHECKING:
    from rlsurrogate.objectives.base import ScoredBatch

__all__ = [
    "PromptStream",
    "Round",
    "Sampled",
    "Sampler",
    "SamplingContext",
    "check_max_rounds",
    "group_variance",
    "has_signal",
    "sampler_config",
    "total_reward",
]

C = TypeVar("C")


class SamplingContext(Protocol):
    """What a sampler may ask of the trainer (RLTrainer implements it; tests use small stand-ins)."""

    num_processes: int
    process_index: int
    num_generations: int
    steps_per_generation: int
    pad_token_id: int
    seed: int

    def generate(self, inputs: list[dict[str, Any]]) -> Round:
        """Generates and scores `inputs` (this process's rows, G per prompt) through TRL; collective."""
        ...

    def dataset_size(self) -> int:
        """Rows of the train dataset."""
        ...

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Rows of the train dataset."""
        ...

    def prompt_features(self, indices: Sequence[int], layer: int) -> torch.Tensor:
        """`(n, D)` float32 CPU features of the rows' prompts, identical on every process; collective."""
        ...

    def sum_over_processes(self, value: float) -> float:
        """The sum of a number over every process; collective."""
        ...

    def broadcast(self, value: list[int]) -> list[int]:
        """Process 0's list on every process; collective."""
        ...


@dataclass
class Round:
    """One round: TRL's local batch for this process, the scored batch (gathered rewards), tokens generated."""

    batch: dict[str, Any]
    scored: ScoredBatch
    tokens: int


@dataclass
class Sampled:
    """A generation's result: the local batch to train on, its ScoredBatch for the objective, the metrics."""

    batch: dict[str, Any]
    scored: ScoredBatch
    metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def total_reward(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """`(N,)` trained reward: the weighted sum TRL 1.16 turns into advantages; NaN where every reward is None.

    Args:
        rewards_per_func: `(N, F)` rewards, NaN where a reward returned None.
        weights: `(F,)` reward weights.
    """
    r = rewards_per_func.detach().to("cpu", torch.float64)
    total = (r * weights.detach().to("cpu", torch.float64)).nansum(dim=1)  # (N,)
    return torch.where(torch.isnan(r).all(dim=1), torch.nan, total)


def group_variance(scored: ScoredBatch) -> torch.Tensor:
    """`(N / G,)` within-group variance (1/(G-1)) of the trained reward of each group of a scored batch."""
    total = total_reward(scored.rewards_per_func, scored.reward_weights)
    return within_group_variance(group_rewards(total, scored.num_generations))


def has_signal(variances: torch.Tensor, atol: float = FLAT_ATOL) -> torch.Tensor:
    """`(P,)` True where a group's variance is defined and above `atol` (the diagnostics' definition of flat)."""
    return ~torch.isnan(variances) & (variances > atol)


def sampler_config(config_cls: Callable[..., C], sampler: str, params: dict[str, Any]) -> C:
    """`config_cls(**params)`, with one ConfigError line per parameter the config does not have."""
    known = {f.name for f in fields(config_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - known)
    if unknown:
        valid = ", ".join(sorted(known)) or "none (this sampler has no settings)"
        raise ConfigError([f"sampling.params.{k}: unknown for {sampler}. Valid: {valid}." for k in unknown])
    return config_cls(**params)


def check_max_rounds(value: Any, where: str, hint: str) -> list[str]:
    """One problem line unless `value` is a whole number of rounds in [1, 1000]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        return [f"{where} = {value!r}: must be a whole number of generation rounds in [1, 1000]; {hint}."]
    return []


class PromptStream:
    """A seeded, resumable stream of train-dataset indices: epoch e is permutation e of `range(n)`.

    Identical on every process (same seed, same calls), independent of TRL's own sampler.

    Example:
        >>> stream = PromptStream(5, seed=0)
        >>> first = stream.draw(3); again = PromptStream(5, seed=0)
        >>> again.load_state_dict(stream.state_dict()); stream.draw(4) == again.draw(4)
        True
    """

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ConfigError(f"the train dataset has {n} rows; sampling needs at least one.")
        self.n, self.seed = n, seed
        self.epoch, self.position = 0, 0
        self._perm: list[int] | None = None

    def draw(self, k: int) -> list[int]:
        """The next `k` indices (crossing into the next epoch's permutation when one runs out)."""
        out: list[int] = []
        while len(out) < k:
            perm = self._permutation()
            take = min(k - len(out), self.n - self.position)
            out += perm[self.position : self.position + take]
            self.position += take
            if self.position == self.n:
                self.epoch, self.position, self._perm = self.epoch + 1, 0, None
        return out

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("n") != self.n:
            raise ConfigError(
                f"sampler state: saved for a dataset of {state.get('n')} rows, this run has {self.n}; resume with "
                "the same data, or start a new output_dir."
            )
        self.seed, self.epoch, self.position, self._perm = state["seed"], state["epoch"], state["position"], None

    def _permutation(self) -> list[int]:
        if self._perm is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(self.n, generator=generator).tolist()
        return self._perm


# ---------------------------------------------------------------------------------------------------------------
# the sampler


class Sampler:
    """Base class: one round of TRL's own batch, nothing dropped (the `uniform` behaviour).

    Subclasses override `propose` (which prompts), `observe` (what was seen), and set `filters` (drop groups
    without signal and refill) and `max_rounds`.
    """

    name: str = "sampler"
    filters: bool = False
    max_rounds: int = 1
    needs_dataset: bool = False  # draws rows by index (refills, candidate pools): the dataset must be indexable

    def __init__(self) -> None:
        self.stream: PromptStream | None = None
        self.generated_groups = 0  # over the run: groups generated and groups with signal (sizes refill rounds)
        self.signal_groups = 0

    def check(self, training_value: Any, num_processes: int, num_generations: int) -> list[str]:
        """Problems of a run for this sampler, one line each (a filtering sampler needs whole groups per process)."""
        if not self.filters:
            return []
        per_device = training_value("per_device_train_batch_size")
        per_generation = training_value("steps_per_generation") or training_value("gradient_accumulation_steps")
        local = per_device * per_generation
        if local % num_generations:
            return [
                f"sampling.name = {self.name}: each process generates per_device_train_batch_size x "
                f"steps_per_generation = {per_device} x {per_generation} = {local} completions, not a multiple of "
                f"num_generations {num_generations}; the sampler keeps or drops whole groups on each process, so make "
                f"per_device_train_batch_size x steps_per_generation a multiple of {num_generations}."
            ]
        return []

    def bind(self, ctx: SamplingContext) -> None:
        """Called once by the trainer before training: the dataset's size seeds the prompt stream."""
        if self.needs_dataset:
            self.stream = PromptStream(ctx.dataset_size(), ctx.seed)

    def propose(self, ctx: SamplingContext, round_index: int, num_prompts: int) -> list[int] | None:
        """Dataset indices of the round's `num_prompts` prompts (all processes, in process order); None: the
        trainer's own batch (round 0 only)."""
        return None

    def observe(
        self,
        ctx: SamplingContext,
        indices: list[int] | None,
        variances: torch.Tensor,
        rewards: torch.Tensor | None = None,
    ) -> None:
        """What the round's groups scored, for the proposed indices (None: TRL's own batch).

        Args:
            variances: `(num_prompts,)` within-group variance of the trained reward (NaN: nobody scored the group).
            rewards: `(num_prompts, G)` the trained reward of each completion (NaN where every reward is None).
        """

    def round_metrics(self) -> dict[str, float]:
        """Sampler-specific metrics of the last generation."""
        return {}

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(JSON-able state, tensors) to save with a checkpoint."""
        state: dict[str, Any] = {"name": self.name, "generated": self.generated_groups, "signal": self.signal_groups}
        if self.stream is not None:
            state["stream"] = self.stream.state_dict()
        return state, {}

    def load_state_dict(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(
                f"sampler state: saved by sampler {state.get('name')!r}, this run uses {self.name!r}; resume with "
                "the same sampling section, or start a new output_dir."
            )
        self.generated_groups, self.signal_groups = int(state["generated"]), int(state["signal"])
        if self.stream is not None and "stream" in state:
            self.stream.load_state_dict(state["stream"])

    # -- the round loop ------------------------------------------------------------------------------------------

    def sample(self, ctx: SamplingContext, inputs: list[dict[str, Any]]) -> Sampled:
        """One generation: rounds of propose -> generate -> observe, then the batch to train on."""
        start, generating = time.perf_counter(), 0.0
        P, rank, G = ctx.num_processes, ctx.process_index, ctx.num_generations
        if self.filters and len(inputs) % G:
            raise UnsupportedError(
                f"sampling.name = {self.name}: this process holds {len(inputs)} completions, not whole groups of "
                f"{G}; make per_device_train_batch_size x steps_per_generation a multiple of num_generations."
            )
        share = len(inputs) // G  # groups per process in a full generation batch
        rounds: list[Round] = []
        kept: list[list[tuple[int, int]]] = [[] for _ in range(P)]  # per process: (round, group of the round)
        dropped: list[list[tuple[int, int]]] = [[] for _ in range(P)]
        variances: list[torch.Tensor] = []
        for r in range(self.max_rounds):
            deficit = max((share - len(k) for k in kept), default=share)
            n = share if r == 0 else self._refill_size(deficit, share)
            indices = self.propose(ctx, r, P * n)
            local = inputs if indices is None else _repeat(ctx.rows(indices[rank * n : (rank + 1) * n]), G)
            tick = time.perf_counter()
            rnd = ctx.generate(local)
            generating += time.perf_counter() - tick
            rewards = group_rewards(total_reward(rnd.scored.rewards_per_func, rnd.scored.reward_weights), G)
            var = within_group_variance(rewards)  # (P * n,)
            signal = has_signal(var) if self.filters else torch.ones_like(var, dtype=torch.bool)
            self.observe(ctx, indices, var, rewards)
            rounds.append(rnd)
            variances.append(var)
            if self.filters:  # groups are whole on each process (checked above): n groups per process
                for g, ok in enumerate(signal.tolist()):
                    (kept if ok else dropped)[g // n].append((r, g))
            self.generated_groups += len(signal)
            self.signal_groups += int(has_signal(var).sum())
            if not self.filters or all(len(k) >= share for k in kept):
                break
        sampled = self._finish(ctx, rounds, kept, dropped, share)
        sampled.metrics |= self._metrics(rounds, variances, kept, share, sampled)
        sampled.metrics["sampling/overhead_s"] = time.perf_counter() - start - generating
        return sampled

    def _refill_size(self, deficit: int, share: int) -> int:
        """Groups per process in a refill round: the largest deficit over the run's keep rate, at most a share."""
        rate = (self.signal_groups + 1) / (self.generated_groups + 2)  # Laplace-smoothed keep rate
        return max(1, min(share, math.ceil(deficit / rate)))

    def _finish(self, ctx: SamplingContext, rounds, kept, dropped, share) -> Sampled:
        if not self.filters:  # one round, nothing dropped: TRL's batch as it is
            return Sampled(rounds[0].batch, rounds[0].scored)
        batch, scored = assemble(ctx, rounds, kept, dropped, share)
        return Sampled(batch, scored)

    def _metrics(self, rounds, variances, kept, share, sampled: Sampled) -> dict[str, float]:
        var = torch.cat(variances)
        flat_before = float((~has_signal(var)).sum()) / max(len(var), 1)
        trained = group_variance(sampled.scored)  # NaN for filler groups
        trained_total = total_reward(sampled.scored.rewards_per_func, sampled.scored.reward_weights)
        generated_total = torch.cat([total_reward(r.scored.rewards_per_func, r.scored.reward_weights) for r in rounds])
        kept_groups = sum(min(len(k), share) for k in kept)
        return {
            "sampling/rounds": float(len(rounds)),
            "sampling/prompts_generated": float(len(var)),
            "sampling/completion_tokens": float(sum(r.tokens for r in rounds)),
            "sampling/groups_kept": float(int(has_signal(trained).sum())),
            "sampling/groups_discarded": float(sum(max(0, len(k) - share) for k in kept)) if self.filters else 0.0,
            "sampling/zero_var_share_before": flat_before,
            "sampling/zero_var_share_after": float((~has_signal(trained)).sum()) / max(len(trained), 1),
            "sampling/short": float(self.filters and kept_groups < share * len(kept)),
            "sampling/reward_generated": _nanmean(generated_total),
            "sampling/reward_trained": _nanmean(trained_total),
        } | self.round_metrics()


# ---------------------------------------------------------------------------------------------------------------
# private helpers


def _repeat(rows: list[dict[str, Any]], G: int) -> list[dict[str, Any]]:
    """Each row G times in a row, as TRL's RepeatSampler lays out a group."""
    return [row for row in rows for _ in range(G)]


def _nanmean(x: torch.Tensor) -> float:
    finite = x[~torch.isnan(x)]
    return float(finite.mean()) if finite.numel() else float("nan")
