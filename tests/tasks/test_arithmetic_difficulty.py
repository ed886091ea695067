"""The arithmetic task's difficulty mix: digits drawn by weight, answers correct, the default task unchanged."""

from __future__ import annotations

import collections
import re

import pytest

from rlsurrogate.tasks import build_task
from rlsurrogate.tasks.arithmetic import arithmetic


def _solve(question: str) -> int:
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    subtract = any(word in question for word in (" - ", "gives away", "takes"))
    return numbers[0] - numbers[1] if subtract else numbers[0] + numbers[1]


def test_mixed_task_draws_every_difficulty_with_correct_answers():
    rows = build_task("arithmetic_mixed", "train", 300, seed=2)
    counts = collections.Counter(row["digits"] for row in rows)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 60  # equal thirds, loosely
    for row in rows:
        operands = [int(n) for n in re.findall(r"\d+", row["question"])]
        assert int(row["answer"]) == _solve(row["question"]) >= 0
        assert len(str(min(operands))) == row["digits"]  # the smaller operand has exactly d digits


def test_weights_steer_the_mix_and_a_zero_weight_never_appears():
    rows = arithmetic("train", 200, seed=0, difficulty={1: 0.0, 3: 1.0})
    assert {row["digits"] for row in rows} == {3}
    easy = arithmetic("train", 400, seed=0, difficulty={1: 9.0, 2: 1.0})
    share = sum(row["digits"] == 1 for row in easy) / len(easy)
    assert 0.8 < share < 0.97


def test_without_difficulty_the_task_is_unchanged():
    plain = arithmetic("train", 50, seed=4)
    assert all("digits" not in row for row in plain)
    assert all(0 <= int(row["answer"]) <= 18 for row in plain)
    assert plain == build_task("arithmetic", "train", 50, seed=4)


def test_splits_stay_disjoint_with_a_mix():
    train = {r["question"] for r in build_task("arithmetic_mixed", "train", 300, seed=0)}
    held_out = {r["question"] for r in build_task("arithmetic_mixed", "eval", 100, seed=0)}
    assert not train & held_out


@pytest.mark.parametrize(
    "difficulty, message",
    [
        ({}, "must map digits to weights"),
        ({0: 1.0}, "number of digits in 1-6"),
        ({7: 1.0}, "number of digits in 1-6"),
        ({1: -1.0}, "finite weight >= 0"),
        ({1: float("nan")}, "finite weight >= 0"),
        ({1: 0.0, 2: 0.0}, "at least one weight must be > 0"),
    ],
)
def test_bad_difficulty_is_one_clear_line(difficulty, message):
    with pytest.raises(ValueError, match=message):
        arithmetic("train", 5, difficulty=difficulty)
