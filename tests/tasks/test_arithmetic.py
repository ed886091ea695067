"""The built-in arithmetic task: seeded, correct answers, disjoint splits; loaders for JSONL and templates."""

from __future__ import annotations

import json
import re

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.recipe import DataConfig
from rlsurrogate.tasks import build_task
from rlsurrogate.tasks.loaders import load_rows


def _solve(question: str) -> int:
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    subtract = any(word in question for word in (" - ", "gives away", "takes"))
    return numbers[0] - numbers[1] if subtract else numbers[0] + numbers[1]


def test_answers_are_correct_and_prompts_ask_for_a_box():
    for row in build_task("arithmetic", "train", 200, seed=1):
        assert int(row["answer"]) == _solve(row["question"])
        assert row["prompt"][0]["content"].endswith("Put the final answer in \\boxed{}.")


def test_seeded_and_splits_disjoint():
    assert build_task("arithmetic", "train", 50, seed=0) == build_task("arithmetic", "train", 50, seed=0)
    assert build_task("arithmetic", "train", 50, seed=0) != build_task("arithmetic", "train", 50, seed=1)
    train = {r["question"] for r in build_task("arithmetic", "train", 400, seed=0)}
    held_out = {r["question"] for r in build_task("arithmetic", "eval", 100, seed=3)}
    assert not train & held_out
    assert all(0 <= int(r["answer"]) <= 18 for r in build_task("arithmetic", "eval", 100))


def test_jsonl_loader_maps_columns_and_templates(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"What is {i} + {i}?", "sol": 2 * i}) for i in range(10)))
    data = DataConfig(
        path=str(path), columns={"answer": "sol"}, template="{q} Box it.", num_eval=2, system_prompt="Be brief."
    )
    train, held_out = load_rows(data)
    assert len(train) == 8 and len(held_out) == 2
    assert train[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert train[0]["prompt"][1]["content"].endswith("? Box it.")
    assert isinstance(train[0]["answer"], str)


def test_template_with_a_missing_column_names_it(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"q": "x"}) + "\n" + json.dumps({"q": "y"}))
    with pytest.raises(ConfigError, match=r"data.template uses \{question\}"):
        load_rows(DataConfig(path=str(path), template="{question}", num_eval=0))


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"prompt": "a"}\nnot json\n')
    with pytest.raises(ConfigError, match="data.jsonl:2: not valid JSON"):
        load_rows(DataConfig(path=str(path)))
