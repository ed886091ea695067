"""SymPy parsing on adversarial answers: bounded time, score 0, no hang, nothing outside the whitelist reached,
any thread, no leaked state."""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlsurrogate.rewards import sympy_guard
from rlsurrogate.rewards.format_length import make_format, make_format_length
from rlsurrogate.rewards.sympy_guard import (
    MAX_DIGITS,
    DeadlineExceeded,
    exponents_bounded,
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
    r"1.5e3",
    r"6.02 \times 10^{23}",
    r"1e9999",
    r"xy(x+y)",
    r"f(x) = x^2",
    r"\gcd(12, 18)",
    r"\max(a, b)",
    r"\arcsin x",
    r"S_n = n^2",
    r"5 \text{ N}",
    r"O(n^2)",
    r"\log_2 3",
    r"3 \text{ cm}",
    r"E_1 + E_2",
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
    "a//b",
    "1<<3",
    r"\ln",
    r"2\sin",
    r"\sin!",
    r"\sin(\sin)",
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
    # Number literals SymPy would convert in C while parsing, before any check (1e999999 took 22 s).
    "1e999999999",
    "1e-9999999",
    "1e999999",
    "1E+999999999",
    "1.5E999999999",
    ".5e999999999",
    "1e999999999j",
    "10^{999999999}",
    "10**999999999",
    r"1 \times 10^{+999999999}",
    r"-10^{999999999}",
    # Eager SymPy code a whole-namespace parse reaches: a 6 GB shift, a gcd of 2^(10^9) (minutes each).
    "1<<99999999999",
    r"\gcd(2^{999999999}, 3)",
]
# SymPy and Python names outside the whitelist: a whole-namespace parse (the official code's) calls them; doctest()
# ran SymPy's test suite, pprint(x) printed to the trainer's stdout.
FORBIDDEN_CALLS = [
    "doctest()",
    "pprint(x)",
    "test()",
    "var(x)",
    "symbols(x)",
    "init_printing()",
    "init_session()",
    "exec(1)",
    "eval(1)",
    "print(1)",
    "__import__('os')",
    "__import__('os').system('true')",
    "x.__class__",
    "x.__class__.__bases__",
    "(1).__class__",
    "Integer(5)",
    "Float(1, 999999999)",
    "Symbol(x)",
    "Function(x)(1)",
    "Flo_at(1, 999999999)",
    "2doctest(x)",
    "Interval(0, 1)",
    "solve(x - 1)",
    "simplify(x)",
    "lambdify(x, x)",
    "srepr(x)",
    "preview(x)",
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


@pytest.mark.parametrize("latex", FORBIDDEN_CALLS)
def test_names_outside_the_whitelist_are_invalid_and_never_called(latex, monkeypatch, capsys):
    import sympy

    called = []
    for name in ("doctest", "pprint", "test", "var", "symbols", "init_printing", "init_session", "preview"):
        monkeypatch.setattr(sympy, name, lambda *a, _name=name, **k: called.append(_name), raising=False)
    sympy_guard._namespace.cache_clear()  # rebuilt from the patched module: still nothing of it reachable
    try:
        assert not is_valid_math(latex)
        assert safe_parse(latex) is None
    finally:
        sympy_guard._namespace.cache_clear()
        sympy_guard._is_valid_cached.cache_clear()
    assert called == [] and capsys.readouterr().out == ""


def test_namespace_is_an_explicit_whitelist():
    namespace = sympy_guard._namespace()
    assert namespace.global_dict["__builtins__"] == {}
    assert len(namespace.global_dict) < 100  # SymPy exports about 900 names
    assert {"doctest", "pprint", "var", "symbols", "exec", "eval", "open", "Interval"}.isdisjoint(
        namespace.global_dict
    )
    # The parser's own constructors are there for the code it generates; an answer naming one is refused.
    assert {"Integer", "Float", "Symbol", "Function", "Pow"} <= namespace.global_dict.keys() & namespace.reserved
    assert {"doctest", "pprint", "var", "symbols", "Interval", "lambdify", "init_printing"} <= namespace.reserved
    assert {"sin", "sqrt", "pi", "gcd", "alpha", "x", "S", "N"}.isdisjoint(namespace.reserved)


@pytest.mark.parametrize("exponent", [str(MAX_DIGITS - 10), str(MAX_DIGITS + 10), "999999999", "0" * 900 + "5"])
@pytest.mark.parametrize("template", ["1e{}", "1E+{}", "1.5e-{}", "2.0E{}", ".5e{}"])
def test_literal_exponents_are_bounded_before_sympy(template, exponent):
    latex = template.format(exponent)
    start = time.perf_counter()
    assert is_valid_math(latex) == (int(exponent) <= MAX_DIGITS)
    assert time.perf_counter() - start < 1.0  # within the bound SymPy's Float takes milliseconds
    assert exponents_bounded(latex) == (int(exponent) <= MAX_DIGITS)


def test_exponents_bounded_sees_through_latex_spacing():
    assert exponents_bounded(r"1.5\times 10^{30}") and exponents_bounded("e^{999999999}")
    assert exponents_bounded("2e5") and exponents_bounded(f"1E+{MAX_DIGITS}")
    for latex in ["1E+999999999", r"1E\!99999999", r"1{,}5E99999999", r"x^{1E99999999}", "$1e-99999999$"]:
        assert not exponents_bounded(latex), latex


# Pieces of answers, right or wrong, that steer random text into the guard's corners: LaTeX commands, whitelisted
# and reserved names, operators inside and outside the grammar, unbalanced brackets, literals with exponents.
PIECES = (
    r"""
    \frac{ }{ } { ( ) [ ] \{ \} \sqrt{ \sqrt[ ^ ^{ _ _{ ! = < \le + - * / // << . , | & \cdot \times \pi \infty \sin
    \ln \log \binom{ \gcd \max \alpha \! x y e i E N S O xy f( sin( sqrt( doctest( pprint( var( Integer( __ ' lambda
    9 10 0.5 .5 0x1F 2j
""".split()
    + [r"\text{ cm}", '"', " ", "\n", "\x00", "\u00e9", "\u2003"]
)
LITERALS = st.builds(
    "{}{}{}".format,
    st.sampled_from(["1", "2.5", ".5", "9"]),
    st.sampled_from(["e", "E", "e+", "E-"]),
    st.integers(0, 10**12),
)
MATH_PIECES = st.sampled_from(PIECES) | LITERALS
MATH_TEXT = st.lists(MATH_PIECES, max_size=25).map("".join)
ANY_TEXT = st.text(max_size=60)


@settings(max_examples=200, deadline=2000)
@given(content=MATH_TEXT | ANY_TEXT)
def test_random_boxed_content_never_raises_and_scores_in_range(content):
    completion = "so \\boxed{" + content + "}"
    start = time.perf_counter()
    valid = is_valid_math(content)
    assert isinstance(valid, bool)
    assert make_format()(completions=[completion]) in ([0.0], [1.0])
    (value,) = make_format_length(max_length=8)(completions=[completion], completion_ids=[[0] * 4])
    assert -1.0 <= value <= 2.0
    assert time.perf_counter() - start < 1.0  # generous: each parse has a 50 ms CPU budget


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


def test_time_limit_never_raises_where_the_exception_would_be_dropped(monkeypatch):
    # An exception raised while a generator is being closed (or in a finaliser) goes to sys.unraisablehook
    # ("Exception ignored in: <generator ...>" on stderr) and is lost. Here nearly every call after the deadline
    # happens inside a generator's close(); the deadline waits for the next safe call instead.
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def plain(i):
        return i + 1

    def numbers():
        try:
            yield 1
        finally:
            for i in range(200):
                plain(i)

    class Finalised:
        def __del__(self):
            plain(0)

    def slow():
        while True:
            generator = numbers()
            next(generator)
            del generator  # closed here, inside the block
            Finalised()
            plain(0)  # the one safe call per round

    for _ in range(5):
        start = time.perf_counter()
        with pytest.raises(DeadlineExceeded):
            with time_limit(0.02):
                slow()
        assert time.perf_counter() - start < 5
    gc.collect()
    assert unraisable == []
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
