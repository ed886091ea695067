"""Majority-vote reward (TTRL) over self-consistent boxed answers: the answer a completion computed, the pseudo-label,
the groups, the failure modes its docstring names, and the recipe checks that keep groups whole."""

from __future__ import annotations

import pickle
import time
from fractions import Fraction

import pytest

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards import build_reward
from rlsurrogate.rewards.majority_vote import (
    computed_answer,
    ends_after_box,
    group_runs,
    majority_label,
    make_majority_vote,
)

QUESTION = "Tom has 2 apples and gets 5 more. How many apples does Tom have now? Put the final answer in \\boxed{ }."
Q = [{"role": "user", "content": QUESTION}]


def _call(reward, completions, prompts=None, **kwargs):
    prompts = prompts if prompts is not None else [Q] * len(completions)
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    return reward(prompts=prompts, completions=chat, completion_ids=[[0]] * len(completions), **kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tom has 2 + 5 = 7 apples. \\boxed{7}", 7),
        ("Tom has 2 + 5 = 7 apples.\nThe answer is \\boxed{ 7 }.", 7),
        ("2 + 5 = \\boxed{7}", 7),  # the box is the equation's result
        ("$2 + 5 = \\boxed{7}$", 7),
        ("5 + 2 = 7 and 7 - 2 = 5, no: 2 + 5 = 7. \\boxed{7}", 7),  # the last equation decides
        ("2 + 5 = 7 and 7 * 2 = 14. \\boxed{14}", 14),  # an earlier result may be an operand
        ("2 × 5 + 2 = 12. \\boxed{12}", 12),  # precedence: × before +
        ("2 + 5 = 7. \\boxed{12}", None),  # the box contradicts the computation
        ("2 + 5 = 8. \\boxed{8}", None),  # wrong arithmetic
        ("1 * 7 = 7. \\boxed{7}", None),  # 1 is in neither the question nor an earlier result
        ("Tom has 7 apples. \\boxed{7}", None),  # nothing computed
        ("2 + 5 = 7", None),  # no box
        ("2 + 5 = 7. \\boxed{7} or \\boxed{7}", None),  # two boxes
        ("2 + 5 = 7. \\boxed{7} apples and more", None),  # text after the box
        ("5 / 0 = 7. \\boxed{7}", None),  # division by zero
        ("5 / 2 = \\boxed{\\frac{5}{2}}", Fraction(5, 2)),  # the box closes after the fraction's braces
        ("5 / 2 = \\boxed{\\frac{5}{3}}", None),
    ],
)
def test_computed_answer(text, expected):
    assert computed_answer(text, Q) == (None if expected is None else Fraction(expected))


def test_majority_label_needs_min_votes_and_no_tie():
    seven, eight = Fraction(7), Fraction(8)
    assert majority_label([seven, seven, eight, None]) == seven
    assert majority_label([seven, eight, None]) is None  # one vote each: no consensus
    assert majority_label([seven, seven, eight, eight]) is None  # a tie
    assert majority_label([seven, seven, eight], min_votes=3) is None
    assert majority_label([None, None]) is None


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("2 + 5 = 7. \\boxed{7}", True),
        ("The answer is $\\boxed{7}$.", True),
        ("\\[\\boxed{7}\\]", True),
        ("\\boxed{7}\n", True),
        ("\\boxed{7}\n\\endboxers\n\\begin", False),
        ("\\boxed{7} apples", False),
        ("no box at all", False),
        ("\\boxed{7", False),  # never closed
        ("\\boxed{7}</think> more", False),  # the box is before the end of thinking: no final box
    ],
)
def test_ends_after_box(text, clean):
    assert ends_after_box(text) is clean


def test_group_runs_cuts_runs_into_groups_and_refuses_split_groups():
    assert group_runs(["a", "a", "b", "b"]) == [range(0, 2), range(2, 4)]
    assert group_runs(["a"] * 4, num_generations=2) == [range(0, 2), range(2, 4)]  # one prompt drawn twice
    assert group_runs(["a", "b", "c"], num_generations=8) == [range(0, 1), range(1, 2), range(2, 3)]  # evaluation
    with pytest.raises(ValueError, match="split across processes"):
        group_runs(["a"] * 3 + ["b"] * 4, num_generations=4)


