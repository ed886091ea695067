"""RLTrainer: a thin subclass of TRL's GRPOTrainer with three seams (objective, reward guard, diagnostics).

Written against TRL 1.16 (`trl/trainer/grpo_trainer.py`); it overrides three documented hooks and calls
`super()` for everything else:
- `_calculate_rewards`: keeps the gathered `(N, F)` per-reward matrix, which TRL reduces to advantages.
- `_generate_and_score_completions`: builds a `ScoredBatch` from it, hands it to the score listeners
  (diagnostics) and lets the objective attach per-sample tensors before TRL shuffles the batch.
- `compute_loss`: the objective's loss, or TRL's when the objective defers (the GRPO family).
Every callable reward is wrapped in `GuardedReward`, which fails loudly on bad output instead of letting TRL
train on it, and `dry_run_rewards` calls each reward once before training starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from rlsurrogate import trl_compat
from rlsurrogate.objectives.base import Objective, ScoredBatch
from rlsurrogate.rewards.guard import GuardedReward, guard_reward

__all__ = ["RLTrainer", "ScoreListener"]

ScoreListener = Callable[["RLTrainer", ScoredBatch], None]


class RLTrainer(GRPOTrainer):
    """GRPOTrainer that takes its loss from an objective and checks every reward call.

    Args:
        objective: the objective (from `rlsurrogate.objectives.build_objective`).
        score_listeners: callables `(trainer, scored)` run after each scoring (e.g. the reward-variance monitor).
        reward_timeouts: seconds each callable reward may take per call (None: no limit), in `reward_funcs` order.
        optimizer_cls_and_kwargs: (optimizer class, kwargs) for transformers.Trainer; None keeps AdamW.
        *args, **kwargs: as for `trl.GRPOTrainer`; callable `reward_funcs` are wrapped in `GuardedReward`.

    Example:
        >>> trainer = RLTrainer(model=model, reward_funcs=[fn], args=config, train_dataset=ds,
        ...                     objective=build_objective("grpo"))  # doctest: +SKIP
    """

    def __init__(
        self,
        *args: Any,
        objective: Objective,
        score_listeners: Sequence[ScoreListener] = (),
        reward_funcs: Any = None,
        reward_timeouts: Sequence[float | None] = (),
        optimizer_cls_and_kwargs: tuple[type, dict[str, Any]] | None = None,
        **kwargs: Any,
    ):
        self.objective = objective
        self.score_listeners = list(score_listeners)
        self.last_scored: ScoredBatch | None = None
        self._rewards_per_func: torch.Tensor | None = None
        funcs = [f for f in (reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]) if f is not None]
        timeouts = list(reward_timeouts) + [None] * (len(funcs) - len(reward_timeouts))
        guarded = [guard_reward(f, timeout) for f, timeout in zip(funcs, timeouts)]
        super().__init__(*args, reward_funcs=guarded, **kwargs)
        if optimizer_cls_and_kwargs is not None:  # GRPOTrainer does not pass it on to transformers.Trainer
            self.optimizer_cls_and_kwargs = optimizer_cls_and_kwargs

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self._rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._rewards_per_func

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        n_local = batch["completion_ids"].shape[0]
        rank = self.accelerator.process_index
        scored = ScoredBatch(
            rewards_per_func=self._rewards_per_func,
            reward_names=list(self.reward_func_names),
            reward_weights=self.reward_weights.detach().cpu(),
            num_generations=self.num_generations if mode == "train" else self.num_generations_eval,
            local_slice=slice(rank * n_local, (rank + 1) * n_local),
            mode=mode,
            step=self.state.global_step,
        )
        self.last_scored = scored
        for listener in self.score_listeners:
            listener(self, scored)
        batch.update(self.objective.on_scored(self, scored, batch))
        return batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.objective.compute_loss(self, model, inputs)
        if loss is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return loss

    # -- the TrainerView protocol objectives read (objectives/base.py) ------------------------------------------------

    def log_metric(self, key: str, value: float) -> None:
        """Adds a scalar to this step's logs (averaged over the logging window, like TRL's own metrics)."""
        trl_compat.append_metric(self, "train" if self.model.training else "eval", key, value)

    def micro_step(self) -> int:
        return trl_compat.micro_step(self)

    def generation_buffer(self) -> list[dict[str, Any]]:
        return trl_compat.generation_buffer(self)

    def token_logps(
        self, model: Any, batch: dict[str, Any], compute_entropy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return trl_compat.token_logps(self, model, batch, compute_entropy)

    def dry_run_rewards(self, example: dict[str, Any]) -> None:
        """Calls every reward once on `example` with a plausible completion; raises RewardError naming the reward.

        Runs before training so a reward that cannot score this dataset fails in seconds, not after the first
        generation.
        """
        prompt = example["prompt"]
        text = "The answer is \\boxed{1}."
        completion = [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text
        completion_ids = self.processing_class(text=text, add_special_tokens=False)["input_ids"]
        columns = {k: [v] for k, v in example.items() if k not in ("prompt", "completion", "completion_ids")}
        for func in self.reward_funcs:
            if not isinstance(func, GuardedReward):
                continue
            func.call_once(
                prompts=[prompt],
                completions=[completion],
                completion_ids=[completion_ids],
                trainer_state=self.state,
                log_extra=lambda *a, **k: None,
                log_metric=lambda *a, **k: None,
                **columns,
            )
