"""Pass-rate sampling: exact Beta updates, the discount, the shared prior, the ranking, checkpoints and metrics.

Hand-made sequences check Eqs. 1-4 of `rlsurrogate.sampling.pass_rate` to float tolerance; a synthetic stream of
prompts with known pass rates (p = 0, 0.5 or 1, told apart by their features) checks that the sampler generates
where p(1-p) is high.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from rlsurrogate.errors import ConfigError, UnsupportedError
from rlsurrogate.sampling import build_sampler
from rlsurrogate.sampling.pass_rate import beta_pq_moments, choose_bandwidth, count_passes, pooled_prior
from rlsurrogate.sampling.state import load_sampler_state, save_sampler_state

G = 4


class ClusterContext:
    """One process; prompt i has feature `cluster[i]` (+ small noise) and pass rate `p[i]`."""

    num_processes, process_index, num_generations, steps_per_generation, pad_token_id = 1, 0, G, 1, 0

    def __init__(self, p: list[float], cluster: list[float], seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.seed, self.p = seed, p
        c = torch.tensor(cluster, dtype=torch.float32)
        self.features = torch.stack([c, 1 - c, 0.01 * torch.randn(len(p), generator=g)], 1)
        self.draws = torch.Generator().manual_seed(seed + 1)

    def dataset_size(self) -> int:
        return len(self.p)

    def prompt_features(self, indices, layer: int) -> torch.Tensor:
        return self.features[list(indices)]

    def broadcast(self, value):
        return value

    def rewards(self, indices: list[int]) -> torch.Tensor:
        """`(len(indices), G)` Bernoulli(p) rewards."""
        p = torch.tensor([self.p[i] for i in indices]).unsqueeze(1)
        return (torch.rand(len(indices), G, generator=self.draws) < p).double()


def _observe(sampler, ctx, indices, rewards):
    rewards = torch.as_tensor(rewards, dtype=torch.float64)
    sampler.observe(ctx, indices, rewards.var(dim=1), rewards)


def _next_generation(sampler, ctx):
    """Starts a generation (the clock of Eq. 1 ticks) by proposing a round."""
    return sampler.propose(ctx, 0, 2)


def _two_clusters(n: int = 20) -> ClusterContext:
    return ClusterContext([0.5] * n, [0.0] * (n // 2) + [1.0] * (n - n // 2))


# ---------------------------------------------------------------------------------------------------------------
# Eqs. 1-2: exact updates and the discount


def test_posterior_updates_are_exact_on_a_hand_made_sequence():
    ctx = _two_clusters()
    sampler = build_sampler("mopps", {"discount": 0.5, "prior_alpha": 2.0, "prior_beta": 3.0})
    sampler.bind(ctx)
    _next_generation(sampler, ctx)  # t = 1
    _observe(sampler, ctx, [0, 1], [[1, 1, 0, 1], [0, 0, 0, 0]])
    assert sampler.evidence[0] == (3.0, 1.0, 1) and sampler.evidence[1] == (0.0, 4.0, 1)
    a, b = sampler.posterior(ctx, [0, 1, 2])
    torch.testing.assert_close(a, torch.tensor([5.0, 2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([4.0, 7.0, 3.0], dtype=torch.float64))
    _next_generation(sampler, ctx)  # t = 2: last generation's evidence counts half
    _observe(sampler, ctx, [0], [[0, 0, 0, 1]])
    s, f, t = sampler.evidence[0]
    assert (s, f, t) == pytest.approx((3 * 0.5 + 1, 1 * 0.5 + 3, 2))
    _next_generation(sampler, ctx)  # t = 3
    _next_generation(sampler, ctx)  # t = 4: prompt 0 faded twice, prompt 1 three times, nobody observed
    a, b = sampler.posterior(ctx, [0, 1])
    torch.testing.assert_close(a, torch.tensor([2 + 2.5 * 0.25, 2.0], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([3 + 3.5 * 0.25, 3 + 4 * 0.125], dtype=torch.float64))


def test_nan_rewards_count_for_nothing_and_unscored_groups_leave_no_trace():
    ctx = _two_clusters()
    sampler = build_sampler("mopps")
    sampler.bind(ctx)
    _next_generation(sampler, ctx)
    nan = math.nan
    _observe(sampler, ctx, [0, 1], [[1, nan, 0, 1], [nan, nan, nan, nan]])
    assert sampler.evidence == {0: (2.0, 1.0, 1)}


@pytest.mark.parametrize("discount", [1.0, 0.8])
def test_old_evidence_fades_toward_the_prior(discount):
    ctx = _two_clusters()
    sampler = build_sampler("mopps", {"discount": discount})
    sampler.bind(ctx)
    _next_generation(sampler, ctx)
    _observe(sampler, ctx, [0], [[1, 1, 1, 1]])
    means = []
    for _ in range(6):
        a, b = sampler.posterior(ctx, [0])
        means.append(float(a / (a + b)))
        _next_generation(sampler, ctx)
    assert means[0] == pytest.approx(5 / 6)
    if discount == 1.0:
        assert means == pytest.approx([5 / 6] * 6)
    else:
        assert all(x > y for x, y in zip(means, means[1:])) and means[-1] > 0.5
        assert means[-1] == pytest.approx((1 + 4 * 0.8**5) / (2 + 4 * 0.8**5))


# ---------------------------------------------------------------------------------------------------------------
# Eq. 3: the shared prior


def test_the_shared_prior_moves_an_unseen_prompt_toward_its_neighbours():
    ctx = _two_clusters()  # prompts 0-9 in one cluster, 10-19 in the other
    shared = build_sampler("pass_rate", {"feature_dims": 3, "basis_prompts": 20, "prior_strength": 4.0})
    alone = build_sampler("mopps")
    for sampler in (shared, alone):
        sampler.bind(ctx)
        _next_generation(sampler, ctx)
        _observe(sampler, ctx, [0, 1, 2, 3], [[1, 1, 1, 1]] * 4)  # cluster one: always passes
        _observe(sampler, ctx, [10, 11, 12, 13], [[0, 0, 0, 0]] * 4)  # cluster two: always fails
    a, b = alone.posterior(ctx, [5, 15])
    torch.testing.assert_close(a / (a + b), torch.tensor([0.5, 0.5], dtype=torch.float64))
    a, b = shared.posterior(ctx, [5, 15])
    mean = a / (a + b)
    assert mean[0] > 0.75 and mean[1] < 0.25, mean
    assert shared.bandwidth < math.inf  # the features explain the pass rates: a local kernel wins
    assert ((a + b > 2.0) & (a + b <= 2.0 + 4.0 + 1e-9)).all()  # at most kappa pooled pseudo-completions
    a_seen, b_seen = shared.posterior(ctx, [0])
    assert 2 + 4 < float(a_seen + b_seen) <= 2 + 4 + 4 + 1e-9  # its own group counts on top of the prior


def test_pooled_prior_against_hand_computed_counts():
    S, F = torch.tensor([2.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    r = 2.0 / 2.1  # each neighbour's weight r_j = N_j / (N_j + nu), nu = 0.1
    weights = torch.tensor([[1.0, 0.5], [0.0, 0.0], [0.2, 0.1]], dtype=torch.float64)
    a, b = pooled_prior(weights, S, F, a0=1.0, b0=1.0, kappa=6.0)
    # row 0: neighbour mass 1.5 r >= 1, so the full kappa at the mean 2/3; row 1: no neighbours, the base prior;
    # row 2: mass 0.3 r < 1 scales kappa down, same mean
    k = 6.0 * 0.3 * r
    torch.testing.assert_close(a, torch.tensor([1 + 4.0, 1.0, 1 + k * 2 / 3], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([1 + 2.0, 1.0, 1 + k / 3], dtype=torch.float64))


def test_bandwidth_is_local_when_features_explain_the_pass_rate_and_global_with_too_few_prompts():
    U = torch.tensor([[0.0], [0.01], [0.02], [1.0], [1.01], [1.02]], dtype=torch.float64)
    S = torch.tensor([4.0, 4.0, 4.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    F = 4.0 - S
    bandwidth, brier = choose_bandwidth(U, S, F, 1.0, 1.0, 4.0, (math.inf, 1.0, 0.1))
    assert bandwidth == 0.1 and brier < 0.05
    assert choose_bandwidth(U[:2], S[:2], F[:2], 1.0, 1.0, 4.0, (math.inf, 0.1))[0] == math.inf


# ---------------------------------------------------------------------------------------------------------------
# Eq. 4 and the ranking


def test_moments_of_p_times_one_minus_p():
    mean, std = beta_pq_moments(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 5.0]))
    assert float(mean[0]) == pytest.approx(1 / 6) and float(std[0]) == pytest.approx(math.sqrt(1 / 180))
    g = torch.Generator().manual_seed(0)
    x = torch.distributions.Beta(torch.tensor(3.0), torch.tensor(5.0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
        samples = x.sample((200_000,))
    pq = samples * (1 - samples)
    assert float(mean[1]) == pytest.approx(float(pq.mean()), abs=2e-3)
    assert float(std[1]) == pytest.approx(float(pq.std()), abs=2e-3)


KINDS = (0.0, 0.5, 1.0)


def _synthetic(n: int = 150, seed: int = 0) -> ClusterContext:
    """Prompts whose pass rate is 0, 0.5 or 1, the kind a feature (with noise the context adds)."""
    g = torch.Generator().manual_seed(seed)
    kinds = torch.randint(3, (n,), generator=g).tolist()
    return ClusterContext([KINDS[k] for k in kinds], [k / 2 for k in kinds], seed)


@pytest.mark.parametrize(
    "name, params, n",
    [
        ("pass_rate", {}, 150),
        ("pass_rate", {"rule": "thompson"}, 150),
        ("pass_rate", {"share_prior": False}, 30),
        ("pass_rate", {}, 30),
    ],
)
def test_generates_where_the_pass_rate_is_near_one_half(name, params, n):
    """The chosen prompts' mean true p(1-p) beats uniform picks (1/3 x 0.25): with the shared prior even when most
    prompts are new (150 prompts, 160 groups), without it once prompts recur (30 prompts)."""
    late = []
    for seed in range(3):
        ctx = _synthetic(n, seed=seed)
        sampler = build_sampler(name, {"feature_dims": 3, **params})
        sampler.bind(ctx)
        for step in range(40):
            indices = sampler.propose(ctx, 0, 4)
            _observe(sampler, ctx, indices, ctx.rewards(indices))
            if step >= 20:
                late += [ctx.p[i] * (1 - ctx.p[i]) for i in indices]
    uniform = 0.25 / 3
    assert sum(late) / len(late) > 1.8 * uniform, f"{name} {params} n={n}: {sum(late) / len(late):.3f}"


def test_exploration_draws_from_the_whole_pool():
    ctx = _synthetic()
    sampler = build_sampler("pass_rate", {"explore": 1.0, "feature_dims": 3})
    sampler.bind(ctx)
    chosen = []
    for _ in range(20):
        indices = sampler.propose(ctx, 0, 4)
        _observe(sampler, ctx, indices, ctx.rewards(indices))
        chosen += indices
    assert sampler.round_metrics()["sampling/explore_share"] == 1.0
    assert {ctx.p[i] for i in chosen} == set(KINDS)


# ---------------------------------------------------------------------------------------------------------------
# rewards, metrics, checkpoints, settings


def test_passes_of_binary_and_thresholded_rewards_and_a_one_line_refusal():
    rewards = torch.tensor([[1.0, 0.0, 1.0, math.nan], [0.2, 0.7, 0.9, 0.4]])
    passes, scored = count_passes(rewards[:1], None)
    assert passes.tolist() == [2.0] and scored.tolist() == [3.0]
    passes, scored = count_passes(rewards, 0.5)
    assert passes.tolist() == [2.0, 2.0] and scored.tolist() == [3.0, 4.0]
    with pytest.raises(UnsupportedError, match="trained reward is 0.2, not 0 or 1.*sampling.params.threshold") as err:
        count_passes(rewards, None)
    assert "\n" not in str(err.value)


def test_round_metrics_report_brier_and_signal_share_of_the_generation():
    ctx = _two_clusters()
    sampler = build_sampler("mopps")
    sampler.bind(ctx)
    indices = sampler.propose(ctx, 0, 2)  # nothing seen: both predicted 1/2
    _observe(sampler, ctx, indices, [[1, 1, 1, 1], [1, 0, 1, 0]])
    metrics = sampler.round_metrics()
    assert metrics["sampling/brier"] == pytest.approx(((0.5 - 1.0) ** 2 + 0.0) / 2)
    assert metrics["sampling/signal_share"] == pytest.approx(0.5)
    assert metrics["sampling/predicted_pass_rate"] == pytest.approx(0.5)
    assert metrics["sampling/observed_pass_rate"] == pytest.approx(0.75)
    assert metrics["sampling/prompts_seen"] == 2.0 and "sampling/prior_bandwidth" not in metrics


def test_state_round_trip_through_a_checkpoint_makes_the_same_choices(tmp_path):
    ctx = _synthetic()
    sampler = build_sampler("pass_rate", {"feature_dims": 3})
    sampler.bind(ctx)
    for _ in range(6):
        indices = sampler.propose(ctx, 0, 4)
        _observe(sampler, ctx, indices, ctx.rewards(indices))
    save_sampler_state(sampler, tmp_path)
    restored = build_sampler("pass_rate", {"feature_dims": 3})
    restored.bind(ctx)
    assert load_sampler_state(restored, tmp_path)
    assert restored.evidence == sampler.evidence and restored.clock == sampler.clock
    assert json.loads(json.dumps(sampler.state_dict()[0])) == restored.state_dict()[0]
    for _ in range(4):
        a, b = sampler.propose(ctx, 0, 4), restored.propose(ctx, 0, 4)
        assert a == b
        rewards = ctx.rewards(a)
        _observe(sampler, ctx, a, rewards)
        _observe(restored, ctx, b, rewards)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"discount": 1.5}, "discount = 1.5: must be a number in \\[0, 1\\]"),
        ({"threshold": "high"}, "threshold = 'high': must be a number"),
        ({"rule": "greedy"}, 'rule = "greedy": must be one of expected, thompson, ucb'),
        ({"prior_alpha": 0}, "prior_alpha = 0: must be a number"),
        ({"share_prior": "yes"}, "share_prior = 'yes': must be true or false"),
        ({"pool_factor": 0}, "pool_factor = 0"),
        ({"pool": 4}, "sampling.params.pool: unknown for pass_rate"),
    ],
)
def test_bad_settings_are_one_line_each(params, message):
    with pytest.raises(ConfigError, match=message):
        build_sampler("pass_rate", params)


def test_mopps_is_the_beta_only_thompson_sampler_and_filter_adds_dynamic_sampling():
    mopps = build_sampler("mopps")
    assert not mopps.config.share_prior and mopps.config.rule == "thompson" and mopps.config.explore == 0.0
    assert build_sampler("pass_rate").config.share_prior
    filtering = build_sampler("pass_rate", {"filter": True, "max_rounds": 5})
    assert filtering.filters and filtering.max_rounds == 5
