"""Answer extraction: completion text in both TRL formats, the last brace-matched box, plain numbers."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from rlsurrogate.rewards.boxed import MAX_BOXED_CHARS, completion_text, last_boxed, parse_plain_number


def test_completion_text_plain_and_chat():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]) == "x"
    assert completion_text({"role": "assistant", "content": "d"}) == "d"
    assert completion_text(None) == "" and completion_text([]) == ""
    assert completion_text([{"role": "assistant"}]) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{12}", "12"),
        (r"a \boxed{1} b \boxed{2} c", "2"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{{a}{b}}", "{a}{b}"),
        (r"\boxed {7}", "7"),
        (r"\boxed{}", ""),
        (r"no box", None),
        (r"\boxed{12", None),  # truncated completion: the last box never closes
        (r"\boxed{1} then \boxed{2", None),  # the LAST box counts, even when broken (as the official code)
        (r"\boxed 5", None),
        (r"<think>\boxed{1}</think> so \boxed{2}", "2"),
        (r"<think>\boxed{1}</think> no answer", None),
        (r"</think>a</think>\boxed{3}", "3"),
        ("\\boxed{a}}", "a"),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_last_boxed_matches_naive_brace_matcher_on_nested_boxes():
    def naive(text):
        start = text.rfind("\\boxed")
        if start < 0 or text[start + 6 : start + 7] != "{":
            return None
        depth = 0
        for i in range(start + 6, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + 7 : i]
        return None

    for text in [r"\boxed{a{b{c}}d}", r"x\boxed{}{}", r"\boxed{\boxed{1}}", r"\boxed{{}{{}}}z", r"\boxed{}}}}"]:
        assert last_boxed(text) == naive(text)


def test_box_longer_than_limit_counts_as_missing():
    assert last_boxed("\\boxed{" + "1" * (MAX_BOXED_CHARS - 1) + "}") == "1" * (MAX_BOXED_CHARS - 1)
    assert last_boxed("\\boxed{" + "1" * (MAX_BOXED_CHARS + 10) + "}") is None


def test_one_megabyte_completion_is_fast():
    huge = "x" * 1_000_000 + "\\boxed{" + "{" * 500_000
    start = time.perf_counter()
    assert last_boxed(huge) is None
    assert last_boxed("{" * 1_000_000 + "\\boxed{3}") == "3"
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", Fraction(12)),
        ("-3", Fraction(-3)),
        ("+4", Fraction(4)),
        (" 7 ", Fraction(7)),
        ("0.5", Fraction(1, 2)),
        (".25", Fraction(1, 4)),
        ("3.", Fraction(3)),
        ("3/4", Fraction(3, 4)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        (r"-\dfrac{1}{3}", Fraction(-1, 3)),
        (r"\tfrac{2}{4}", Fraction(1, 2)),
        ("- 2", Fraction(-2)),
    ],
)
def test_parse_plain_number_accepts(text, value):
    assert parse_plain_number(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "3+4",
        "1,000",
        "1e5",
        "2x",
        "3/0",
        r"\frac{1}{x}",
        "--1",
        "1/2/3",
        r"\sqrt{4}",
        "(3)",
        "3 4",
        "1" * 300,
    ],
)
def test_parse_plain_number_rejects(text):
    assert parse_plain_number(text) is None
