"""A multi-turn GRPO step on TRL 1.16's environment seam with a scripted tiny model: tool results stay out of the
loss, the environment's reward goes through the guard, and held-out evaluation runs the same loop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig

from rlsurrogate.environments import EnvironmentFactory
from rlsurrogate.errors import RewardError
from rlsurrogate.objectives.base import Objective
from rlsurrogate.tasks import build_task
from rlsurrogate.trainer import RLTrainer
from tests.environments import envs
from tests.environments.scripted import scripted_model

HERE = Path(__file__).parent


class _KeepBatch(Objective):
    """Defers the loss to TRL; keeps the scored batches TRL hands to the loss."""

    def __init__(self):
        self.batches = []

    def on_scored(self, trainer, scored, batch):
        self.batches.append(batch)
        return {}


def _boxed_two(completions, environments=None, **kwargs):
    """1.0 when the last assistant turn boxes 2; also checks that environments arrive, one per completion."""
    assert environments is not None and len(environments) == len(completions)
    return [float("\\boxed{2}" in (c[-1].get("content") or "")) for c in completions]


def _alternating(completions, **kwargs):
    """0, 1, 0, 1, ...: the scripted completions are identical, so this gives the group its variance."""
    return [float(i % 2) for i in range(len(completions))]


def _trainer(tmp_path, env_cls=envs.Counter, **overrides):
    model, tokenizer = scripted_model(seed=0)
    config = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=64,
        max_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        report_to="none",
        bf16=False,
        use_cpu=True,
        save_strategy="no",
        max_tool_calling_iterations=2,
        **overrides,
    )
    objective = _KeepBatch()
    trainer = RLTrainer(
        model=model,
        reward_funcs=[_boxed_two, _alternating],
        args=config,
        train_dataset=Dataset.from_list(build_task("arithmetic", "train", 4)),
        processing_class=tokenizer,
        objective=objective,
        environment_factory=EnvironmentFactory(env_cls, {"start": 0}, timeout_s=5),
    )
    return trainer, objective, tokenizer


def test_tool_results_are_masked_out_of_the_loss_and_the_step_trains(tmp_path):
    trainer, objective, tokenizer = _trainer(tmp_path)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    batch = objective.batches[0]
    ids, mask, tool_mask = batch["completion_ids"], batch["completion_mask"], batch["tool_mask"]
    for row in range(ids.shape[0]):
        text_model = tokenizer.decode(ids[row][(mask[row] * tool_mask[row]).bool()])
        text_tool = tokenizer.decode(ids[row][(mask[row] * (1 - tool_mask[row])).bool()])
        assert "<tool_call>" in text_model and "\\boxed{2}" in text_model  # both turns of the model are trained
        assert "<tool_response>" in text_tool and "2" in text_tool  # the tool's result (0 + 2) is not
        assert "<tool_response>" not in text_model
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed
    logs = trainer.state.log_history[0]
    assert logs["tools/call_frequency"] == pytest.approx(1.0)
    assert logs["rewards/Counter/mean"] == pytest.approx(1.0)  # get_reward: a call was made in every rollout
    assert logs["rewards/_boxed_two/mean"] == pytest.approx(1.0)


def test_environment_reward_with_bad_output_names_the_environment_and_sample(tmp_path):
    trainer, _, _ = _trainer(tmp_path, env_cls=envs.NaNReward)
    with pytest.raises(RewardError, match=r"NaNReward\.get_reward.*nan.*sample 0"):
        trainer.train()


def test_held_out_evaluation_runs_the_same_tool_loop_greedily(tmp_path):
    from rlsurrogate.environments.multi_turn import MultiTurn
    from rlsurrogate.evaluation import EvalRewards, evaluate, trainer_generator

    trainer, _, tokenizer = _trainer(tmp_path)
    rows = build_task("arithmetic", "eval", 3)
    multi_turn = MultiTurn(tokenizer, [], trainer.environment_factories[None], 2, 64, tokenizer.eos_token_id)
    rewards = EvalRewards(list(trainer.reward_func_names), list(trainer.reward_funcs), [True, False, False], [1.0] * 3)
    result = evaluate(
        rows, trainer_generator(trainer, 64, keep_eos=True), tokenizer, rewards, 64, batch_size=2,
        multi_turn=multi_turn,
    )
    metrics = result["metrics"]
    assert metrics["tool_call_rate"] == pytest.approx(1.0)
    assert metrics["tool_failure_rate"] == pytest.approx(0.0)
    assert metrics["Counter"] == pytest.approx(1.0) and metrics["_boxed_two"] == pytest.approx(1.0)
    sample = result["samples"][0]["completion"]
    assert "<tool_call>" in sample and "[bump -> 2]" in sample and "\\boxed{2}" in sample
    # the length counts the model's tokens, not the tool result's
    model_tokens = len(tokenizer(envs_call_and_answer(), add_special_tokens=False)["input_ids"]) - 2  # 2 EOS
    assert metrics["mean_length"] == pytest.approx(model_tokens, abs=1)


def envs_call_and_answer() -> str:
    from tests.environments.scripted import ANSWER, CALL

    return CALL + ANSWER