def test_reward_levels_in_a_group_without_a_self_consistent_completion():
    completions = [
        "\\boxed{7}",  # a clean box, nothing computed: nothing
        "Tom has 2 + 5 = 7 apples. \\boxed{12}",  # a clean box contradicting the work: nothing
        "Tom has 2 + 5 = 8 apples. \\boxed{8}",  # a clean box of a wrong stated result: partial
        "2 + 5 = \\boxed{8}",  # the box is the (wrong) stated result: partial
        "\\boxed{7}\n\\endboxers \\begin",  # text goes on after the box: nothing
        "\\boxed{ \\boxed{ 7}}",  # nested boxes: nothing
        "The answer is \\boxed{ }.",  # empty box: nothing
        "Tom has 2 + 5 = 7 apples.",  # right work, no box: nothing
        "Tom has 2 + 5 = 7 apples. \\boxed{7} \\endboxers",  # right work, its box, text after it: nothing
        "The answer is \\boxed{seven}.",  # a box holding no plain number: nothing
    ]
    expected = [0, 0, 0.2, 0.2, 0, 0, 0, 0, 0, 0]
    assert _call(make_majority_vote(), completions) == pytest.approx(expected)


def test_partial_credit_only_while_the_group_has_no_self_consistent_completion():
    wrong_work = "Tom has 2 + 5 = 8 apples. \\boxed{8}"
    right = ["Tom has 2 + 5 = 7 apples. \\boxed{7}", "2 + 5 = \\boxed{7}"]
    # With self-consistent completions in the group, boxed wrong work earns what no box earns.
    assert _call(make_majority_vote(), [*right, wrong_work, "nothing"]) == pytest.approx([2.0, 2.0, 0, 0])
    # One self-consistent completion (no pseudo-label) is enough to withdraw the stepping stone.
    assert _call(make_majority_vote(), [right[0], wrong_work, "nothing"]) == pytest.approx([1.0, 0, 0])
    # Groups are judged apart: the second group has nothing self-consistent, so its boxed work earns partial credit.
    prompts = [Q, Q, "What is 1 + 8?", "What is 1 + 8?"]
    completions = [*right, "1 + 8 = 10. \\boxed{10}", "nothing"]
    rewards = _call(make_majority_vote(num_generations=2), completions, prompts=prompts)
    assert rewards == pytest.approx([2.0, 2.0, 0.2, 0])


def test_vote_weight_and_partial_credit():
    prompts = [Q, Q, "What is 1 + 8?", "What is 1 + 8?"]
    completions = ["2 + 5 = 7. \\boxed{7}", "2 + 5 = 7. \\boxed{7}", "1 + 8 = 10. \\boxed{10}", "nothing"]
    reward = make_majority_vote(vote_weight=0.5, partial_credit=0.0, num_generations=2)
    assert _call(reward, completions, prompts=prompts) == pytest.approx([1.5, 1.5, 0, 0])
    reward = make_majority_vote(partial_credit=0.25, num_generations=2)
    assert _call(reward, completions, prompts=prompts) == pytest.approx([2.0, 2.0, 0.25, 0])


def test_groups_vote_separately():
    q2 = [{"role": "user", "content": "What is 4 + 4?"}]
    completions = ["2 + 5 = 7. \\boxed{7}", "2 + 5 = \\boxed{7}", "4 + 4 = 8. \\boxed{8}", "4 + 4 = \\boxed{8}"]
    rewards = _call(make_majority_vote(num_generations=2), completions, prompts=[Q, Q, q2, q2])
    assert rewards == pytest.approx([2.0] * 4)


