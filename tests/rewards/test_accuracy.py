"""Accuracy reward: math-verify equivalence, None for unparsable gold, bounded time on adversarial answers."""

from __future__ import annotations

import threading
import time

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.accuracy import grade, make_accuracy


@pytest.fixture(scope="module")
def accuracy():
    reward = make_accuracy()
    reward(completions=[r"\boxed{1}"], answer=["x^2"])  # warm math-verify up once for the module
    return reward


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("12", "12"),
        (r"\frac{24}{2}", "12"),
        ("12.0", "12"),
        ("0.5", r"\frac12"),
        (r"x^2+1", "1+x^2"),
        (r"(0,\infty)", r"(0, \infty)"),
        (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}"),
        ("2^{10}", "1024"),
        (r"\{1,2\}", r"\{2,1\}"),
        ("x=5", "5"),
    ],
)
def test_equivalent_answers_score_one(accuracy, answer, gold):
    assert accuracy(completions=[f"so \\boxed{{{answer}}}"], answer=[gold]) == [1.0]


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        (r"\boxed{13}", "12"),
        ("12", "12"),
        (r"\boxed{12", "12"),
        (r"\boxed{x+1}", "x+2"),
        (r"\boxed{}", "3"),
        (r"<think>\boxed{12}</think> I give up", "12"),
        (r"\boxed{12} wait \boxed{13}", "12"),
    ],
)
def test_wrong_or_missing_answers_score_zero(accuracy, completion, gold):
    assert accuracy(completions=[completion], answer=[gold]) == [0.0]


def test_unparsable_gold_gives_none(accuracy):
    assert accuracy(completions=[r"\boxed{1}", r"\boxed{1}"], answer=["", None]) == [None, None]


def test_chat_completions_and_boxed_gold(accuracy):
    completions = [[{"role": "assistant", "content": r"\boxed{7}"}], [{"role": "assistant", "content": "7"}]]
    assert accuracy(completions=completions, answer=[r"\boxed{7}", "7"]) == [1.0, 0.0]


def test_answer_column_is_configurable_and_missing_column_is_named():
    reward = make_accuracy(answer_column="solution")
    assert reward(completions=[r"\boxed{3}"], solution=["3"]) == [1.0]
    with pytest.raises(KeyError, match="solution"):
        reward(completions=[r"\boxed{3}"], answer=["3"])


@pytest.mark.parametrize(
    "answer", [r"9^{9^{9^{9}}}", r"100000!", r"2^{10^{10}}", r"\binom{10^{100}}{10^{50}}", "9^" * 400 + "9", "1" * 999]
)
def test_adversarial_answers_score_zero_within_budget(accuracy, answer):
    start, cpu_start = time.perf_counter(), time.thread_time()
    assert accuracy(completions=[f"\\boxed{{{answer}}}"], answer=["12"]) == [0.0]
    assert time.thread_time() - cpu_start < 0.15 and time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "answer",
    [
        "1E+999999999",
        "1E99999999",
        "1.5E999999999",
        r"1E\!99999999",
        r"1{,}5E99999999",
        r"x^{1E99999999}",
        "1e999999999",
        "1e-9999999",
        "10^{999999999}",
    ],
)
def test_huge_exponents_score_zero_before_math_verify_builds_them(accuracy, answer):
    # math-verify's grammar reads `1E+999999999` as one number and SymPy converts it in C (minutes, no deadline).
    start = time.perf_counter()
    assert accuracy(completions=[f"\\boxed{{{answer}}}"], answer=["12"]) == [0.0]
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("answer", ["doctest()", "pprint(x)", "__import__('os')", "x.__class__", "init_printing()"])
def test_code_in_answers_scores_zero_and_prints_nothing(accuracy, answer, capsys):
    assert accuracy(completions=[f"\\boxed{{{answer}}}"], answer=["12"]) == [0.0]
    assert capsys.readouterr().out == ""


def test_ordinary_scientific_notation_is_still_graded(accuracy):
    assert accuracy(completions=[r"\boxed{1.5E+3}"], answer=["1500"]) == [1.0]


def test_grade_is_exact_for_plain_numbers():
    assert grade("1/3", "0.333") == 0.0  # exact comparison: no float rounding
    assert grade(r"\frac{2}{6}", "1/3") == 1.0
    assert grade("-4", "-4.0") == 1.0


def test_works_from_a_thread(accuracy):
    out = []
    thread = threading.Thread(
        target=lambda: out.append(
            accuracy(completions=[r"\boxed{x^2+1}", r"\boxed{9^{9^{9}}}"], answer=["1+x^2", "3"])
        )
    )
    thread.start()
    thread.join(timeout=30)
    assert out == [[1.0, 0.0]]


def test_bad_params():
    with pytest.raises(ConfigError, match="answer_column"):
        make_accuracy(answer_column="")
    with pytest.raises(ConfigError, match="timeout_s"):
        make_accuracy(timeout_s=0)
