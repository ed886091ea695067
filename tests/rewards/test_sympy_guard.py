"""SymPy parsing on adversarial answers: bounded time, score 0, no hang, any thread, no leaked state."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from rlsurrogate.rewards.sympy_guard import (
    DeadlineExceeded,
    is_valid_math,
    latex_to_sympy_text,
    safe_parse,
    time_limit,
)

VALID = [
    r"1",
    r"-3.5",
    r"\frac{3}{2}",
    r"x^2 + 12y =1",
    r"(0,\infty)",
    r"\sqrt{2}",
    r"\sqrt[3]{x}",
    r"\dfrac12",
    r"2\pi r",
    r"[0,1)",
    r"\{1,2\}",
    r"\binom{10}{3}",
    r"1000!",
    r"2^{1000}",
    r"x \le 3",
    r"a_{1}+a_2",
    r"e^{i\pi}",
    r"3 \times 4",
    r"10^\circ",
    r"50\%",
    r"\alpha+\beta",
    r"\lambda",
    r"\sin x",
    r"\binom{10^9}{5}",
]
INVALID = [
    r"",
    r"   ",
    r"x +* 2",
    r"(0,1 ",
    r"\frac{1}",
    r"x \in (0,1)",
    "__import__('os')",
    "().__class__",
    "lambda: 1",
    "'a'",
    "x.real",
    r"\begin{pmatrix}1\\2\end{pmatrix}",
]
# Each would take minutes or exhaust memory if evaluated (Python big-int power, factorial, binomial).
ADVERSARIAL = [
    r"9^9^9^9",
    r"9^{9^{9^{9}}}",
    r"9**9**9**9",
    r"100000!",
    r"(10^{10})!",
    r"2^{10^{10}}",
    r"\binom{10^{100}}{10^{50}}",
    r"x^{9^{9^9}}",
    r"10^{10^{10}} + 1",
    "1" * 5000,
    "(" * 300 + ")" * 300,
    r"\frac{" * 400 + "1" + "}{2}" * 400,
    "9^" * 400 + "9",
    "1" * 1_000_000,
]


@pytest.mark.parametrize("latex", VALID)
def test_valid_answers(latex):
    assert is_valid_math(latex), latex_to_sympy_text(latex)


@pytest.mark.parametrize("latex", INVALID)
def test_invalid_answers(latex):
    assert not is_valid_math(latex)


@pytest.mark.parametrize("latex", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answers_score_zero_quickly(latex):
    is_valid_math("1")  # SymPy imported before timing
    start, cpu_start = time.perf_counter(), time.thread_time()
    assert not is_valid_math(latex)
    # The budget is CPU time (the test machine is shared); wall time only has to show that nothing hangs.
    assert time.thread_time() - cpu_start < 0.1
    assert time.perf_counter() - start < 1.0


def test_parse_does_not_evaluate():
    expr = safe_parse(r"2^{10}")
    assert expr is not None and str(expr) == "2**10"  # kept as written


def test_works_in_threads_without_leaking_evaluate_or_tracer():
    from sympy import Integer

    results = {}

    def work(name):
        results[name] = [is_valid_math(s) for s in VALID + INVALID + ADVERSARIAL[:6]]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    expected = [True] * len(VALID) + [False] * (len(INVALID) + 6)
    assert all(results[i] == expected for i in range(3))
    assert sys.gettrace() is None
    assert Integer(2) ** 3 == 8 and (Integer(2) ** 3).is_Integer  # evaluation still on here


def test_time_limit_interrupts_slow_python_code_in_a_thread():
    outcome = []

    def slow():
        def step(i):
            return i + 1

        try:
            with time_limit(0.05):
                i = 0
                while True:
                    i = step(i)
        except DeadlineExceeded:
            outcome.append(sys.gettrace())

    thread = threading.Thread(target=slow)
    start = time.perf_counter()
    thread.start()
    thread.join(timeout=10)
    assert outcome == [None] and time.perf_counter() - start < 5


def test_time_limit_is_not_swallowed_by_except_exception():
    def stubborn():
        while True:
            try:
                (lambda: None)()
            except Exception:  # library code that swallows errors must not swallow the deadline
                pass

    with pytest.raises(DeadlineExceeded):
        with time_limit(0.05):
            stubborn()
    assert sys.gettrace() is None


def test_time_limit_leaves_an_existing_tracer_alone():
    def tracer(frame, event, arg):
        return None

    sys.settrace(tracer)
    try:
        with time_limit(0.0):
            (lambda: None)()  # no deadline enforced under a foreign tracer
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)


def test_normalisation_examples():
    assert latex_to_sympy_text(r"\frac{3}{2}") == "((3)/(2))"
    assert latex_to_sympy_text(r"x^2 + 12y =1") == "x**2 + 12y ==1"
    assert latex_to_sympy_text(r"x \ne 1") == "x != 1"
    assert latex_to_sympy_text(r"(0,\infty)") == "(0,oo)"
