"""RLTrainer: a thin subclass of TRL's GRPOTrainer with four seams (objective, reward guard, diagnostics, sampling).

Written against TRL 1.16 (`trl/trainer/grpo_trainer.py`); it overrides these hooks and calls `super()` for
everything else:
- `_calculate_rewards`: keeps the gathered `(N, F)` per-reward matrix, which TRL reduces to advantages, and the
  number of completion tokens generated.
- `_generate_and_score_completions`: in training, hands the generation to the sampler
  (`rlsurrogate.sampling`), which runs one or more rounds of TRL's own generation and scoring (each round's
  `ScoredBatch` goes to the score listeners, i.e. diagnostics) and returns the batch to train on; the objective
  then attaches per-sample tensors before TRL shuffles the batch.
- `compute_loss`: the objective's loss, or TRL's when the objective defers (the GRPO family) on the micro-batch
  without its all-masked trailing completion columns (`micro_batch.py`: same loss, less compute), rescaled when a
  filtering sampler had to fill the batch with groups that must stay out of the loss's normalisation.
- `train`: restores the sampler's state on `resume_from_checkpoint`; `SamplerCheckpoint` saves it.
On a CPU, TRL's fused LM head projects only the completion tokens, as it does on a GPU
(`trl_compat.score_only_labelled_positions`: same loss, less compute).
Every callable reward is wrapped in `GuardedReward`, which fails loudly on bad output instead of letting TRL
train on it, and `dry_run_rewards` calls each reward once before training starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from rlsurrogate import trl_compat
from rlsurrogate.errors import ConfigError, UnsupportedError
from rlsurrogate.micro_batch import trim_completion_padding
from rlsurrogate.objectives.base import Objective, ScoredBatch
from rlsurrogate.rewards.guard import GuardedReward, guard_reward
from rlsurrogate.sampling.base import Round, Sampler
from rlsurrogate.sampling.batch import LOSS_NORMALISERS, filler_loss_scale
from rlsurrogate.sampling.state import SamplerCheckpoint, load_sampler_state
from rlsurrogate.sampling.uniform import Uniform

__all__ = ["RLTrainer", "ScoreListener"]

ScoreListener = Callable[["RLTrainer", ScoredBatch], None]


class RLTrainer(GRPOTrainer):
    """GRPOTrainer that takes its loss from an objective and checks every reward call.

    Args:
        objective: the objective (from `rlsurrogate.objectives.build_objective`).
        score_listeners: callables `(trainer, scored)` run after each scoring (e.g. the reward-variance monitor).
        reward_timeouts: seconds each callable reward may take per call (None: no limit), in `reward_funcs` order.
        optimizer_cls_and_kwargs: (optimizer class, kwargs) for transformers.Trainer; None keeps AdamW.
        sampler: which prompts each generation uses (`rlsurrogate.sampling.build_sampler`); None: uniform.
        vllm_engine_kwargs: extra arguments for a colocated vLLM engine (`build.vllm_engine_kwargs`). On a CPU the
            engine takes its weights through `rlsurrogate.vllm_weights` (TRL's per-parameter sync fails there).
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
        sampler: Sampler | None = None,
        vllm_engine_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.objective = objective
        self.score_listeners = list(score_listeners)
        self.sampler = sampler if sampler is not None else Uniform()
        self.last_scored: ScoredBatch | None = None
        self._rewards_per_func: torch.Tensor | None = None
        self._completion_tokens = 0
        funcs = [f for f in (reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]) if f is not None]
        timeouts = list(reward_timeouts) + [None] * (len(funcs) - len(reward_timeouts))
        guarded = [guard_reward(f, timeout) for f, timeout in zip(funcs, timeouts)]
        num_recipe_rewards = len(guarded)  # TRL appends to this very list
        with trl_compat.vllm_engine_overrides(_vllm_client_class(kwargs.get("args")), vllm_engine_kwargs):
            super().__init__(*args, reward_funcs=guarded, **kwargs)
        if trl_compat.uses_vllm(self):
            from rlsurrogate.vllm_weights import install_colocate_sync

            install_colocate_sync(self.vllm_generation)
        # TRL 1.16 appends one reward per environment class with `get_reward` (named after the class, weight 1);
        # guard those too, so bad output names the environment and the sample.
        for i in range(num_recipe_rewards, len(self.reward_funcs)):
            name = f"{self.reward_func_names[i]}.get_reward"
            self.reward_funcs[i] = guard_reward(self.reward_funcs[i], None, name)
        trl_compat.score_only_labelled_positions()
        if optimizer_cls_and_kwargs is not None:  # GRPOTrainer does not pass it on to transformers.Trainer
            self.optimizer_cls_and_kwargs = optimizer_cls_and_kwargs
        self._check_sampler()
        self.sampler.bind(_SamplingView(self))
        self.add_callback(SamplerCheckpoint(self.sampler))

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self._completion_tokens = sum(len(ids) for ids in completion_ids_list)
        self._rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._rewards_per_func

    def _generate_and_score_completions(self, inputs):
        if self.model.training:
            sampled = self.sampler.sample(_SamplingView(self), inputs)
            batch, scored = sampled.batch, sampled.scored
            for key, value in sampled.metrics.items():
                if math.isfinite(value):
                    self.log_metric(key, value)
        else:
            batch, scored = self._score_round(inputs)
        self.last_scored = scored
        batch.update(self.objective.on_scored(self, scored, batch))
        return batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.objective.compute_loss(self, model, inputs)
        if loss is not None:
            return loss
        loss = super().compute_loss(model, trim_completion_padding(inputs), return_outputs, num_items_in_batch)
        if self.model.training and "sampling_rows" in inputs:  # filler rows stay out of the normalisation
            processes, per_generation = self.accelerator.num_processes, self.args.steps_per_generation
            loss = loss * filler_loss_scale(self.loss_type, inputs, processes, per_generation)
        return loss

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """`Trainer.train`, restoring the sampler's state from the checkpoint it resumes from."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            from transformers.trainer_utils import get_last_checkpoint

            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            load_sampler_state(self.sampler, checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

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

    # -- the sampling seam --------------------------------------------------------------------------------------------

    def _score_round(self, inputs: list[dict[str, Any]]) -> tuple[dict[str, Any], ScoredBatch]:
        """One round of TRL's generation and scoring; the score listeners see its ScoredBatch."""
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
        for listener in self.score_listeners:
            listener(self, scored)
        return batch, scored

    def _prompt_features(self, indices: Sequence[int], layer: int) -> torch.Tensor:
        """`(n, D)` mean over each prompt's tokens of the policy's hidden state `layer` (0: input embeddings).

        Every process embeds a share of the prompts inside TRL's generation context (sharded weights gathered) and
        the results are all-gathered, so every process returns the same tensor; collective.
        """
        P, rank = self.accelerator.num_processes, self.accelerator.process_index
        texts = [_prompt_text(self.train_dataset[int(i)]["prompt"]) for i in indices]
        chunk = math.ceil(len(texts) / P)
        mine = (texts + texts[-1:] * (chunk * P - len(texts)))[rank * chunk : (rank + 1) * chunk]
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        pooled = []
        with trl_compat.generation_model(self) as model:
            for start in range(0, len(mine), _FEATURE_BATCH):
                enc = tokenizer(
                    mine[start : start + _FEATURE_BATCH], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(self.accelerator.device)
                if layer == 0 and not self.is_fsdp_enabled:  # FSDP2 gathers weights only in the model's forward
                    hidden = model.get_input_embeddings()(enc["input_ids"])
                else:
                    out = model(**enc, output_hidden_states=True, logits_to_keep=1)
                    states = len(out.hidden_states)  # the input embeddings, then one per layer
                    if not -states <= layer < states:
                        raise ConfigError(
                            f"sampling.params.feature_layer = {layer}: this model has {states - 1} layers; use 0 "
                            f"(input embeddings) to {states - 1}, or -1 (last layer) to -{states}."
                        )
                    hidden = out.hidden_states[layer]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, T, 1)
                pooled.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).float())  # (b, D)
        features = self.accelerator.gather(torch.cat(pooled).contiguous())  # (P * chunk, D)
        return features[: len(texts)].cpu()

    def _check_sampler(self) -> None:
        name, G = self.sampler.name, self.num_generations
        dataset = self.train_dataset
        if self.sampler.needs_dataset and not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise UnsupportedError(
                f"sampling.name = {name} draws prompts by index; a streamed (iterable) dataset has none. Load it "
                "without streaming, or use sampling.name: uniform."
            )
        if not self.sampler.filters:
            return
        if self.tools or self.environment_factories is not None:
            from rlsurrogate.environments import FILTERING_SAMPLER_PROBLEM

            raise UnsupportedError(FILTERING_SAMPLER_PROBLEM.format(name=name))
        if self.loss_type not in LOSS_NORMALISERS:
            raise UnsupportedError(f"sampling.name = {name}: TRL loss_type {self.loss_type!r} is not supported.")
        local = self.args.per_device_train_batch_size * self.args.steps_per_generation
        if local % G:
            raise UnsupportedError(
                f"sampling.name = {name}: each process generates {local} completions, not whole groups of {G}; make "
                f"per_device_train_batch_size x steps_per_generation a multiple of num_generations."
            )

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
        if self.environment_factories is not None:  # a fresh environment, reset on the example, as TRL does
            name = None if None in self.environment_factories else example.get("environment")
            environment = self.environment_factories[name]()
            reset_kwargs = {k: v for k, v in example.items() if k != "environment"} if name is not None else example
            environment.reset(**reset_kwargs)
            columns["environments"] = [environment]
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


