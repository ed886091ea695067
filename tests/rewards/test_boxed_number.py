"""Boxed-number reward: 1 iff the last box holds exactly one plain number."""

from __future__ import annotations

import pytest

from rlsurrogate.rewards.boxed_number import boxed_number_ok, make_boxed_number


@pytest.mark.parametrize("content", ["12", "-3", "+4", "0.5", ".5", "3/4", r"\frac{3}{4}", r"-\dfrac{1}{2}", " 7 "])
def test_plain_numbers_pass(content):
    assert boxed_number_ok(f"answer: \\boxed{{{content}}}")


@pytest.mark.parametrize(
    "content", ["3+4", "x", "x=3", "2x", "1,000", r"\sqrt{2}", "", "(3)", "3 apples", r"\frac{3}{4} + 1", "1e3"]
)
def test_anything_else_fails(content):
    assert not boxed_number_ok(f"answer: \\boxed{{{content}}}")


def test_last_box_decides_and_chat_format_works():
    reward = make_boxed_number()
    chat = [{"role": "assistant", "content": r"\boxed{5}"}]
    completions = [r"\boxed{x} then \boxed{2}", r"\boxed{2} then \boxed{x}", chat, "no box"]
    assert reward(completions=completions) == [1.0, 0.0, 1.0, 0.0]
    assert reward.__name__ == "boxed_number" and reward.version == "1"