def test_label_share_is_logged():
    logged = {}
    _call(
        make_majority_vote(num_generations=2),
        ["2 + 5 = 7. \\boxed{7}", "2 + 5 = \\boxed{7}", "\\boxed{1}", "\\boxed{2}"],
        prompts=[Q, Q, "other", "other"],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert logged == {"majority_vote/label_share": pytest.approx(0.5)}


def test_prompts_and_completions_must_pair_up():
    with pytest.raises(ValueError, match="3 prompts for 4 completions"):
        _call(make_majority_vote(), ["\\boxed{7}"] * 4, prompts=[Q] * 3)


def test_long_arithmetic_runs_never_hang():
    # A degenerate completion ("1+1+1+...", no `=`) must be scanned in linear time: a search that restarts inside
    # the run is quadratic (64 KB took ~14 s).
    for sep in ("+", " + "):
        text = sep.join(["1"] * 20_000) + " \\boxed{7}"  # no `=`: no work shown
        start = time.perf_counter()
        assert _call(make_majority_vote(), [text, text]) == pytest.approx([0.0, 0.0])
        assert _call(make_majority_vote(), [text.replace(" \\boxed", " = 7 \\boxed")] * 2) == pytest.approx([0.2, 0.2])
        assert time.perf_counter() - start < 1.0


# The failure modes named in the module docstring.


def test_failure_mode_confidently_wrong_majority_is_rewarded():
    # Gold is 7; five of eight completions add instead of subtracting. The reward never reads the answer.
    q = [{"role": "user", "content": "Tom has 10 apples and gives away 3. How many apples does Tom have left?"}]
    completions = ["10 + 3 = 13. \\boxed{13}"] * 5 + ["10 - 3 = 7. \\boxed{7}"] * 3
    rewards = _call(make_majority_vote(num_generations=8), completions, prompts=[q] * 8, answer=["7"] * 8)
    assert rewards[0] == pytest.approx(2.0) and rewards[-1] == pytest.approx(1.0)


def test_failure_mode_constant_answer_earns_the_maximum():
    q2 = [{"role": "user", "content": "Anna has 2 pens and gets 9 more. How many pens does Anna have now?"}]
    completions = ["2 - 2 = 0. \\boxed{0}"] * 4  # grounded, right, agreed on, and useless
    rewards = _call(make_majority_vote(num_generations=2), completions, prompts=[Q, Q, q2, q2])
    assert rewards == [pytest.approx(2.0)] * 4


def test_failure_mode_no_consensus_no_vote():
    completions = ["2 + 5 = 7. \\boxed{7}", "5 - 2 = 3. \\boxed{3}", "2 * 5 = 10. \\boxed{10}", "nothing"]
    assert _call(make_majority_vote(), completions) == pytest.approx([1.0, 1.0, 1.0, 0.0])


def test_failure_mode_group_of_one_scores_the_format_alone():
    # Greedy evaluation: one completion per prompt, all prompts different. No vote; the format term remains.
    prompts = [Q, "What is 1 + 1?", "What is 2 + 2?"]
    completions = ["2 + 5 = 7. \\boxed{7}", "1 + 1 = 2", "2 + 2 = 5. \\boxed{5}"]
    assert _call(make_majority_vote(num_generations=8), completions, prompts=prompts) == pytest.approx([1.0, 0, 0.2])


def test_failure_mode_the_format_pays_without_the_content():
    # Gold is 7: in a group where nothing is self-consistent, a clean box after wrong work earns partial credit, more
    # than the right answer boxed bare; only right shown work earns more (and then withdraws the partial credit).
    completions = ["2 + 5 = 8. \\boxed{8}", "2 + 5 = 9, so \\boxed{9}", "\\boxed{7}"]
    assert _call(make_majority_vote(), completions) == pytest.approx([0.2, 0.2, 0.0])
    with_right_work = [*completions, "2 + 5 = 7, so \\boxed{7}"]
    assert _call(make_majority_vote(), with_right_work) == pytest.approx([0, 0, 0, 1.0])


def test_measured_bare_box_collapse_earns_nothing():
    # What partial credit for any clean box collapsed to on one of three seeds (held-out accuracy 0.094): a bare box
    # per prompt, nothing computed. With partial credit for shown work only, it earns nothing.
    assert _call(make_majority_vote(num_generations=8), ["\\boxed{4}"] * 4 + ["\\boxed{ 10 }."] * 4) == [0.0] * 8


def test_measured_unrelated_box_collapse_earns_nothing():
    # What seed 2 of the bf16 quickstart learned when any number boxed after any equation earned partial credit
    # (held-out accuracy 0.000 at steps 8 and 16): a box unrelated to the work. Only the stated result may be boxed.
    completions = [
        "10 - 3 = 5\nThe answer is \\boxed{55}",
        "3 + 3 + 7 = 18\nThe answer is \\boxed{19}",
        "2 + 5 = 7\nLeo has 7 - 2 = 3 more\nThe answer is \\boxed{10}",
        "10 - 3 = 5\nThe answer is \\boxed{5}",  # boxes the (wrong) result it stated: the stepping stone
    ]
    assert _call(make_majority_vote(num_generations=4), completions) == pytest.approx([0, 0, 0, 0.2])


def test_measured_collapse_earns_nothing():
    # What a vote over unboxed stated results collapsed to on SmolLM2-135M within 20 steps.
    completions = ["1 * 7 = 7. I can certainly help you!"] * 8
    assert _call(make_majority_vote(num_generations=8), completions) == [0.0] * 8


def test_never_reads_the_answer_column():
    completions = ["2 + 5 = 7. \\boxed{7}", "2 + 5 = \\boxed{7}", "\\boxed{8}"]
    reward = make_majority_vote()
    assert _call(reward, completions, answer=["7"] * 3) == _call(reward, completions, answer=["8"] * 3)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"vote_weight": -1}, "vote_weight"),
        ({"min_votes": 9, "num_generations": 8}, "min_votes"),  # no group of 8 could ever vote
        ({"vote_weight": True}, "vote_weight"),
        ({"partial_credit": 1.0}, "partial_credit"),
        ({"min_votes": 1}, "min_votes"),
        ({"min_votes": 2.5}, "min_votes"),
        ({"num_generations": 1}, "num_generations"),
    ],
)
def test_bad_params_are_refused_with_the_field_named(params, field):
    with pytest.raises(ConfigError, match=f"majority_vote.{field}"):
        make_majority_vote(**params)


