"""Predictive sampling on a synthetic stream where each prompt's true success probability p is known.

The features separate three kinds of prompt (p = 0, 0.5, 1: only p = 0.5 has within-group variance, p(1-p) = 0.25)
plus noise; observed variances are those of G Bernoulli(p) draws. Properties: the GP's choices have a higher true
variance than uniform choices from the same pools, exploration keeps every kind of prompt in play, and a restored
state makes the same choices.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.predictive import (
    acquisition_scores,
    calibration,
    choose,
    fit_basis,
    project,
)

G = 8
KINDS = (0.0, 0.5, 1.0)


class SyntheticContext:
    """One process; features are [one-hot kind (3), 3 noise dims] with noise, as a hidden state would carry."""

    num_processes, process_index, num_generations, steps_per_generation, pad_token_id = 1, 0, G, 1, 0

    def __init__(self, n: int = 300, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.p = [KINDS[i % 3] for i in torch.randperm(n, generator=g).tolist()]
        onehot = torch.tensor([[float(p == k) for k in KINDS] for p in self.p])
        self.features = torch.cat([onehot + 0.1 * torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)], 1)
        self.draws = torch.Generator().manual_seed(seed + 1)
        self.feature_calls = 0

    def dataset_size(self) -> int:
        return len(self.p)

    def prompt_features(self, indices, layer: int) -> torch.Tensor:
        self.feature_calls += 1
        return self.features[list(indices)]

    def broadcast(self, value):
        return value

    def observe_groups(self, indices: list[int]) -> torch.Tensor:
        """Observed within-group variance (1/(G-1)) of G Bernoulli(p) rewards per prompt."""
        p = torch.tensor([self.p[i] for i in indices])
        draws = (torch.rand(len(indices), G, generator=self.draws) < p.unsqueeze(1)).double()
        return draws.var(dim=1)


def _run(params: dict, rounds: int, n: int = 4, seed: int = 0):
    ctx = SyntheticContext(seed=seed)
    sampler = build_sampler("predictive", params)
    sampler.bind(ctx)
    true_var = []
    for _ in range(rounds):
        indices = sampler.propose(ctx, 0, n)
        sampler.observe(ctx, indices, ctx.observe_groups(indices))
        true_var.append([ctx.p[i] * (1 - ctx.p[i]) for i in indices])
    return sampler, ctx, true_var


@pytest.mark.parametrize("rule", ["thompson", "ucb"])
def test_prefers_prompts_whose_variance_is_high(rule):
    """After warm-up the chosen prompts' mean true variance beats uniform picks from the same pools (1/3 x 0.25)."""
    late = []
    for seed in range(3):
        _, _, true_var = _run({"rule": rule, "explore": 0.2}, rounds=25, seed=seed)
        late += [v for step in true_var[10:] for v in step]
    uniform = 0.25 / 3
    assert sum(late) / len(late) > 2 * uniform, f"{rule}: mean true variance {sum(late) / len(late):.3f}"


def test_keeps_exploring_so_no_kind_of_prompt_starves():
    sampler, ctx, true_var = _run({"explore": 0.3}, rounds=40)
    chosen = [v for step in true_var[5:] for v in step]
    assert any(v == 0.0 for v in chosen), "prompts predicted to have no signal are still drawn sometimes"
    explored = sampler._generation["explored"]
    assert len(explored) == 4  # the last round's prompts
    _, _, none = _run({"explore": 0.0}, rounds=40)
    share_flat = sum(v == 0.0 for step in none[10:] for v in step) / (4 * 30)
    share_flat_explore = sum(v == 0.0 for v in chosen) / len(chosen)
    assert share_flat_explore > share_flat


def test_features_are_computed_once_per_prompt():
    sampler, ctx, _ = _run({"pool_factor": 2}, rounds=30)
    assert len(sampler.cache) <= ctx.dataset_size()
    before = ctx.feature_calls
    sampler.stream.epoch, sampler.stream.position, sampler.stream._perm = 0, 0, None  # the same pools again
    sampler.propose(ctx, 0, 4)
    assert ctx.feature_calls == before  # every candidate's features were cached


