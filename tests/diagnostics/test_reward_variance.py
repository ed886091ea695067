"""Properties of METHODS.md §3.5 for the variance/accuracy estimators, and the RewardVarianceMonitor listener."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

from rlsurrogate.diagnostics.reward_variance import (
    RewardVarianceMonitor,
    group_rewards,
    nan_quantiles,
    pairwise_accuracy,
    teacher_stats,
    whiten,
    within_group_variance,
    zero_variance_share,
)
from rlsurrogate.errors import ConfigError
from rlsurrogate.objectives.base import ScoredBatch


def _naive_half_pairwise(row: list[float], include_self: bool) -> float:
    """1/2 mean of (r_i - r_j)^2 over ordered pairs: distinct pairs, or all K^2 pairs including i == j."""
    pairs = [(a, b) for (i, a), (j, b) in itertools.product(enumerate(row), repeat=2) if include_self or i != j]
    return 0.5 * sum((a - b) ** 2 for a, b in pairs) / len(pairs)


def _naive_accuracy(r: list[float], g: list[float]) -> float:
    def sign(x: float) -> int:
        return (x > 0) - (x < 0)

    pairs = list(itertools.combinations(range(len(r)), 2))
    return sum(sign(r[i] - r[j]) == sign(g[i] - g[j]) for i, j in pairs) / len(pairs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 3, 8])
def test_variance_is_half_mean_pairwise_squared_difference(dtype, k):
    r = torch.randn(5, k, generator=torch.Generator().manual_seed(k), dtype=torch.float64).to(dtype)
    unbiased = within_group_variance(r, unbiased=True)
    population = within_group_variance(r, unbiased=False)
    for p in range(5):
        row = r[p].double().tolist()
        assert unbiased[p].item() == pytest.approx(_naive_half_pairwise(row, include_self=False), rel=1e-5)
        assert population[p].item() == pytest.approx(_naive_half_pairwise(row, include_self=True), rel=1e-5)
    torch.testing.assert_close(population, unbiased * (k - 1) / k)


def test_variance_hand_computed():
    r = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # mean 0.5, squared deviations sum to 1: 1/3 (unbiased), 1/4 (population)
    torch.testing.assert_close(within_group_variance(r), torch.tensor([1 / 3, 0.0]))
    torch.testing.assert_close(within_group_variance(r, unbiased=False), torch.tensor([0.25, 0.0]))


def test_variance_invariant_to_constant_and_scales_by_c_squared():
    r = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    var = within_group_variance(r)
    torch.testing.assert_close(within_group_variance(r + 3.7), var)
    torch.testing.assert_close(within_group_variance(-2.5 * r), 6.25 * var)
    # whitening removes any affine change of scale
    torch.testing.assert_close(within_group_variance(whiten(10 * r - 4)), within_group_variance(whiten(r)))


def test_constant_reward_has_zero_variance_and_accuracy_equal_to_gold_tie_rate():
    gold = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    const = torch.full_like(gold, 0.7)
    assert within_group_variance(const).eq(0).all()
    assert within_group_variance(whiten(const)).eq(0).all()
    ties = torch.tensor([2 / 6, 3 / 6, 1.0])  # gold pairs that tie, per prompt
    torch.testing.assert_close(pairwise_accuracy(const, gold), ties)
    stats = teacher_stats(const, gold)
    assert stats.var_mean == 0 and stats.whitened_var_mean == 0 and stats.zero_var_share == 1.0
    assert stats.accuracy == pytest.approx(ties.mean().item())


def test_gold_against_itself_is_perfectly_accurate():
    gold = torch.randint(0, 3, (7, 6), generator=torch.Generator().manual_seed(2)).double()
    assert pairwise_accuracy(gold, gold).eq(1).all()
    assert teacher_stats(gold, gold).accuracy == 1.0


@pytest.mark.parametrize(
    "transform",
    [lambda r: 0.5 + 0.1 * (r - 0.5), torch.sigmoid, lambda r: torch.exp(3 * r), lambda r: r**3 + 0.01 * r],
    ids=["affine_squash", "sigmoid", "exp", "cubic"],
)
def test_accuracy_invariant_under_strictly_increasing_transform_while_variance_changes(transform):
    g = torch.Generator().manual_seed(3)
    r = torch.randn(8, 6, generator=g, dtype=torch.float64)
    gold = r + 0.8 * torch.randn(8, 6, generator=g, dtype=torch.float64)  # a noisy teacher: accuracy < 1
    base = teacher_stats(r, gold)
    moved = teacher_stats(transform(r), gold)
    assert 0.5 < base.accuracy < 1.0
    assert moved.accuracy == pytest.approx(base.accuracy)
    assert moved.per_prompt_accuracy == pytest.approx(base.per_prompt_accuracy)
    assert not math.isclose(moved.var_mean, base.var_mean, rel_tol=1e-3)


def test_pairwise_accuracy_matches_naive_loop_and_tie_rule():
    g = torch.Generator().manual_seed(4)
    r = torch.randint(0, 3, (10, 5), generator=g).double()  # many ties on both sides
    gold = torch.randint(0, 2, (10, 5), generator=g).double()
    acc = pairwise_accuracy(r, gold)
    for p in range(10):
        assert acc[p].item() == pytest.approx(_naive_accuracy(r[p].tolist(), gold[p].tolist()))
    # a tie agrees only with a tie
    assert pairwise_accuracy(torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]])).item() == 0.0
    assert pairwise_accuracy(torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 2.0]])).item() == 1.0


def test_nan_rewards_are_left_out():
    nan = float("nan")
    r = torch.tensor([[0.0, 2.0, nan], [nan, nan, 1.0], [nan, nan, nan]])
    var = within_group_variance(r)
    assert var[0].item() == 2.0 and math.isnan(var[1].item()) and math.isnan(var[2].item())
    assert zero_variance_share(var).item() == 0.0
    acc = pairwise_accuracy(r, torch.tensor([[0.0, 1.0, 5.0], [0.0, 0.0, 1.0], [0.0, 1.0, 2.0]]))
    assert acc[0].item() == 1.0 and math.isnan(acc[1].item()) and math.isnan(acc[2].item())
    assert torch.isnan(whiten(r)).eq(torch.isnan(r)).all()


def test_whiten_has_zero_mean_unit_std_per_column():
    r = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * torch.tensor([1, 50])
    w = whiten(r).reshape(-1, 2)
    torch.testing.assert_close(w.mean(0), torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(w.std(0), torch.ones(2, dtype=torch.float64))


def test_group_rewards_follows_trl_order_and_rejects_ragged():
    r = torch.arange(12.0).reshape(6, 2)
    grouped = group_rewards(r, 3)
    assert grouped.shape == (2, 3, 2) and grouped[1, 0, 0].item() == 6.0
    with pytest.raises(ValueError):
        group_rewards(r, 4)


def test_nan_quantiles_ignore_nan():
    q = nan_quantiles(torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, float("nan")]))
    torch.testing.assert_close(q, torch.tensor([1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------------------------------------------
# RewardVarianceMonitor on synthetic ScoredBatches


class _FakeTrainer:
    def __init__(self):
        self.logged: dict[str, list[float]] = {}

    def log_metric(self, key: str, value: float) -> None:
        self.logged.setdefault(key, []).append(value)


def _scored(rewards: torch.Tensor, names: list[str], g: int, step: int, weights=None, mode="train") -> ScoredBatch:
    weights = torch.ones(len(names)) if weights is None else torch.tensor(weights)
    return ScoredBatch(rewards.float(), names, weights, g, slice(0, rewards.shape[0]), mode, step)


def test_monitor_logs_the_right_values():
    # 3 prompts x G=4, two rewards: "acc" varies in prompts 0 and 1, "fmt" is flat everywhere but prompt 2.
    acc = torch.tensor([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1.0])
    fmt = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1.0])
    rewards = torch.stack([acc, fmt], dim=1)  # (12, 2)
    trainer = _FakeTrainer()
    RewardVarianceMonitor()(trainer, _scored(rewards, ["acc", "fmt"], 4, step=0, weights=[1.0, 0.5]))
    log = {k: v[-1] for k, v in trainer.logged.items()}
    acc_var = within_group_variance(acc.double().reshape(3, 4))  # [0.25, 1/3, 0]
    assert log["diagnostics/acc/within_group_var_mean"] == pytest.approx(acc_var.mean().item())
    assert log["diagnostics/acc/within_group_var_q50"] == pytest.approx(0.25)
    assert log["diagnostics/acc/zero_var_share"] == pytest.approx(1 / 3)
    assert log["diagnostics/fmt/zero_var_share"] == pytest.approx(2 / 3)
    w = within_group_variance(whiten(acc.double().reshape(3, 4))).mean().item()
    assert log["diagnostics/acc/whitened_var_mean"] == pytest.approx(w)
    total = (acc + 0.5 * fmt).double().reshape(3, 4)  # the weighted sum TRL turns into advantages
    assert log["diagnostics/total/within_group_var_mean"] == pytest.approx(within_group_variance(total).mean().item())
    assert log["diagnostics/fmt/flat_steps"] == 0.0


def test_monitor_warns_once_after_flat_steps_and_rearms():
    g, steps = 4, 3
    flat = torch.ones(8, 2)
    flat[:4, 1] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # column "live" has signal on prompt 0
    monitor = RewardVarianceMonitor(flat_threshold=0.95, flat_steps=steps)
    trainer = _FakeTrainer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(steps - 1):
            monitor(trainer, _scored(flat, ["dead", "live"], g, step))
        assert not caught
        monitor(trainer, _scored(flat, ["dead", "live"], g, steps - 1))
        monitor(trainer, _scored(flat, ["dead", "live"], g, steps))  # still flat: no second warning
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert messages[0].startswith("reward dead gave zero variance on 95 % of prompts for 3 steps")
    assert trainer.logged["diagnostics/dead/flat_steps"] == [1.0, 2.0, 3.0, 4.0]
    assert trainer.logged["diagnostics/live/flat_steps"] == [0.0] * 4
    # signal comes back, then goes flat again: the warning re-arms
    lively = flat.clone()
    lively[0, 0] = 0.0
    monitor(trainer, _scored(lively, ["dead", "live"], g, steps + 1))
    assert monitor.streaks["dead"] == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(steps + 2, 2 * steps + 2):
            monitor(trainer, _scored(flat, ["dead", "live"], g, step))
    assert len(caught) == 1


def test_monitor_counts_a_step_once_and_ignores_eval_for_streaks():
    monitor = RewardVarianceMonitor(flat_steps=2)
    trainer = _FakeTrainer()
    flat = torch.ones(4, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor(trainer, _scored(flat, ["r"], 2, step=0))
        monitor(trainer, _scored(flat, ["r"], 2, step=0))  # a second generation batch in the same step
        monitor(trainer, _scored(flat, ["r"], 2, step=0, mode="eval"))
    assert monitor.streaks["r"] == 1 and not caught
    assert "diagnostics/r/within_group_var_mean" in trainer.logged


def test_monitor_skips_nan_metrics_of_a_reward_that_never_applies():
    rewards = torch.stack([torch.tensor([0.0, 1.0, 1.0, 1.0]), torch.full((4,), float("nan"))], dim=1)
    trainer = _FakeTrainer()
    RewardVarianceMonitor()(trainer, _scored(rewards, ["a", "none"], 2, step=0))
    assert "diagnostics/none/within_group_var_mean" not in trainer.logged
    assert all(not math.isnan(v) for values in trainer.logged.values() for v in values)


def test_monitor_validates_its_config():
    with pytest.raises(ConfigError) as err:
        RewardVarianceMonitor(flat_threshold=1.5, flat_steps=0)
    assert len(err.value.problems) == 2
