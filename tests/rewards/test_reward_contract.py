"""The contract every reward keeps, built-in or plug-in: TRL's signature, one float (or None) per completion in the
reward's range, plain-text and chat completions alike, picklable, and never raising on random text."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlsurrogate.rewards import build_reward, check_reward_output

REPO = Path(__file__).resolve().parents[2]
# (spec, params, lowest value, highest value, may return None)
CASES = [
    ("format", {}, 0.0, 1.0, False),
    ("length", {"max_length": 16}, -1.0, 1.0, False),
    ("length", {"max_length": 16, "shape": "polyline"}, -1.0, 1.0, False),
    ("format_length", {"max_length": 16}, -1.0, 2.0, False),
    ("format_length", {"max_length": 16, "w_fmt": 0.5, "p": 0.3}, -1.0, 1.5, False),
    ("accuracy", {}, 0.0, 1.0, True),
    ("boxed_number", {}, 0.0, 1.0, False),
    ("majority_vote", {}, 0.0, 2.0, False),
    ("rewards/exact_answer.py:exact_answer", {}, 0.0, 1.0, False),
    ("rewards/keywords.py:make_keyword_reward", {"keywords": ["total", "answer", "\\boxed"]}, 0.0, 1.0, False),
]
# Its numbers ground the equation `3 + 4 = 7` for majority_vote.
QUESTION = "What is 3 + 4?"
IDS = [f"{spec}{'-' + '-'.join(map(str, p.values())) if p else ''}" for spec, p, *_ in CASES]

# Fragments that steer random text into the parsers' interesting corners.
FRAGMENTS = [
    "\\boxed{",
    "}",
    "{",
    "</think>",
    "<think>",
    "\\frac{",
    "^",
    "9",
    "!",
    "=",
    "x",
    "12",
    "-",
    ".",
    "/",
    "\\sqrt",
    "(",
    ")",
    "[",
    "]",
    "\\infty",
    "\\",
    " ",
    "\n",
    "total",
    "answer",
    "**",
    "_",
    "'",
    "$",
    "\\{",
]
TEXT = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=30).map("".join)
GOLD = st.sampled_from(["12", "-3", "\\frac{1}{2}", "x^2+1", "", "(0,\\infty)"]) | st.text(max_size=6)


@pytest.fixture(scope="module")
def rewards():
    import os

    cwd = os.getcwd()
    os.chdir(REPO)  # plug-ins are referenced by paths relative to the repository root
    try:
        return [build_reward(spec, params) for spec, params, *_ in CASES]
    finally:
        os.chdir(cwd)


def _call(reward, completions, answers, conversational):
    ids = [list(range(len(c) % 17)) for c in completions]  # token ids stand-in: lengths 0..16 (L_max = 16)
    if conversational:
        completions = [[{"role": "assistant", "content": c}] for c in completions]
        prompts = [[{"role": "user", "content": QUESTION}] for _ in completions]
    else:
        prompts = [QUESTION] * len(completions)
    return reward(
        prompts=prompts,
        completions=completions,
        completion_ids=ids,
        answer=answers,
        trainer_state=None,
        extra_column=[0] * len(completions),
    )


def _check(case, reward, values, n):
    _, _, low, high, may_be_none = case
    check_reward_output(reward.__name__, values, n, None, None)
    for v in values:
        assert (v is None and may_be_none) or (isinstance(v, float) and low <= v <= high), v


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.tuples(TEXT, GOLD), min_size=1, max_size=4), conversational=st.booleans())
def test_random_text_never_raises_and_stays_in_range(rewards, index, data, conversational):
    completions, answers = [c for c, _ in data], [g for _, g in data]
    values = _call(rewards[index], completions, answers, conversational)
    _check(CASES[index], rewards[index], values, len(data))


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_plain_and_chat_formats_score_the_same(rewards, index):
    completions = [
        "I think \\boxed{12}",
        "total answer \\boxed{x^2}",
        "nothing",
        "\\boxed{-3}" + " pad" * 5,
        "3 + 4 = 7",
        "3 + 4 = 7. \\boxed{7}",
    ]
    answers = ["12", "x^2", "1", "-3", "7", "7"]
    plain = _call(rewards[index], completions, answers, conversational=False)
    chat = _call(rewards[index], completions, answers, conversational=True)
    assert plain == chat
    _check(CASES[index], rewards[index], plain, len(completions))
    assert len(set(plain)) > 1, "the examples should tell completions apart"


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_picklable_with_stable_name_and_version(rewards, index):
    reward = rewards[index]
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == reward.__name__ and isinstance(reward.version, str) and reward.version
    completions, answers = ["\\boxed{12}", "x"], ["12", "12"]
    assert _call(clone, completions, answers, False) == _call(reward, completions, answers, False)


def test_builtin_names_are_the_registry_names(rewards):
    assert [r.__name__ for r in rewards[:7]] == [
        "format",
        "length",
        "length",
        "format_length",
        "format_length",
        "accuracy",
        "boxed_number",
    ]
