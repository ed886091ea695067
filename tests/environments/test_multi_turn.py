"""The multi-turn evaluation loop: tool suffix tokens, budget, errors as TRL hands them to the model, and the same
result on 2 processes as on 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

from rlsurrogate.environments import EnvironmentFactory
from rlsurrogate.environments.multi_turn import MultiTurn, tool_suffix_ids
from rlsurrogate.evaluation import hf_generator
from rlsurrogate.tasks import build_task
from tests.environments import envs
from tests.environments.scripted import scripted_model

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "eval_distributed.py"


@pytest.fixture(scope="module")
def scripted():
    return scripted_model(seed=0, skip_odd=True)


def test_tool_suffix_is_the_tool_turn_and_the_next_assistant_header(scripted):
    _, tokenizer = scripted
    suffix = tokenizer.decode(tool_suffix_ids(tokenizer, [{"role": "tool", "name": "bump", "content": "7"}],
                                              tokenizer.eos_token_id))
    assert suffix == "\n<|im_start|>user\n<tool_response>\n7\n</tool_response><|im_end|>\n<|im_start|>assistant\n"


def test_rollout_masks_tool_tokens_and_counts_calls(scripted):
    model, tokenizer = scripted
    rows = build_task("arithmetic", "eval", 6, seed=1)
    eos = tokenizer.eos_token_id
    loop = MultiTurn(tokenizer, [], EnvironmentFactory(envs.Counter, {"start": 0}), 2, 64, eos)
    generate = hf_generator(lambda: nullcontext(model), tokenizer, 64, "cpu", [eos], keep_eos=True)
    rollouts = loop.rollout(rows, generate)
    called = [r for r in rollouts if r.tool_calls]
    assert called and len(called) < len(rollouts)  # skip_odd: some rows answer at once
    for r in rollouts:
        assert len(r.tool_mask) == len(r.completion_ids)
        model_text = tokenizer.decode([t for t, m in zip(r.completion_ids, r.tool_mask) if m])
        tool_text = tokenizer.decode([t for t, m in zip(r.completion_ids, r.tool_mask) if not m])
        assert "\\boxed{2}" in model_text and "<tool_response>" not in model_text
        assert ("<tool_response>\n2\n</tool_response>" in tool_text) == bool(r.tool_calls)
        assert r.environment.get_reward() == float(bool(r.tool_calls))
        assert r.messages[-1]["content"].startswith("The answer is")


def test_a_tool_error_reaches_the_model_and_the_budget_stops_the_loop(scripted):
    model, tokenizer = scripted
    rows = build_task("arithmetic", "eval", 2, seed=1)
    eos = tokenizer.eos_token_id
    generate = hf_generator(lambda: nullcontext(model), tokenizer, 64, "cpu", [eos], keep_eos=True)
    # no environment: `bump` names no tool, so the model reads TRL's "Tool bump not found." error
    rollouts = MultiTurn(tokenizer, [envs.add], None, 2, 64, eos).rollout(rows, generate)
    for r in rollouts:
        if r.tool_calls:
            assert r.tool_failures == r.tool_calls
            assert any(m.get("role") == "tool" and "not found" in m["content"] for m in r.messages)
    # a budget too small for the tool result: the rollout ends after its first turn
    short = MultiTurn(tokenizer, [], EnvironmentFactory(envs.Counter), 2, 30, eos).rollout(rows, generate)
    assert all(len(r.completion_ids) <= 30 for r in short)
    assert all(m.get("role") != "tool" for r in short for m in r.messages)


@pytest.mark.slow
def test_two_processes_evaluate_as_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(one)], check=True, env=env, timeout=900)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    subprocess.run([*launch, str(SCRIPT), "--out", str(two)], check=True, env=env, timeout=900)
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["num_processes"], b["num_processes"]) == (1, 2)
    assert a["num_prompts"] == b["num_prompts"] == 7
    for key, value in a["metrics"].items():
        assert b["metrics"][key] == pytest.approx(value, abs=1e-9), key
    assert [r["completion"] for r in a["completions"]] == [r["completion"] for r in b["completions"]]
    assert 0 < a["metrics"]["tool_call_rate"] < 1  # both kinds of rows, so the processes ran different turns
