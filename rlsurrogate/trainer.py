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

import asyncio
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from trl import GRPOTrainer
from trl.trainer.utils import is_async_callable

from rlsurrogate.errors import RewardError
from rlsurrogate.objectives.base import Objective, ScoredBatch
from rlsurrogate.rewards.guard import check_reward_output

__all__ = ["RLTrainer", "GuardedReward", "ScoreListener"]

ScoreListener = Callable[["RLTrainer", ScoredBatch], None]


class RLTrainer(GRPOTrainer):
    """GRPOTrainer that takes its loss from an objective and checks every reward call.

    Args:
        objective: the objective (from `rlsurrogate.objectives.build_objective`).
        score_listeners: callables `(trainer, scored)` run after each scoring (e.g. the reward-variance monitor).
        reward_timeouts: seconds each callable reward may take per call (None: no limit), in `reward_funcs` order.
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

    def log_metric(self, key: str, value: float) -> None:
        """Adds a scalar to this step's logs (averaged over the logging window, like TRL's own metrics)."""
        mode = "train" if self.model.training else "eval"
        self._metrics[mode][key].append(float(value))

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


class GuardedReward:
    """Wraps a reward callable: same `__name__` (so TRL's metric keys do not change), checked output.

    A reward that raises (or calls `sys.exit`), exceeds `timeout_s`, returns the wrong number of values, a
    non-number, NaN or inf raises `RewardError` naming the reward, the sample index, and the start of its prompt and
    completion. `None` stays allowed (TRL: "not applicable"). Picklable as long as the wrapped reward is.
    """

    def __init__(self, func: Callable[..., list[float | None]], timeout_s: float | None = None):
        self.func = func
        self.timeout_s = timeout_s
        self.__name__ = getattr(func, "__name__", type(func).__name__)
        self.version = getattr(func, "version", None)

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        return self.call_once(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)

    def call_once(self, prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
        """One checked call, also for async rewards (run to completion here, e.g. for the dry run)."""
        kwargs = dict(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        try:
            values = _call_with_deadline(self.func, kwargs, self.timeout_s)
            if inspect.isawaitable(values):
                values = asyncio.run(_await(values, self.timeout_s))
        except RewardError:
            raise
        except _DeadlineExceeded:
            raise self._timeout(completions) from None
        except (Exception, SystemExit) as err:
            raise self._error(err, prompts, completions) from err
        return self._checked(values, prompts, completions)

    def _error(self, err: BaseException, prompts: list, completions: list) -> RewardError:
        return RewardError(
            f"reward {self.__name__} raised {type(err).__name__}: {err} "
            f"(first prompt: {_preview(prompts[0])!r}, completion: {_preview(completions[0])!r})"
        )

    def _timeout(self, completions: list) -> RewardError:
        return RewardError(
            f"reward {self.__name__} did not return within timeout_s = {self.timeout_s} s for {len(completions)} "
            "completions; make it faster, or raise rewards[i].timeout_s in the recipe."
        )

    def _checked(self, values: Any, prompts: list, completions: list) -> list[float | None]:
        check_reward_output(self.__name__, values, len(completions), prompts, completions)
        return list(values)


class _AsyncGuardedReward(GuardedReward):
    """GuardedReward for `async def` rewards, which TRL awaits concurrently on its own event loop."""

    async def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        try:
            values = await _await(
                self.func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs),
                self.timeout_s,
            )
        except _DeadlineExceeded:
            raise self._timeout(completions) from None
        except (Exception, SystemExit) as err:
            raise self._error(err, prompts, completions) from err
        return self._checked(values, prompts, completions)


def guard_reward(func: Any, timeout_s: float | None = None) -> Any:
    """Wraps plain and async reward callables; leaves reward models (nn.Module) and hub ids (str) alone."""
    if isinstance(func, str | torch.nn.Module | GuardedReward):
        return func
    return _AsyncGuardedReward(func, timeout_s) if is_async_callable(func) else GuardedReward(func, timeout_s)


def _call_with_deadline(func: Callable[..., Any], kwargs: dict[str, Any], timeout_s: float | None) -> Any:
    """`func(**kwargs)`, or `_DeadlineExceeded` after `timeout_s` seconds. The call runs in a daemon thread that is
    abandoned on timeout (a thread cannot be killed), so a reward that never returns cannot block the run."""
    if not timeout_s:
        return func(**kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(**kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = err

    worker = threading.Thread(target=target, name="reward-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise _DeadlineExceeded
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _DeadlineExceeded(Exception):
    """A reward call outlived its `timeout_s` (distinct from a TimeoutError the reward raises itself)."""


async def _await(awaitable: Any, timeout_s: float | None = None) -> Any:
    if not timeout_s:
        return await awaitable
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise _DeadlineExceeded from None
        raise


def _preview(value: Any, width: int = 60) -> str:
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        value = value[-1].get("content", "")
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."
