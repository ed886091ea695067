"""Format-Length rewards (arXiv 2505.19439 §2): the properties of METHODS.md §2.5 and the paper's examples."""

from __future__ import annotations

import pickle
import time
import warnings

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.format_length import (
    format_length_reward,
    format_ok,
    length_reward,
    make_format,
    make_format_length,
    make_length,
)

PS = [0.1, 0.25, 0.4, 0.5, 0.6, 0.8, 0.9]
GRID = [i / 1000 for i in range(1001)]

# App. A.8: valid and invalid boxed answers.
PAPER_VALID = [r"\boxed{1}", r"\boxed{\frac{3}{2}}", r"\boxed{x^2 + 12y =1}", r"\boxed{(0,\infty)}"]
PAPER_INVALID = [r"\boxed{}", r"\boxed{x +* 2}", r"\boxed{(0,1 }"]


def naive_length_reward(x, p):
    # METHODS.md §2.4 pseudo-code, written independently of the implementation.
    x = min(1.0, max(0.0, x))
    if x <= p:
        return 1 - (1 - x / p) ** 2
    return 1 - 2 * ((x - p) / (1 - p)) ** 2


@pytest.mark.parametrize("p", PS)
def test_length_reward_anchor_values(p):
    assert length_reward(0.0, p) == pytest.approx(0.0, abs=1e-12)
    assert length_reward(p, p) == pytest.approx(1.0, abs=1e-12)
    assert length_reward(1.0, p) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("p", PS)
def test_length_reward_is_continuous_with_zero_slope_at_p(p):
    h = 1e-6
    left, right = length_reward(p - h, p), length_reward(p + h, p)
    assert abs(left - right) < 1e-5
    # One-sided difference quotients vanish like h * curvature (C1 at p); a kink would leave them O(1).
    tolerance = 10 * h / min(p, 1 - p) ** 2
    assert abs((length_reward(p, p) - left) / h) < tolerance
    assert abs((right - length_reward(p, p)) / h) < tolerance


@pytest.mark.parametrize("p", PS)
def test_length_reward_monotone_with_unique_maximum_at_p(p):
    values = [length_reward(x, p) for x in GRID]
    peak = max(range(len(GRID)), key=values.__getitem__)
    assert abs(GRID[peak] - p) <= 1e-3
    assert sum(v == values[peak] for v in values) == 1
    assert all(a <= b for a, b in zip(values[: peak + 1], values[1 : peak + 1]))
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1 :]))
    assert all(-1.0 <= v <= 1.0 for v in values)


@pytest.mark.parametrize("p", PS)
def test_length_reward_matches_naive_reference(p):
    for x in GRID + [-0.5, 1.5, 3.0]:
        assert length_reward(x, p) == pytest.approx(naive_length_reward(x, p), abs=1e-12)


def test_length_reward_clamps_outside_unit_interval():
    assert length_reward(2.0) == length_reward(1.0) == -1.0
    assert length_reward(-1.0) == length_reward(0.0) == 0.0


def test_polyline_matches_eq4_and_is_continuous_only_at_half():
    assert [length_reward(x, 0.5, "polyline") for x in (0.0, 0.25, 0.5, 0.75, 1.0)] == [0.0, 0.5, 1.0, 0.0, -1.0]
    for p in PS:
        h = 1e-9
        jump = abs(length_reward(p + h, p, "polyline") - length_reward(p, p, "polyline"))
        assert (jump < 1e-6) == (p == 0.5), p


@pytest.mark.parametrize("completion", PAPER_VALID)
def test_paper_valid_examples(completion):
    assert format_ok("Reasoning... so the answer is " + completion + ".")


@pytest.mark.parametrize("completion", PAPER_INVALID)
def test_paper_invalid_examples(completion):
    assert not format_ok("Reasoning... so the answer is " + completion + ".")


@pytest.mark.parametrize(
    "content",
    [
        "1e999999999",
        "1e-9999999",
        "1e999999",
        "1E+999999999",
        "10^{999999999}",
        "doctest()",
        "pprint(x)",
        "init_printing()",
        "__import__('os')",
        "x.__class__",
        "1<<99999999999",
    ],
)
def test_answers_that_hung_or_ran_code_are_format_errors(content, capsys):
    # A whole-namespace parse spends seconds to minutes on each, or runs SymPy code (doctest() runs its test suite).
    completion = f"so \\boxed{{{content}}}"
    start = time.perf_counter()
    assert make_format()(completions=[completion]) == [0.0]
    assert make_format_length(max_length=8)(completions=[completion], completion_ids=[[0] * 4]) == [0.0]
    assert time.perf_counter() - start < 1.0
    assert capsys.readouterr().out == ""


