"""The objective seam: what RLTrainer asks of an objective, what it hands over, and what an objective may read.

The trainer holds one `Objective` and never switches on its name. An objective may
1. adjust TRL's config (`config_overrides`, e.g. `loss_type` for the GRPO family);
2. check the run before anything expensive starts (`check`, e.g. DisCO needs a label reward), given the run's
   reward names and training values, not the recipe;
3. attach per-sample tensors to the batch right after scoring (`on_scored`); TRL shuffles and splits the
   generation batch with every tensor key in unison, so extra keys stay aligned with their completions;
4. return its own loss (`compute_loss`), or None to use TRL's loss (the GRPO family).
An objective reads the trainer only through `TrainerView`, a small typed protocol that RLTrainer implements (its
TRL-private parts in `rlsurrogate.trl_compat`); objectives never import the recipe, the rewards or TRL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rlsurrogate.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["Objective", "ScoredBatch", "TrainerView", "config_from_params"]

C = TypeVar("C")


class TrainerView(Protocol):
    """What an objective may read from the trainer (RLTrainer; tests use small stand-ins)."""

    args: Any  # the GRPOConfig: gradient_accumulation_steps, steps_per_generation
    accelerator: Any  # num_processes, process_index, gather, reduce, pad_across_processes
    model: Any  # `.training` tells train from eval
    num_iterations: int

    def micro_step(self) -> int:
        """Index of the current micro-batch since training started (TRL counts it for its generation buffer)."""
        ...

    def generation_buffer(self) -> list[dict[str, Any]]:
        """The micro-batches of the current generation, as TRL split and buffered them."""
        ...

    def token_logps(
        self, model: Any, batch: dict[str, Any], compute_entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`(b, T)` completion-token log-probabilities (and entropies) of a batch, through TRL's forward."""
        ...

    def log_metric(self, key: str, value: float) -> None:
        """Adds a scalar to this step's logs."""
        ...


def config_from_params(config_cls: Callable[..., C], objective: str, params: dict[str, Any]) -> C:
    """`config_cls(**params)`, with one ConfigError line per parameter the config does not have."""
    known = {f.name for f in fields(config_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            [f"objective.params.{k}: unknown for {objective}. Valid: {', '.join(sorted(known))}." for k in unknown]
        )
    return config_cls(**params)


@dataclass
class ScoredBatch:
    """One generation batch after scoring, as every process sees it.

    Attributes:
        rewards_per_func: `(N, F)` rewards of every completion on every process (gathered), NaN where a reward
            returned None. Rows are ordered by process, then by position within the process.
        reward_names: the F reward names, in column order.
        reward_weights: `(F,)` weights of the summed reward.
        num_generations: G; rows `g*G ... (g+1)*G - 1` are the completions of prompt g.
        local_slice: the rows this process holds (its part of the returned batch, before TRL shuffles it).
        mode: "train" or "eval".
        step: the trainer's global step when the batch was scored.
    """

    rewards_per_func: torch.Tensor
    reward_names: list[str]
    reward_weights: torch.Tensor
    num_generations: int
    local_slice: slice
    mode: str
    step: int

    @property
    def group_ids(self) -> torch.Tensor:
        """`(N,)` index of each row's prompt within the generation batch."""
        import torch

        n = self.rewards_per_func.shape[0]
        return torch.arange(n, device=self.rewards_per_func.device) // self.num_generations

    def column(self, name: str) -> torch.Tensor:
        """`(N,)` rewards of the reward function called `name`."""
        return self.rewards_per_func[:, self.reward_names.index(name)]


class Objective:
    """Base class: the GRPO family overrides only `config_overrides`; DisCO overrides the rest."""

    name: str = "objective"

    def config_overrides(self) -> dict[str, Any]:
        """GRPOConfig fields this objective sets (they win over the recipe's `training` block)."""
        return {}

    def check(self, reward_names: Sequence[str], training_value: Callable[[str], Any]) -> list[str]:
        """Problems of a run for this objective, one line each; [] when fine.

        Args:
            reward_names: the run's reward names (each reward's `__name__`), in order.
            training_value: a GRPOConfig field's value as the run will use it.
        """
        return []

    def on_scored(self, trainer: TrainerView, scored: ScoredBatch, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Extra per-sample tensors (leading dim = local batch size) to add to the local batch."""
        return {}

    def compute_loss(self, trainer: TrainerView, model: Any, inputs: dict[str, Any]) -> torch.Tensor | None:
        """The loss of one micro-batch, or None to use TRL's `_compute_loss`."""
        return None
