"""Task metrics (known values), built-in tasks and JSONL loading."""

from __future__ import annotations

import json

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.tasks import TASKS, contains, exact_match, f1, load_task


@pytest.mark.parametrize(
    ("pred", "target", "case_sensitive", "expected"),
    [
        (" Cold.", "cold", False, 1.0),
        ("cold\nmore text", "cold", False, 1.0),  # only the first line counts
        ("COLD", "cold", True, 0.0),
        ('"warm"', "cold", False, 0.0),
    ],
)
def test_exact_match(pred, target, case_sensitive, expected):
    assert exact_match(pred, target, case_sensitive) == expected


def test_contains_needs_whole_words_in_order():
    assert contains("The answer is COLD!", "cold") == 1.0
    assert contains("coldness", "cold") == 0.0
    assert contains("apple pie tasty", "apple pie") == 1.0
    assert contains("pie apple", "apple pie") == 0.0
    assert contains("APPLE", "APPLE", case_sensitive=True) == 1.0
    assert contains("apple", "APPLE", case_sensitive=True) == 0.0


def test_a_leading_output_label_is_not_part_of_the_answer():
    assert exact_match("Output: animal", "animal") == 1.0
    assert exact_match("answer: 42\nmore", "42") == 1.0
    assert contains("Output: the answer is cold", "cold") == 1.0
    assert f1("Output: apple pie", "apple pie") == 1.0
    assert exact_match("The output: animal", "animal") == 0.0  # only a leading label is dropped


def test_f1_against_hand_computed_values():
    assert f1("red apple pie", "apple pie") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1("table yellow butter", "butter yellow table") == 1.0  # bag of tokens
    assert f1("nothing", "apple") == 0.0
    assert f1("", "") == 1.0


@pytest.mark.parametrize("name", TASKS.names())
def test_builtin_tasks_split_deterministically_and_disjointly(name):
    task = load_task(name)
    demo, val, test = task.split()
    assert (len(demo), len(val)) == (task.n_demo, task.n_val)
    assert demo + val + test == load_task(name).split()[0] + load_task(name).split()[1] + load_task(name).split()[2]
    ids = [id(e) for e in demo + val + test]
    assert len(ids) == len(set(ids)) == len(task.examples)
    for e in task.examples:  # the reference answer scores 1 under the task's own metric
        assert task.score(e.output, e.output) == 1.0


def test_load_task_overrides_and_validates():
    assert load_task("antonyms", n_val=5).split()[1].__len__() == 5
    with pytest.raises(ConfigError, match="n_demo \\+ n_val"):
        load_task("antonyms", n_val=1000)
    with pytest.raises(ConfigError, match="Did you mean"):
        load_task("antonym")


def test_jsonl_task(tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_text("\n".join(json.dumps({"input": f"w{i}", "output": f"W{i}"}) for i in range(12)) + "\n")
    task = load_task(str(path), metric="f1", n_demo=4, n_val=4)
    assert (task.name, task.metric, len(task.examples)) == ("caps", "f1", 12)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a"}\nnot json\n')
    with pytest.raises(ConfigError) as err:
        load_task(str(bad))
    assert "bad.jsonl:1" in str(err.value) and "bad.jsonl:2" in str(err.value)
