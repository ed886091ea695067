"""`clean_share` of scripts/bench_quickstart.py: the share of held-out completions that end with their one box and
hold no garbage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_quickstart.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quickstart", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "text",
    [
        "Leo has 2 + 5 = 7 cookies. \\boxed{7}",
        "The answer is \\boxed{ 7 }.",
        "The answer is $\\boxed{7}$.\n",
        "\\[ 2 + 5 = \\boxed{7} \\]",
        "Leo eats \\boxed{\\frac{1}{2}}!",  # braces inside the box are matched
        "\\boxed{seven}",  # clean is about the ending, not about the answer being a number
    ],
)
def test_clean(bench, text):
    assert bench.is_clean(text)


@pytest.mark.parametrize(
    "text",
    [
        "Leo has 2 + 5 = 7 cookies.",  # no box
        "The answer is \\boxed{}.",  # an empty box
        "The answer is \\boxed{ }.",
        "A jar holds 10 marbles.\n\\boxed{10}\n\\endboxers\n\\endboxers",  # text goes on after the box
        "\\boxed{7} apples",
        "\\boxed{2} + \\boxed{5} = \\boxed{7}",  # boxes everything
        "\\boxed{ \\boxed{ 7}}",  # nested boxes
        "\\boxed{7",  # never closed
        "\\boxed 7",  # no braces
        "\\begin{itemized*}[<br>1\x1cwidth\x1cwidth \\boxed{7}",  # control characters
        "caf\ufffd \\boxed{7}",  # a replacement character
        "",
    ],
)
def test_not_clean(bench, text):
    assert not bench.is_clean(text)


def test_clean_share_is_the_share_of_clean_completions(bench):
    completions = ["\\boxed{7}", "\\boxed{7} and on", "7", "2 + 5 = \\boxed{7}."]
    assert bench.clean_share(completions) == pytest.approx(0.5)
    assert bench.clean_share([]) == 0.0
