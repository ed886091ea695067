"""GRESO: the skip probability of Eq. 1 from a prompt's run of flat groups, its adaptation (Eq. 2), checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.greso import adapt_probability, generate_probability
from rlsurrogate.sampling.state import load_sampler_state, save_sampler_state


class Context:
    num_processes, process_index, num_generations, steps_per_generation, pad_token_id, seed = 1, 0, 4, 1, 0, 0

    def __init__(self, n: int):
        self.n = n

    def dataset_size(self) -> int:
        return self.n

    def broadcast(self, value):
        return value


def _observe(sampler, indices, rewards):
    rewards = torch.as_tensor(rewards, dtype=torch.float64)
    sampler.observe(Context(0), indices, rewards.var(dim=1), rewards)


def test_generate_probability_and_its_adaptation():
    assert generate_probability(0, "easy", 0.1, 0.2) == 1.0
    assert generate_probability(2, "easy", 0.5, 0.2) == pytest.approx(0.25)
    assert generate_probability(3, "hard", 0.5, 0.2) == pytest.approx(0.008)
    assert adapt_probability(0.5, share=0.3, target=0.2, step=0.01, p_min=0.05) == pytest.approx(0.49)
    assert adapt_probability(0.5, share=0.1, target=0.2, step=0.01, p_min=0.05) == pytest.approx(0.51)
    assert adapt_probability(0.05, share=0.9, target=0.2, step=0.01, p_min=0.05) == 0.05
    assert adapt_probability(1.0, share=0.0, target=0.2, step=0.01, p_min=0.05) == 1.0


def test_flat_runs_count_consecutive_flat_groups_and_reset_on_signal():
    sampler = build_sampler("greso")
    _observe(sampler, [0, 1, 2], [[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 1]])
    assert sampler.history == {0: (1, "easy"), 1: (1, "hard"), 2: (0, "easy")}
    _observe(sampler, [0, 1], [[1, 1, 1, 1], [0, 1, 0, 0]])
    assert sampler.history[0] == (2, "easy") and sampler.history[1] == (0, "easy")
    _observe(sampler, [3], [[float("nan")] * 4])  # nobody scored it: no trace
    assert 3 not in sampler.history


def test_skips_recently_flat_prompts_at_the_rate_of_eq_1():
    n = 40
    ctx = Context(n)
    sampler = build_sampler("greso", {"p_init": 0.5, "step": 0.0})
    sampler.bind(ctx)
    flat = list(range(0, n, 2))  # every even prompt: one easy flat group
    _observe(sampler, flat, [[1, 1, 1, 1]] * len(flat))
    chosen = []
    for k in range(50):
        chosen += sampler.propose(ctx, 0 if k == 0 else 1, 4)  # one generation of 50 rounds
    share_flat = sum(i % 2 == 0 for i in chosen) / len(chosen)
    assert share_flat == pytest.approx(0.5 / 1.5, abs=0.06)  # kept with probability 0.5, the rest always
    assert sampler.round_metrics()["sampling/skipped"] == pytest.approx(len(chosen) * share_flat, rel=0.5)


def test_a_never_generated_kind_still_fills_the_round_after_the_scan():
    ctx = Context(8)
    sampler = build_sampler("greso", {"p_init": 0.0, "p_min": 0.0, "step": 0.0, "scan_factor": 2})
    sampler.bind(ctx)
    _observe(sampler, list(range(8)), [[0, 0, 0, 0]] * 8)  # every prompt hard and flat: p_hard^1 = 0
    indices = sampler.propose(ctx, 0, 3)
    assert len(indices) == 3  # taken without skipping once 2 x 3 draws were all skipped
    assert sampler.round_metrics()["sampling/skipped"] == 6


def test_exploration_probability_adapts_once_per_generation():
    ctx = Context(20)
    sampler = build_sampler("greso", {"target_easy": 0.1, "target_hard": 0.5, "step": 0.05})
    sampler.bind(ctx)
    sampler.propose(ctx, 0, 4)
    _observe(sampler, [0, 1, 2, 3], [[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]])  # easy 0.5, hard 0.25
    sampler.propose(ctx, 1, 2)  # a refill round: no adaptation
    assert sampler.p_easy == pytest.approx(0.5) and sampler.p_hard == pytest.approx(0.5)
    sampler.propose(ctx, 0, 4)
    assert sampler.p_easy == pytest.approx(0.45) and sampler.p_hard == pytest.approx(0.55)


def test_state_round_trip_makes_the_same_choices(tmp_path):
    ctx = Context(30)
    sampler = build_sampler("greso")
    sampler.bind(ctx)
    for _ in range(5):
        indices = sampler.propose(ctx, 0, 4)
        _observe(sampler, indices, [[1, 1, 1, 1] if i % 3 else [0, 1, 0, 1] for i in indices])
    save_sampler_state(sampler, tmp_path)
    restored = build_sampler("greso")
    restored.bind(ctx)
    assert load_sampler_state(restored, tmp_path)
    assert json.loads(json.dumps(sampler.state_dict()[0])) == restored.state_dict()[0]
    for _ in range(3):
        a, b = sampler.propose(ctx, 0, 4), restored.propose(ctx, 0, 4)
        assert a == b
        for s in (sampler, restored):
            _observe(s, a, [[1, 1, 1, 1]] * 4)


def test_filters_by_default_and_bad_settings_are_one_line_each():
    sampler = build_sampler("greso")
    assert sampler.filters and sampler.max_rounds == 10
    assert not build_sampler("greso", {"filter": False}).filters
    for params, message in (
        ({"p_init": 1.5}, "p_init = 1.5: must be a number in \\[0, 1\\]"),
        ({"scan_factor": 0}, "scan_factor = 0: must be a whole number >= 1"),
        ({"skip": 1}, "sampling.params.skip: unknown for greso"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_sampler("greso", params)
