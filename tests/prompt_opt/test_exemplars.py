"""The instruction x exemplar pool: prompts in the evaluation template's format, demos only from the train split, a
GP-BO space in the unit cube, and NeuralUCB selection over it with the bandit's properties (no candidate twice,
deterministic under a seed)."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.evaluator import EVAL_TEMPLATE, InstructionEvaluator
from rlsurrogate.prompt_opt.exemplars import ExemplarConfig, ExemplarPromptPool, compose_prompt
from rlsurrogate.prompt_opt.instinct import INSTINCTConfig, optimize
from rlsurrogate.prompt_opt.query_log import Budget
from rlsurrogate.prompt_opt.tasks import Example, Task

INSTRUCTIONS = ["Provide a list of outputs.", "Say the label.", "Write it.", "Answer."]


def _task():
    examples = [Example(f"w{i}", "animal" if i % 2 else "fruit") for i in range(30)]
    return Task("labels", examples, metric="exact_match", n_demo=8, n_val=4)


def _featurize(texts):
    """Features a bandit can learn from: the number of demos, the instruction's length, a fixed random code."""
    rows = []
    for t in texts:
        g = torch.Generator().manual_seed(sum(map(ord, t)) % 10_000)
        rows.append(
            torch.cat([torch.tensor([t.count("Input:") / 4, len(t.split("\n")[0]) / 30]), torch.rand(6, generator=g)])
        )
    return torch.stack(rows)


class DemoHungryBlackBox:
    """Answers right only when the prompt shows at least `need` demonstrations before the query."""

    name, need = "fake", 4

    def __init__(self, task):
        self.answers = {e.input: e.output for e in task.examples}
        from rlsurrogate.prompt_opt.clients import Usage

        self.usage, self.calls = Usage(), 0

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):
        from rlsurrogate.prompt_opt.clients import Completion

        out = []
        for i, messages in enumerate(requests):
            self.calls += 1
            text = messages[-1]["content"]
            query = text.rsplit("Input: ", 1)[1].split("\n")[0]
            shown = text.count("Input: ") - 1
            c = Completion(self.answers[query] if shown >= self.need else "no idea", 5, 1)
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


def test_prompt_puts_the_demos_right_before_the_query():
    prompt = compose_prompt("Say the label.", [Example("dog", "animal"), Example("pear", "fruit")])
    rendered = EVAL_TEMPLATE.format(instruction=prompt, input="cat")
    assert rendered == (
        "Instruction: Say the label.\n\nInput: dog\nOutput: animal\n\nInput: pear\nOutput: fruit\n\n"
        "Input: cat\nOutput:"
    )
    assert compose_prompt("Say the label.", []) == "Say the label."


def test_pool_is_distinct_deterministic_and_draws_demos_from_train_only():
    task = _task()
    train, val, _ = task.split()
    pool = ExemplarPromptPool(INSTRUCTIONS, train, _featurize, ExemplarConfig(pool_size=40, max_demos=4, seed=3))
    again = ExemplarPromptPool(INSTRUCTIONS, train, _featurize, ExemplarConfig(pool_size=40, max_demos=4, seed=3))
    assert pool.prompts == again.prompts and len(set(pool.prompts)) == 40
    val_inputs = {e.input for e in val}
    for prompt in pool.prompts:
        shown = [line[len("Input: ") :] for line in prompt.split("\n") if line.startswith("Input: ")]
        assert len(shown) <= 4 and not set(shown) & val_inputs and prompt.split("\n")[0] in INSTRUCTIONS
    Z = pool.Z
    assert Z.shape == (40, 8) and float(Z.min()) >= 0 and float(Z.max()) <= 1
    assert pool.generate(Z[[5, 7]]) == [pool.prompts[5], pool.prompts[7]]
    assert pool.cached_instruction(Z[9]) == pool.prompts[9]


def test_bad_pool_settings_are_refused():
    train = _task().split()[0]
    with pytest.raises(ConfigError, match="max_demos"):
        ExemplarPromptPool(INSTRUCTIONS, train[:2], _featurize, ExemplarConfig(max_demos=4))
    with pytest.raises(ConfigError, match="at least one instruction"):
        ExemplarPromptPool([], train, _featurize)
    with pytest.raises(ConfigError, match="pool_size"):
        ExemplarConfig(pool_size=0)


def _run(method, seed, budget=10):
    task = _task()
    pool = ExemplarPromptPool(INSTRUCTIONS, task.split()[0], _featurize, ExemplarConfig(pool_size=60, seed=0))
    black_box = DemoHungryBlackBox(task)
    evaluator = InstructionEvaluator(task, black_box, Budget(max_queries=budget))
    result = optimize(method, evaluator, pool, INSTINCTConfig(n_init=3, seed=seed, train_steps=20))
    return result, black_box


def test_neural_ucb_over_the_pool_queries_each_prompt_once_and_is_deterministic():
    a, black_box = _run("instinct", seed=1)
    b, _ = _run("instinct", seed=1)
    prompts = [e.instruction for e in a.history]
    assert len(prompts) == len(set(prompts)) == 10 and a.stopped == "budget"
    assert prompts == [e.instruction for e in b.history]
    assert black_box.calls == 10 * 4  # one call per validation example per query, none repeated
