"""Candidate rewards: registry rewards, squashed copies and a tiny sequence-classification reward model."""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.diagnostics.candidates import (
    Samples,
    build_candidate,
    reward_candidate,
    reward_model_candidate,
    squash,
)
from rlsurrogate.diagnostics.reward_variance import teacher_stats
from rlsurrogate.errors import ConfigError, RewardError


def _samples() -> Samples:
    rows = [
        {"prompt": [{"role": "user", "content": "What is 2 + 3?"}], "answer": "5"},
        {"prompt": [{"role": "user", "content": "What is 9 - 4?"}], "answer": "5"},
        {"prompt": [{"role": "user", "content": "What is 1 + 1?"}], "answer": "2"},
    ]
    texts = "\\boxed{5}|It is \\boxed{6}|five|The answer is \\boxed{5}.|\\boxed{5}|\\boxed{5}|\\boxed{4}|no idea"
    texts += "|2|\\boxed{2}|\\boxed{2}|\\boxed{3}"
    completions = texts.split("|")
    ids = [list(range(len(c) // 2 + 1)) for c in completions]
    return Samples(rows=rows, k=4, completions=completions, completion_ids=ids)


def test_registry_reward_scores_in_trl_order():
    samples = _samples()
    acc = build_candidate("accuracy").score(samples)
    expected = torch.tensor([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=torch.float64)
    torch.testing.assert_close(acc, expected)
    # format_length needs max_length; build_candidate fills it like the train entry point does
    assert build_candidate("format_length", max_length=8).score(samples).shape == (3, 4)


def test_squashed_accuracy_keeps_accuracy_and_lowers_variance():
    samples = _samples()
    cache: dict = {}
    acc = build_candidate("accuracy", cache=cache)
    squashed = build_candidate("squash:accuracy", cache=cache)
    spread = build_candidate("squash(scale=0.1,spread=1):accuracy", cache=cache)
    gold = acc.score(samples)
    base, low, low_spread = (teacher_stats(c.score(samples), gold) for c in (acc, squashed, spread))
    assert low.accuracy == base.accuracy == low_spread.accuracy == 1.0
    assert low.var_mean == pytest.approx(0.01 * base.var_mean)  # scale 0.1 -> variance x 0.01
    assert low.whitened_var_mean == pytest.approx(base.whitened_var_mean)  # affine: whitening undoes it
    assert low_spread.whitened_var_mean < base.whitened_var_mean  # offsets between prompts add to the global std
    torch.testing.assert_close(squashed.score(samples), 0.5 + 0.1 * (gold - 0.5))


def test_squash_is_strictly_increasing_per_prompt():
    r = torch.linspace(-3, 3, 12, dtype=torch.float64).reshape(2, 6)
    out = squash(r, torch.tensor([0.2, 0.9]), scale=0.05, spread=2.0)
    assert (out.diff(dim=1) > 0).all()


@pytest.mark.parametrize("spec", ["squash(scale=0):accuracy", "squash(scale=x):accuracy", "squash(foo=1):accuracy"])
def test_bad_squash_specs_raise_config_error(spec):
    with pytest.raises(ConfigError):
        build_candidate(spec)


def test_unknown_reward_names_the_valid_ones():
    with pytest.raises(ConfigError, match="format_length"):
        build_candidate("format_lenght")


def test_reward_candidate_maps_none_to_nan_and_checks_length():
    samples = _samples()

    def half(completions, **kwargs):
        return [None if i % 2 else 1.0 for i in range(len(completions))]

    out = reward_candidate(half).score(samples)
    assert torch.isnan(out[:, 1::2]).all() and (out[:, ::2] == 1).all()
    with pytest.raises(RewardError, match="short"):
        reward_candidate(lambda completions, **kw: [1.0], name="short").score(samples)


def test_tiny_sequence_classification_model_works_as_candidate(tmp_path, tiny, tiny_reward_model):
    _, tokenizer = tiny
    model = tiny_reward_model()
    samples = _samples()
    direct = reward_model_candidate(model, tokenizer, "tiny-rm", batch_size=5).score(samples)
    assert direct.shape == (3, 4) and torch.isfinite(direct).all()
    assert direct[0].unique().numel() > 1  # a random model still tells different texts apart
    # same text -> the very same score, whatever the batch it was padded in
    assert direct[1, 0] == direct[1, 1]
    # saved to disk and named by path, it scores the same
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    by_path = build_candidate(f"rm:{tmp_path}").score(samples)
    torch.testing.assert_close(by_path, direct, atol=1e-5, rtol=1e-5)
    stats = teacher_stats(by_path, build_candidate("accuracy").score(samples))
    assert 0.0 <= stats.accuracy <= 1.0 and stats.var_mean > 0
