"""Boxed-number reward: 1 iff the last box holds exactly one plain number."""

from __future__ import annotations

import pickle

import pytest

from rlsurrogate.errors import ConfigError
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
    assert reward.__name__ == "boxed_number" and reward.version == "3"


def test_single_box_rejects_boxing_everything_and_partial_credit_bootstraps():
    reward = make_boxed_number(single_box=True, partial_credit=0.2)
    completions = [
        "4 + 7 = \\boxed{11}",  # one box, one number
        "\\boxed{4} + \\boxed{7} = \\boxed{11}",  # boxes everything: partial only
        "The answer is \\boxed{}.",  # an empty box (parroting the prompt): nothing
        "4 + 7 = 11",  # no box
        "\\boxed{4 + 7}",  # a non-empty box that is not a plain number: partial
    ]
    assert reward(completions=completions) == [1.0, 0.2, 0.0, 0.0, 0.2]
    assert make_boxed_number()(completions=completions) == [1.0, 1.0, 0.0, 0.0, 0.0]  # defaults unchanged
    assert pickle.loads(pickle.dumps(reward))(completions=completions) == [1.0, 0.2, 0.0, 0.0, 0.2]
    with pytest.raises(ConfigError, match="boxed_number.partial_credit = 1.5"):
        make_boxed_number(partial_credit=1.5)