def test_registered_picklable_and_versioned():
    reward = build_reward("majority_vote", {"num_generations": 2})
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "majority_vote" and reward.version == "5" and clone.num_generations == 2
    completions = ["2 + 5 = 7. \\boxed{7}", "2 + 5 = \\boxed{7}"]
    assert _call(clone, completions) == _call(reward, completions) == pytest.approx([2.0, 2.0])


# Recipe validation: the recipe fills in G, and a batch layout that would split a group is refused.


def _recipe(tmp_path, training, num_generations=8):
    return {
        "model": {"name": "tiny"},
        "data": {"task": "arithmetic", "num_train": 8, "num_eval": 2},
        "rewards": ["majority_vote", {"name": "accuracy", "weight": 0.0}],
        "generation": {"num_generations": num_generations, "max_completion_length": 8},
        "training": {"max_steps": 1, **training},
        "output_dir": str(tmp_path / "out"),
    }


@pytest.mark.parametrize(
    "training",
    [
        {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8},  # the quickstart: 16 = 2 groups
        {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},  # 8 = 1 group
        {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1},
        {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "steps_per_generation": 2},
    ],
)
def test_recipe_fills_in_num_generations_and_accepts_whole_groups(tmp_path, training):
    from rlsurrogate.build import validate

    _, resolved = validate(_recipe(tmp_path, training), num_processes=1)
    assert resolved.rewards[0].num_generations == 8


@pytest.mark.parametrize(
    ("training", "num_processes", "scored"),
    [
        ({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1}, 2, 4),  # 2 processes split a group
        ({"per_device_train_batch_size": 12, "gradient_accumulation_steps": 1}, 2, 12),
        ({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "generation_batch_size": 24}, 2, 12),
    ],
)
def test_recipe_whose_layout_splits_groups_is_refused(tmp_path, training, num_processes, scored):
    from rlsurrogate.build import validate

    with pytest.raises(ConfigError, match=f"scores {scored} completions per generation") as err:
        validate(_recipe(tmp_path, training), num_processes=num_processes)
    assert "multiple of num_generations 8" in str(err.value) and len(err.value.problems) == 1
