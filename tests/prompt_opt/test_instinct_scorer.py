"""INSTINCT's scorer learns from its data: fan-in initial weights, pool-standardised PCA features, one pool interface.

Synthetic pools (`rlsurrogate.prompt_opt.synthetic`) have 576-d features like the embedded 135M model's hidden
states and a known hidden score, so what the scorer picks can be checked against the truth.
"""

from __future__ import annotations

import pytest
import torch

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.comparison import paired_bootstrap_ci
from rlsurrogate.prompt_opt.evaluator import EVAL_TEMPLATE, InstructionEvaluator
from rlsurrogate.prompt_opt.instinct import POOL_METHODS, INSTINCTConfig, make_neural_ucb, optimize, search_pool
from rlsurrogate.prompt_opt.pool_features import PoolFeatureMap
from rlsurrogate.prompt_opt.query_log import Budget
from rlsurrogate.prompt_opt.synthetic import SyntheticPoolConfig, make_synthetic_pool

pytest.importorskip("rlsurrogate.blackbox.neural_bandit")

PAPER = {"init": "normal", "feature_stats": "observed", "nu": 1.0}  # INSTINCT's own setting


def _pool(seed=7, size=200):
    synthetic = make_synthetic_pool(SyntheticPoolConfig(size=size, seed=seed))
    prompts = synthetic.pool.prompts
    H = synthetic.pool.pool_features().double()  # (N, 576)
    q = torch.tensor([synthetic.scores[p] for p in prompts], dtype=torch.float64)  # (N,) hidden scores
    return synthetic, H, q


def _fitted_picks(config: INSTINCTConfig, H, scores, observed, k=20):
    """The scorer fitted on `observed` candidates' scores; its k best unobserved candidates by UCB."""
    X = PoolFeatureMap(H, config.feature_dim)(H) if config.feature_stats == "pool" else H
    bandit = make_neural_ucb(X.shape[1], config)
    bandit.train_steps = 0  # every update retrains from the initial weights: train once, on the last one
    for i in observed[:-1]:
        bandit.update(X[i], float(scores[i]))
    bandit.train_steps = config.train_steps
    bandit.update(X[observed[-1]], float(scores[observed[-1]]))
    mean, bonus = bandit.predict(X)
    ucb = mean + bonus
    ucb[observed] = -float("inf")
    return ucb.topk(k).indices


def picks_follow_the_observed_scores(config: INSTINCTConfig) -> tuple[float, float, int]:
    """(true score of the picks fitted on the true scores, of those fitted on the inverted scores, shared picks)."""
    _, H, q = _pool()
    observed = torch.randperm(len(q), generator=torch.Generator().manual_seed(0))[:40]
    picks_true = _fitted_picks(config, H, q, observed)
    picks_inverted = _fitted_picks(config, H, 1 - q, observed)
    shared = len(set(picks_true.tolist()) & set(picks_inverted.tolist()))
    return float(q[picks_true].mean()), float(q[picks_inverted].mean()), shared


def test_the_scorers_picks_change_when_the_observed_scores_are_inverted():
    true_mean, inverted_mean, shared = picks_follow_the_observed_scores(INSTINCTConfig(train_steps=200, seed=0))
    # INSTINCT's own setting (PAPER) picks the same 20 candidates either way, with the same mean true score
    assert shared <= 12  # of 20 picks: the scorer reads its data, it does not rank by its initial weights alone
    assert true_mean > inverted_mean + 0.06  # and it reads the right way round


@pytest.mark.parametrize("dim", [8, 32])
def test_untrained_output_spread_is_order_one_with_fan_in_weights(dim):
    _, H, _ = _pool()
    X = PoolFeatureMap(H, dim)(H)
    fan_in = make_neural_ucb(dim, INSTINCTConfig())  # untrained: nothing observed yet
    paper = make_neural_ucb(dim, INSTINCTConfig(init="normal"))
    assert 0.05 < float(fan_in.predict(X)[0].std()) < 3.0
    # N(0, 1) weights: spread ~ sqrt(dim * width / 2), far above scores in [0, 1]
    assert float(paper.predict(X)[0].std()) > 0.3 * (dim * 100 / 2) ** 0.5


def test_pool_feature_map_is_centred_unit_scale_and_ordered():
    _, H, _ = _pool()
    X = PoolFeatureMap(H, 16)(H)
    assert X.shape == (200, 16)
    torch.testing.assert_close(X.mean(0), torch.zeros(16, dtype=torch.float64), atol=1e-9, rtol=0)
    variances = X.var(0)
    assert abs(float(variances.mean()) - 1.0) < 1e-6
    assert torch.all(variances[:-1] >= variances[1:] - 1e-9)  # leading components stay the larger ones
    assert PoolFeatureMap(H, 0)(H).shape == (200, 576)  # 0 keeps every standardised coordinate


def test_pool_feature_map_uses_pool_statistics_only():
    _, H, _ = _pool()
    feature_map = PoolFeatureMap(H, 16)
    X = feature_map(H)
    rows = torch.tensor([3, 50, 7])
    torch.testing.assert_close(feature_map(H[rows]), X[rows])  # a row's features do not depend on the others given
    # a common offset and per-coordinate units of the pool change nothing (Gram matrix: blind to component signs)
    P = H * torch.linspace(0.5, 2.0, 576, dtype=torch.float64) + 100.0
    Xp = PoolFeatureMap(P, 16)(P)
    torch.testing.assert_close(Xp @ Xp.T, X @ X.T, atol=1e-6, rtol=1e-6)
    # the statistics are the pool's: fitted on a subset (e.g. the observed candidates) the map differs
    subset = PoolFeatureMap(H[:40], 16)(H)
    assert not torch.allclose(subset @ subset.T, X @ X.T, atol=1e-2)


