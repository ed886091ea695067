"""The objective seam: what RLTrainer asks of an objective, and the scored batch it hands over.

The trainer holds one `Objective` and never switches on its name. An objective may
1. adjust TRL's config (`config_overrides`, e.g. `loss_type` for the GRPO family);
2. check the recipe before anything expensive starts (`check`, e.g. DisCO needs a label reward);
3. attach per-sample tensors to the batch right after scoring (`on_scored`); TRL shuffles and splits the
   generation batch with every tensor key in unison, so extra keys stay aligned with their completions;
4. return its own loss (`compute_loss`), or None to use TRL's loss (the GRPO family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from rlsurrogate.recipe import Recipe

__all__ = ["Objective", "ScoredBatch"]


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

    def check(self, recipe: Recipe) -> list[str]:
        """Problems with the recipe for this objective, one line each; [] when fine."""
        return []

    def on_scored(self, trainer: Any, scored: ScoredBatch, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Extra per-sample tensors (leading dim = local batch size) to add to the local batch."""
        return {}

    def compute_loss(self, trainer: Any, model: Any, inputs: dict[str, Any]) -> torch.Tensor | None:
        """The loss of one micro-batch, or None to use TRL's `_compute_loss`."""
        return None
