"""Held-out evaluation: the last box decides, symbolic equivalence, format rate and length."""

from __future__ import annotations

import pytest

from rlsurrogate.evaluate import boxed_answer_correct, evaluate


@pytest.mark.parametrize(
    "text, gold, expected",
    [
        ("7 + 5 = 12, so \\boxed{12}.", "12", True),
        ("\\boxed{12.0}", "12", True),
        ("\\boxed{\\frac{24}{2}}", "12", True),
        ("\\boxed{11} no wait \\boxed{12}", "12", True),
        ("\\boxed{12} no wait \\boxed{11}", "12", False),  # the last box decides
        ("\\boxed{2} + \\boxed{3} = 6}", "5", False),  # "boxes everything" does not count
        ("the answer is 12", "12", False),  # unboxed
        ("\\boxed{}", "12", False),
    ],
)
def test_boxed_answer_correct(text, gold, expected):
    assert boxed_answer_correct(text, gold) is expected


def test_evaluate_reports_rates_lengths_and_samples(tiny):
    make_model, tokenizer = tiny
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "answer": str(i + 1)} for i in range(3)]
    result = evaluate(make_model(0), tokenizer, rows, max_new_tokens=6, batch_size=2)
    assert result["num_prompts"] == 3
    assert 0 <= result["boxed_rate"] <= 1 and 0 <= result["accuracy"] <= result["boxed_rate"]
    assert 1 <= result["mean_length"] <= 6
    assert len(result["samples"]) == 3 and result["samples"][0]["answer"] == "1"