def test_the_scorer_sees_pool_features_whatever_was_observed():
    synthetic, H, _ = _pool(size=60)
    expected = PoolFeatureMap(H, 32)(H)
    fed = {}

    def spy_factory(dim, config):
        bandit = make_neural_ucb(dim, config)
        update = bandit.update

        def recording_update(feature, value):
            fed.setdefault(config.seed, []).append(feature.clone())
            update(feature, value)

        bandit.update = recording_update
        return bandit

    for seed in (0, 1):  # different seeds: different observed candidates, in a different order
        evaluator = InstructionEvaluator(synthetic.task, synthetic.client, Budget(max_queries=6))
        config = INSTINCTConfig(n_init=3, train_steps=5, seed=seed)
        optimize("instinct", evaluator, synthetic.pool, config, bandit_factory=spy_factory)
    assert len(fed) == 2 and all(len(f) == 6 for f in fed.values())
    for features in fed.values():
        for h in features:  # every fed feature is a row of the pool's map, unchanged by what was seen before
            assert torch.isclose(expected, h, atol=1e-12, rtol=0).all(1).any()
    assert make_neural_ucb(32, INSTINCTConfig()).standardise is False  # no second, observed standardisation


@pytest.mark.parametrize("method", POOL_METHODS)
def test_every_pool_method_spends_the_same_distinct_call_budget(method):
    synthetic = make_synthetic_pool(SyntheticPoolConfig(size=40, seed=3))
    calls_before = synthetic.client.usage.calls
    result = search_pool(method, synthetic.pool, synthetic.task, synthetic.client, 8 * 6 + 5, INSTINCTConfig(
        n_init=2, train_steps=5, seed=0))  # fmt: skip
    assert result.queries == 6 and result.stopped == "budget"
    assert synthetic.client.usage.calls - calls_before == 6 * 8  # n_val = 8 distinct calls per query
    assert len({e.instruction for e in result.history}) == 6


def test_search_is_deterministic_under_a_seed():
    def run(seed):
        synthetic = make_synthetic_pool(SyntheticPoolConfig(size=60, seed=5))
        config = INSTINCTConfig(n_init=3, train_steps=20, seed=seed)
        result = search_pool("instinct", synthetic.pool, synthetic.task, synthetic.client, 8 * 10, config)
        return [e.instruction for e in result.history], [e.score for e in result.history]

    (picks, scores), (picks_again, scores_again) = run(0), run(0)
    assert picks == picks_again
    assert scores == pytest.approx(scores_again, abs=1e-12)
    assert run(1)[0] != picks


def test_synthetic_pool_scores_and_black_box():
    synthetic = make_synthetic_pool(SyntheticPoolConfig(size=200, seed=2))
    q = sorted(synthetic.scores.values())
    assert len(synthetic.top) == 20 and min(synthetic.scores[p] for p in synthetic.top) == pytest.approx(q[-20])
    assert sum(s > 0.5 for s in q) == pytest.approx(20, abs=1)  # the top share scores above 0.5
    best = max(synthetic.scores, key=synthetic.scores.get)
    worst = min(synthetic.scores, key=synthetic.scores.get)

    def answers(prompt, n=400):
        requests = [[{"role": "user", "content": EVAL_TEMPLATE.format(instruction=prompt, input=f"x{i}")}]
                    for i in range(n)]  # fmt: skip
        return [c.text == "yes" for c in synthetic.client.complete(requests)]

    assert sum(answers(best)) / 400 == pytest.approx(synthetic.scores[best], abs=0.08)
    assert sum(answers(worst)) / 400 == pytest.approx(synthetic.scores[worst], abs=0.05)
    assert answers(best, 50) == answers(best, 50)  # deterministic per request, like a greedy model


def test_paired_bootstrap_ci_brackets_the_mean_and_narrows_with_more_pairs():
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(200, generator=g) * 0.2 + 0.6).tolist()
    b = (torch.tensor(a) - 0.1 + torch.randn(200, generator=g) * 0.1).tolist()
    wide, narrow = paired_bootstrap_ci(a[:20], b[:20]), paired_bootstrap_ci(a, b)
    for ci in (wide, narrow):
        assert ci["ci_low"] < ci["mean"] < ci["ci_high"]
    assert narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]
    assert narrow["ci_low"] < 0.1 < narrow["ci_high"] and narrow["ci_low"] > 0
    constant = paired_bootstrap_ci([0.5, 0.7, 0.9], [0.3, 0.5, 0.7])
    assert constant["ci_low"] == pytest.approx(0.2) and constant["ci_high"] == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="equally many"):
        paired_bootstrap_ci([0.1, 0.2], [0.1])


@pytest.mark.parametrize(
    "kwargs, field",
    [({"init": "xavier"}, "instinct.init"), ({"feature_stats": "batch"}, "instinct.feature_stats"),
     ({"feature_dim": -1}, "instinct.feature_dim")],
)  # fmt: skip
def test_bad_scorer_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        INSTINCTConfig(**kwargs)


def test_bad_pool_features_and_budget_are_one_line_errors():
    with pytest.raises(ConfigError, match="N >= 2"):
        PoolFeatureMap(torch.zeros(1, 4))
    with pytest.raises(ConfigError, match="feature dim"):
        PoolFeatureMap(torch.randn(5, 4), dim=-2)
    synthetic = make_synthetic_pool(SyntheticPoolConfig(size=20, seed=0))
    with pytest.raises(ConfigError, match="budget_calls = 4"):
        search_pool("random", synthetic.pool, synthetic.task, synthetic.client, 4)
    with pytest.raises(ConfigError, match="'ape' samples its own"):
        search_pool("ape", synthetic.pool, synthetic.task, synthetic.client, 80)