def test_last_box_wins_and_think_block_is_skipped():
    assert format_ok(r"\boxed{x +* 2} no wait: \boxed{3}")
    assert not format_ok(r"\boxed{3} no wait: \boxed{x +* 2}")
    assert not format_ok(r"<think>\boxed{3}</think> the answer is 3")  # the box is inside the reasoning
    assert format_ok(r"<think>\boxed{x +* }</think> \boxed{3}")


def test_format_ok_accepts_chat_messages():
    assert format_ok([{"role": "assistant", "content": r"\boxed{\frac{3}{2}}"}])
    assert not format_ok([{"role": "assistant", "content": "no box"}])


@pytest.mark.parametrize("w_fmt", [1.0, 0.5])
def test_format_length_sign_properties(w_fmt):
    for x in GRID[::10]:
        r_l = length_reward(x)
        bad = format_length_reward(False, r_l, w_fmt)
        good = format_length_reward(True, r_l, w_fmt)
        assert bad <= 0.0 and bad == min(0.0, r_l)
        assert good == pytest.approx(w_fmt + r_l)
        assert good >= w_fmt - 1.0
        if w_fmt == 1.0:
            assert good >= 0.0  # METHODS.md §2.5: R_fl >= 0 whenever the format holds (paper's w_fmt)
    assert format_length_reward(True, -1.0, 0.5) == -0.5  # the official code's weight can go negative


def test_format_length_reward_end_to_end_uses_token_counts():
    reward = make_format_length(max_length=8)
    completions = [r"\boxed{1}", r"\boxed{1}", r"\boxed{1}", "no box", "no box", r"\boxed{x +* 2}"]
    ids = [[0] * n for n in (0, 4, 8, 4, 8, 6)]
    expected = [1.0 + 0.0, 1.0 + 1.0, 1.0 - 1.0, 0.0, -1.0, min(0.0, length_reward(6 / 8))]
    assert reward(prompts=["q"] * 6, completions=completions, completion_ids=ids) == pytest.approx(expected)
    assert make_length(max_length=8)(completions=completions, completion_ids=ids) == pytest.approx(
        [length_reward(len(i) / 8) for i in ids]
    )
    assert make_format()(completions=completions) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_official_code_weight_and_polyline_shape_are_used():
    ids = [[0] * 4]
    assert make_format_length(max_length=8, w_fmt=0.5)(completions=[r"\boxed{2}"], completion_ids=ids) == [1.5]
    reward = make_format_length(max_length=8, shape="polyline")
    assert reward(completions=[r"\boxed{2}"], completion_ids=[[0] * 6]) == [1.0 + (3 - 4 * 0.75)]


def test_length_rewards_need_completion_ids():
    with pytest.raises(TypeError, match="completion_ids"):
        make_length(max_length=8)(completions=["a"])


def test_names_versions_and_pickling():
    for reward, name in (
        (make_format(), "format"),
        (make_length(max_length=8), "length"),
        (make_format_length(max_length=8, p=0.4), "format_length"),
    ):
        assert reward.__name__ == name and reward.version == "1"
        clone = pickle.loads(pickle.dumps(reward))
        assert clone.__name__ == name
        assert clone(completions=[r"\boxed{1}"], completion_ids=[[0, 1, 2]]) == reward(
            completions=[r"\boxed{1}"], completion_ids=[[0, 1, 2]]
        )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_length": 0}, "max_length"),
        ({"max_length": 2.5}, "max_length"),
        ({"max_length": True}, "max_length"),
        ({"max_length": 8, "p": 1.0}, ".p = "),
        ({"max_length": 8, "p": 0}, ".p = "),
        ({"max_length": 8, "p": float("nan")}, ".p = "),
        ({"max_length": 8, "w_fmt": -1}, "w_fmt"),
        ({"max_length": 8, "shape": "cubic"}, "shape"),
    ],
)
def test_factory_rejects_bad_params_naming_field_value_rule_and_fix(params, field):
    with pytest.raises(ConfigError) as err:
        make_format_length(**params)
    (line,) = [p for p in err.value.problems if field in p]
    assert line.startswith("format_length.") and "must" in line and ";" in line


def test_factory_reports_all_problems_at_once():
    with pytest.raises(ConfigError) as err:
        make_format_length(max_length=-1, p=2.0, w_fmt=-1.0, shape="x")
    assert len(err.value.problems) == 4


def test_polyline_with_other_p_warns():
    with pytest.warns(UserWarning, match="discontinuous"):
        make_length(max_length=8, p=0.3, shape="polyline")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_length(max_length=8, p=0.5, shape="polyline")