def test_restored_state_makes_the_same_choices():
    sampler, ctx, _ = _run({}, rounds=12)
    state, tensors = sampler.state_dict()
    state = json.loads(json.dumps(state))  # what the checkpoint's JSON file holds
    restored = build_sampler("predictive")
    restored.bind(ctx)
    restored.load_state_dict(state, {k: v.clone() for k, v in tensors.items()})
    for _ in range(4):
        a, b = sampler.propose(ctx, 0, 4), restored.propose(ctx, 0, 4)
        assert a == b
        var = ctx.observe_groups(a)
        sampler.observe(ctx, a, var)
        restored.observe(ctx, b, var)


def test_round_metrics_report_calibration_after_warmup():
    sampler, _, _ = _run({"warmup": 4}, rounds=6)
    metrics = sampler.round_metrics()
    assert metrics["sampling/observations"] == 24
    assert {"sampling/predicted_var", "sampling/observed_var", "sampling/calibration_mae"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert len(sampler.pairs) > 0


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def test_choose_takes_the_best_without_exploration_and_never_repeats():
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.2])
    positions, explored = choose(scores, 3, explore=0.0, generator=g)
    assert positions == [1, 3, 2] and explored == [False] * 3
    positions, explored = choose(scores, 5, explore=0.5, generator=g)
    assert sorted(positions) == [0, 1, 2, 3, 4]
    positions, explored = choose(scores, 3, explore=1.0, generator=g)
    assert all(explored) and len(set(positions)) == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_acquisition_scores(dtype):
    mean = torch.tensor([0.1, 0.2, 0.05], dtype=dtype)
    cov = torch.diag(torch.tensor([0.04, 0.01, 0.09], dtype=dtype))
    g = torch.Generator().manual_seed(0)
    ucb = acquisition_scores(mean, cov, "ucb", beta=4.0, generator=g)
    torch.testing.assert_close(ucb, torch.tensor([0.5, 0.4, 0.65], dtype=dtype))
    a = acquisition_scores(mean, cov, "thompson", 4.0, torch.Generator().manual_seed(3))
    b = acquisition_scores(mean, cov, "thompson", 4.0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    draws = torch.stack([acquisition_scores(mean, cov, "thompson", 4.0, g) for _ in range(4000)])
    torch.testing.assert_close(draws.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(draws.var(0), cov.diagonal(), atol=0.01, rtol=0.1)


def test_basis_and_projection_land_in_the_unit_cube():
    F = torch.randn(50, 12) * torch.linspace(5, 0.1, 12)
    basis = fit_basis(F, 4)
    U = project(F, basis)
    assert U.shape == (50, 4) and U.dtype == torch.float64
    assert (U > 0).all() and (U < 1).all()
    torch.testing.assert_close(U.mean(0), torch.full((4,), 0.5, dtype=torch.float64), atol=0.1, rtol=0)
    assert fit_basis(F[:3], 8).components.shape == (12, 3)  # at most n directions


def test_calibration_against_hand_computed_figures():
    stats = calibration(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.0, 0.2, 0.4]))
    assert stats["predicted"] == pytest.approx(0.2) and stats["observed"] == pytest.approx(0.2)
    assert stats["mae"] == pytest.approx(0.2 / 3) and stats["corr"] == pytest.approx(1.0)
    assert calibration(torch.tensor([]), torch.tensor([])) == {}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"pool_factor": 0}, "pool_factor = 0"),
        ({"rule": "greedy"}, 'rule = "greedy": must be one of thompson, ucb'),
        ({"explore": 1.5}, "explore = 1.5: must be a number in \\[0, 1\\]"),
        ({"beta": -1.0}, "beta = -1.0"),
        ({"window": 1}, "window = 1"),
        ({"filter": "yes"}, "filter = 'yes': must be true or false"),
        ({"max_rounds": 0}, "max_rounds = 0"),
        ({"pool": 4}, "sampling.params.pool: unknown for predictive"),
    ],
)
def test_bad_settings_are_one_line_each(params, message):
    with pytest.raises(ConfigError, match=message):
        build_sampler("predictive", params)


def test_filter_turns_on_dynamic_sampling_on_top():
    plain = build_sampler("predictive", {"max_rounds": 5})
    assert not plain.filters and plain.max_rounds == 1
    filtering = build_sampler("predictive", {"filter": True, "max_rounds": 5})
    assert filtering.filters and filtering.max_rounds == 5
