"""Accuracy reward: math-verify equivalence, None for unparsable gold, bounded time on adversarial answers."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.accuracy import DEFAULT_TIMEOUT_S, grade, make_accuracy
from tests.conftest import REPO


@pytest.fixture(scope="module")
def accuracy():
    reward = make_accuracy()
    reward(completions=[r"\boxed{1}"], answer=["x^2"])  # warm math-verify up once for the module
    return reward


EQUIVALENT = [
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
]
# Wrong answers in a box (the boxed ones among the zero-score cases below).
WRONG_BOXED = [("13", "12"), ("x+1", "x+2")]


@pytest.mark.parametrize(("answer", "gold"), EQUIVALENT)
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


# MATH-style (answer, gold) pairs, right and wrong, of the kinds scripts/bench_rewards.py draws.
MATH_STYLE = [
    (r"\frac{3}{4}", r"\frac{3}{4}"),
    (r"x^3+5", r"5+x^3"),
    (r"x^3+5", r"5+x^2"),
    (r"(4,\infty)", r"(4,\infty)"),
    (r"[4,\infty)", r"(4,\infty)"),
    (r"3\sqrt{2}", r"\sqrt{18}"),
    (r"2\sqrt{3}", r"\sqrt{18}"),
    (r"x = 7", "7"),
    (r"\frac{5\pi}{6}", r"\frac{5\pi}{6}"),
    (r"17+4", "21"),
    (r"\{3,8\}", r"\{8,3\}"),
    (r"\{3,9\}", r"\{8,3\}"),
    (r"41 \text{ apples}", "41"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
    (r"y=2x+1", r"y=1+2x"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
]


def _math_verify_in_process(answer: str, gold: str) -> float:
    # The reference: math-verify called directly, the way this reward called it before it had a worker.
    from math_verify import parse, verify

    from rlsurrogate.rewards.accuracy import _extraction_config

    gold_parsed = parse("$" + gold + "$", parsing_timeout=None) or parse(gold, parsing_timeout=None)
    predicted = parse(
        "\\boxed{" + answer + "}",
        extraction_config=_extraction_config(),
        extraction_mode="first_match",
        parsing_timeout=None,
    )
    return float(bool(predicted) and verify(gold_parsed, predicted, timeout_seconds=None))


def test_verdicts_equal_math_verify_called_directly(accuracy):
    cases = MATH_STYLE + [(a, g) for a, g in EQUIVALENT + WRONG_BOXED]
    got = accuracy(completions=[f"so \\boxed{{{a}}}" for a, _ in cases], answer=[g for _, g in cases])
    expected = [_math_verify_in_process(a, g) for a, g in cases]
    assert got == expected
    assert 0 < sum(expected) < len(expected)  # both verdicts occur


def test_an_answer_over_budget_scores_zero_with_one_warning_within_the_budget(accuracy):
    slow = r"((((((x+1))))))"  # admissible (depth 6) but ~0.4 s of math-verify CPU
    start = time.perf_counter()
    with pytest.warns(
        RuntimeWarning, match=r"^\[reward\] accuracy: completion 1 \(answer '\(\(\(\(\(\(x\+1"
    ) as caught:
        scores = accuracy(completions=[r"\boxed{x+1}", f"\\boxed{{{slow}}}", r"\boxed{1+x}"], answer=["1+x"] * 3)
    assert scores == [1.0, 0.0, 1.0]
    assert len([w for w in caught if "[reward]" in str(w.message)]) == 1
    assert time.perf_counter() - start < DEFAULT_TIMEOUT_S + 3.0  # the CPU budget + slack for a loaded 2-core machine
    with pytest.warns(RuntimeWarning, match=r"\[reward\]"):  # not cached: the next one over budget warns too
        assert accuracy(completions=[f"\\boxed{{{slow}}}"], answer=["1+x"]) == [0.0]


def test_slow_answers_print_nothing_on_stderr_but_the_warnings():
    # A fresh process, so that everything the worker and its template could write reaches the captured stderr.
    code = (
        "from rlsurrogate.rewards.accuracy import make_accuracy\n"
        "reward = make_accuracy()\n"
        "slow = [r'\\boxed{((((((x+1))))))}', r'\\boxed{pprint(x)}', r'\\boxed{' + 'x+' * 99 + 'x}']\n"
        "print(reward(completions=slow + [r'\\boxed{x+1}'], answer=['x+1'] * 4))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("1.0]")
    warnings_printed = [line for line in result.stderr.splitlines() if "[reward] accuracy:" in line]
    assert 1 <= len(warnings_printed) <= 3, result.stderr  # ~0.4 s and ~0.2 s of CPU: over budget anywhere
    others = [line for line in result.stderr.splitlines() if line not in warnings_printed and line.strip()]
    # Python prints each warning's source line under it; anything else (a traceback) is a leak.
    assert all(line.startswith(" ") and "Traceback" not in line for line in others), result.stderr
    assert "Exception ignored" not in result.stderr


def test_every_cache_is_bounded():
    import rlsurrogate.rewards.accuracy as module

    caches = [f for f in vars(module).values() if hasattr(f, "cache_info")]
    assert len(caches) >= 6  # golds, answers and verdicts, here and in the worker
    assert all(f.cache_info().maxsize is not None for f in caches)
    for i in range(module._CACHE_SIZE + 100):  # plain numbers: graded here, no worker
        grade(str(i), str(i))
    assert module._unboxed.cache_info().currsize == module._CACHE_SIZE


def test_the_reward_pickles_and_grades_in_another_process(accuracy):
    reward = pickle.loads(pickle.dumps(make_accuracy(timeout_s=0.5)))
    assert reward.timeout_s == 0.5
    with multiprocessing.get_context("fork").Pool(1) as pool:
        scores = pool.apply(reward, kwds={"completions": [r"\boxed{x^2+1}", r"\boxed{3}"], "answer": ["1+x^2", "4"]})
    assert scores == [1.0, 0.0]