# ---------------------------------------------------------------------------------------------------------------
# private helpers

# Prompts embedded per forward pass when computing sampler features (bounds the activations' memory).
_FEATURE_BATCH = 32


class _SamplingView:
    """The trainer as a sampler sees it (`rlsurrogate.sampling.base.SamplingContext`)."""

    def __init__(self, trainer: RLTrainer):
        self.trainer = trainer
        self.num_processes = trainer.accelerator.num_processes
        self.process_index = trainer.accelerator.process_index
        self.num_generations = trainer.num_generations
        self.steps_per_generation = trainer.args.steps_per_generation
        self.pad_token_id = getattr(trainer.processing_class, "tokenizer", trainer.processing_class).pad_token_id
        self.seed = trainer.args.seed

    def generate(self, inputs: list[dict[str, Any]]) -> Round:
        batch, scored = self.trainer._score_round(inputs)
        return Round(batch, scored, int(self.sum_over_processes(self.trainer._completion_tokens)))

    def dataset_size(self) -> int:
        return len(self.trainer.train_dataset)

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self.trainer.train_dataset[int(i)] for i in indices]

    def prompt_features(self, indices: Sequence[int], layer: int) -> torch.Tensor:
        return self.trainer._prompt_features(indices, layer)

    def sum_over_processes(self, value: float) -> float:
        if self.num_processes == 1:
            return float(value)
        total = torch.tensor([float(value)], dtype=torch.float64, device=self.trainer.accelerator.device)
        return float(self.trainer.accelerator.reduce(total, reduction="sum").item())

    def broadcast(self, value: list[int]) -> list[int]:
        if self.num_processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return list(broadcast_object_list([value], from_process=0)[0])


def _vllm_client_class(args: Any) -> type | None:
    """Server mode without CUDA syncs weights through a shared directory (TRL's client needs NCCL, i.e. CUDA)."""
    if args is None or not args.use_vllm or args.vllm_mode != "server" or torch.cuda.is_available():
        return None
    from rlsurrogate.vllm_weights import SharedFileWeightClient

    return SharedFileWeightClient


def _prompt_text(prompt: Any) -> str:
    """A prompt's text: a string as it is, the messages of a conversation joined by newlines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(message.get("content", "")) for message in prompt)
