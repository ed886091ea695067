"""RLTrainer on a tiny random model: a real 2-step GRPO run, the objective seam, and the reward guard."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig

from rlsurrogate.errors import RewardError
from rlsurrogate.objectives import build_objective
from rlsurrogate.objectives.base import Objective
from rlsurrogate.rewards.guard import GuardedReward
from rlsurrogate.tasks import build_task
from rlsurrogate.trainer import RLTrainer


def _length_reward(completions, completion_ids, **kwargs):
    """Share of even token ids: varies between random completions, so advantages are non-zero."""
    return [sum(1 for t in ids if t % 2 == 0) / max(len(ids), 1) for ids in completion_ids]


def _config(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        bf16=False,
        save_strategy="no",
        gradient_checkpointing=False,
        seed=0,
        temperature=1.0,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def _dataset(n=8):
    return Dataset.from_list(build_task("arithmetic", "train", n))


class _Recorder(Objective):
    """Defers the loss to TRL but records what the seam hands over."""

    def __init__(self):
        self.scored = []
        self.losses = 0

    def on_scored(self, trainer, scored, batch):
        self.scored.append(scored)
        n = batch["completion_ids"].shape[0]
        return {"row_marker": torch.arange(n, dtype=torch.float32)}

    def compute_loss(self, trainer, model, inputs):
        assert "row_marker" in inputs  # extra keys survive TRL's shuffle and split
        self.losses += 1
        return None


def test_two_steps_change_every_parameter_and_loss_is_finite(tmp_path, tiny):
    make_model, tokenizer = tiny
    model = make_model(0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = RLTrainer(
        model=model,
        reward_funcs=[_length_reward],
        args=_config(tmp_path),
        train_dataset=_dataset(),
        processing_class=tokenizer,
        objective=build_objective("grpo"),
    )
    result = trainer.train()
    assert trainer.state.global_step == 2
    assert math.isfinite(result.training_loss)
    unchanged = [n for n, p in trainer.model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters that did not move: {unchanged[:5]}"


def test_objective_seam_sees_gathered_rewards_and_group_ids(tmp_path, tiny):
    make_model, tokenizer = tiny
    recorder = _Recorder()
    trainer = RLTrainer(
        model=make_model(1),
        reward_funcs=[_length_reward],
        args=_config(tmp_path, max_steps=1),
        train_dataset=_dataset(),
        processing_class=tokenizer,
        objective=recorder,
    )
    trainer.train()
    scored = recorder.scored[0]
    assert scored.rewards_per_func.shape == (4, 1)
    assert scored.reward_names == ["_length_reward"]
    assert scored.group_ids.tolist() == [0, 0, 0, 0]
    assert trainer.last_scored is scored and recorder.losses == 1


def test_grpo_family_sets_trl_loss_type(tmp_path, tiny):
    make_model, tokenizer = tiny
    objective = build_objective("dr_grpo")
    config = _config(tmp_path, max_steps=1, **objective.config_overrides())
    trainer = RLTrainer(
        model=make_model(2),
        reward_funcs=[_length_reward],
        args=config,
        train_dataset=_dataset(),
        processing_class=tokenizer,
        objective=objective,
    )
    assert trainer.loss_type == "dr_grpo"


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda completions, **kw: [1.0] * (len(completions) - 1), "returned 3 values for 4 completions"),
        (
            lambda completions, **kw: [1.0, float("nan"), 1.0, 1.0],
            "returned nan, expected a finite number at sample 1",
        ),
        (lambda completions, **kw: [1.0, 1.0, float("inf"), 1.0], "returned inf"),
        (lambda completions, **kw: ["high"] * len(completions), "returned str 'high', expected a float or None"),
        (lambda completions, **kw: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_guard_names_reward_sample_prompt_and_completion(bad, message):
    def my_reward(**kwargs):
        return bad(**kwargs)

    guarded = GuardedReward(my_reward)
    prompts = [[{"role": "user", "content": f"What is {i} + 1?"}] for i in range(4)]
    completions = [[{"role": "assistant", "content": f"answer {i}"}] for i in range(4)]
    with pytest.raises(RewardError) as info:
        guarded(prompts=prompts, completions=completions, completion_ids=[[1]] * 4)
    text = str(info.value)
    assert "my_reward" in text and message.split(" at sample")[0] in text, text
    if " at sample" in message:
        assert "at sample " + message.split(" at sample ")[1] in text and "What is 1 + 1?" in text
    assert "\n" not in text


def test_guard_allows_none_and_keeps_name_and_pickles():
    from rlsurrogate.rewards import build_reward

    reward = build_reward("format_length", {"max_length": 16})
    guarded = GuardedReward(reward)
    assert guarded.__name__ == reward.__name__
    assert pickle.loads(pickle.dumps(guarded)).__name__ == reward.__name__
    none_reward = GuardedReward(lambda completions, **kw: [None] * len(completions))
    assert none_reward(prompts=["p"], completions=["c"], completion_ids=[[1]]) == [None]


def test_dry_run_fails_before_training_on_a_broken_reward(tmp_path, tiny):
    make_model, tokenizer = tiny

    def needs_missing_column(completions, solution, **kwargs):
        return [1.0 for _ in completions]

    trainer = RLTrainer(
        model=make_model(3),
        reward_funcs=[needs_missing_column],
        args=_config(tmp_path),
        train_dataset=_dataset(),
        processing_class=tokenizer,
        objective=build_objective("grpo"),
    )
    with pytest.raises(RewardError, match="needs_missing_column raised TypeError"):
        trainer.dry_run_rewards(_dataset()[0])
    assert trainer.state.global_step == 0


def test_async_rewards_are_guarded_and_dry_run():
    import asyncio

    from rlsurrogate.rewards.guard import guard_reward

    async def slow_reward(completions, **kwargs):
        await asyncio.sleep(0)
        return [float("nan")] * len(completions)

    guarded = guard_reward(slow_reward)
    assert guarded.__name__ == "slow_reward"
    with pytest.raises(RewardError, match="returned nan"):
        asyncio.run(guarded(prompts=["p"], completions=["c"], completion_ids=[[1]]))
    with pytest.raises(RewardError, match="returned nan"):  # the dry run's synchronous path
        guarded.call_once(prompts=["p"], completions=["c"], completion_ids=[[1]])


def test_reward_timeout_sys_exit_and_own_timeout_errors():
    import asyncio
    import time

    from rlsurrogate.rewards.guard import guard_reward

    def stuck(completions, **kwargs):
        time.sleep(30)
        return [0.0] * len(completions)

    async def stuck_async(completions, **kwargs):
        await asyncio.sleep(30)
        return [0.0] * len(completions)

    def exits(completions, **kwargs):
        raise SystemExit(0)

    def network(completions, **kwargs):
        raise TimeoutError("reward server did not answer")

    started = time.perf_counter()
    with pytest.raises(RewardError, match=r"stuck did not return within timeout_s = 0.2 s for 1 completions"):
        guard_reward(stuck, 0.2)(prompts=["p"], completions=["c"])
    with pytest.raises(RewardError, match=r"stuck_async did not return within timeout_s = 0.2 s"):
        asyncio.run(guard_reward(stuck_async, 0.2)(prompts=["p"], completions=["c"]))
    assert time.perf_counter() - started < 5  # neither call waited for its reward
    with pytest.raises(RewardError, match="exits raised SystemExit"):  # not a silent exit 0 of the run
        guard_reward(exits)(prompts=["p"], completions=["c"])
    with pytest.raises(RewardError, match="network raised TimeoutError: reward server did not answer"):
        guard_reward(network, 5.0)(prompts=["p"], completions=["c"])
    fast = guard_reward(lambda completions, **kw: [1.0] * len(completions), 5.0)
    assert fast(prompts=["p", "q"], completions=["c", "d"]) == [1.0, 1.0]
