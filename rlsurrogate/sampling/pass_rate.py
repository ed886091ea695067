"""Pass-rate sampling: a Beta posterior on each prompt's pass rate, a prior shared across prompts, and generation
where p(1-p) is high.

A group of G completions teaches GRPO only through its within-group reward variance; for a 0/1 reward with pass
rate p its expectation is proportional to p(1-p), zero both for prompts the policy always solves and for prompts it
never solves. `predictive` regresses the observed variance, which cannot tell those two apart; this sampler
predicts p itself. Here a completion *passes* when its trained reward is 1 (`threshold: null`, 0/1 rewards only) or
>= `threshold`. Prompt i's group gives k_i passes among its n_i scored completions, k_i ~ Binomial(n_i, p_i).

Evidence with a discount (MoPPS, Qu et al. 2025, arXiv 2507.04632: streaming Bayesian inference on each prompt's
latent success rate with a temporal decay, so the posterior follows the moving policy), t counting generations:

    S_i <- lambda^(t - t_i) S_i + k_i,    F_i <- lambda^(t - t_i) F_i + (n_i - k_i),    t_i <- t         (1)
    p_i ~ Beta(a_i + S_i, b_i + F_i)                                                                    (2)

MoPPS's discounted update alpha <- lambda alpha + (1 - lambda) alpha_0 + k (our reading of the paper; equation numbers
not checked) is the same recursion on alpha - alpha_0. Deviation: here every prompt's evidence fades with each
generation, seen or not (lazily, through t_i).

Shared prior (`pass_rate`; the `mopps` ablation keeps a_i = a_0, b_i = b_0 for every prompt): a Gaussian kernel on
prompt features u (predictive.py's features: pooled policy hidden states, principal directions, unit cube),
w_ij = exp(-|u_i - u_j|^2 / (2 l^2)), pools the other prompts' posteriors (Nadaraya-Watson on their pass rates):

    r_j = N_j / (N_j + nu),   m_i = sum_{j != i} w_ij r_j S_j / N_j / sum_{j != i} w_ij r_j,   N_j = S_j + F_j
    k_i = kappa min(1, sum_{j != i} w_ij r_j),   a_i = a_0 + k_i m_i,   b_i = b_0 + k_i (1 - m_i)              (3)

The prior's mean is the neighbours' kernel-weighted pass rate, its strength at most kappa (`prior_strength`)
pseudo-completions, so an unseen prompt starts where its neighbours are and its own groups soon outweigh them. A
neighbour counts once, whatever its evidence (r_j ~ 1 from nu = 0.1 of a completion on): pooling raw counts instead
let the fresh evidence of the prompts the sampler keeps choosing (p near 1/2) outweigh the faded evidence of those
it avoids and pulled every prior toward 1/2 (Brier on random prompts, synthetic harness seeds 100-109: 0.083 vs 0.075).
The bandwidth l is chosen each generation from `_BANDWIDTHS` x sqrt(d) by the leave-one-out Brier score of the pooled
prior mean against the observed prompts' own pass rates, weighted by their evidence; l = inf pools every prompt alike
(the global pass rate), so features that carry nothing cost little.

Ranking (a = a_i + S_i, b = b_i + F_i):

    E[p(1-p)] = a b / ((a+b)(a+b+1)),   E[p^2 (1-p)^2] = a(a+1) b(b+1) / ((a+b)(a+b+1)(a+b+2)(a+b+3))   (4)

`rule: expected` (the default): E[p(1-p)] of (4), which already counts the posterior's spread (a wide posterior
scores less than a sure p = 1/2); `rule: thompson`: one draw p~ ~ Beta(a, b) per candidate, score p~(1 - p~) (MoPPS
takes the draws closest to the target rate 1/2: the same order); `rule: ucb`: E[p(1-p)] + sqrt(beta) Std[p(1-p)].
Candidates are a `pool_factor` x pool from the sampler's seeded stream (MoPPS pre-samples a larger candidate batch,
likewise); each prompt is, with probability `explore`, drawn uniformly from the rest of the pool instead. With
`filter: true` dynamic sampling runs on top.

Continuous rewards: thresholded, or refused with one line when `threshold` is unset; predicting a continuous
reward's mean and spread is not implemented (`predictive` regresses any reward's within-group variance).

Identical decisions on every process: the state is a function of the gathered rewards, the shared stream and the
all-gathered features, in float64 on the CPU with a seeded generator (the global RNG is left untouched), and the
chosen positions are broadcast from process 0.

Metrics, once per generation: `sampling/brier` (mean of (posterior mean before generating - observed group pass
rate)^2 over the generated groups), `sampling/signal_share` (share of generated groups with signal),
`sampling/predicted_pass_rate`, `sampling/observed_pass_rate`, `sampling/prior_bandwidth` (l / sqrt(d); not logged
when l = inf, the global pool, nor for `mopps`), `sampling/prompts_seen`, `sampling/explore_share`,
`sampling/surrogate_s`, `sampling/features_s`.

Defaults (`rule: expected`, `explore` 0.05, `discount` 0.9, `prior_strength` 4, `pool_factor` 4) were chosen on the
synthetic harness (scripts/bench_pass_rate.py, seeds 100-119; its reported figures use seeds 0-19): there
`expected` gave a higher share of groups with signal than `thompson` or `ucb` with beta 1, and discount 0.9-0.95
more than 1 (no fading) or 0.8.

Checked: exact posterior updates, the shared prior and the discount on hand-made sequences, checkpoint round trip
and 2-process agreement (tests/sampling); on a synthetic world of drifting pass rates (scripts/bench_pass_rate.py)
only. Held-out accuracy of a trained model is not measured.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from rlsurrogate.errors import ConfigError, UnsupportedError
from rlsurrogate.sampling.base import (
    PromptStream,
    Sampler,
    SamplingContext,
    check_max_rounds,
    has_signal,
    sampler_config,
)
from rlsurrogate.sampling.predictive import Basis, choose, distinct_pool, fit_basis, project

__all__ = [
    "MoPPSSampling",
    "PassRateConfig",
    "PassRateSampling",
    "beta_pq_moments",
    "choose_bandwidth",
    "count_passes",
    "pooled_prior",
]

RULES = ("expected", "thompson", "ucb")
# Bandwidth grid in units of sqrt(d) (unit-cube features: a typical distance is ~0.4 sqrt(d)); inf first, so that a
# tie keeps the smoothest prior.
_BANDWIDTHS = (math.inf, 1.0, 0.5, 0.25, 0.125, 0.0625)
# Observed prompts the leave-one-out bandwidth choice looks at, at most (its cost is quadratic in them).
_LOO_PROMPTS = 512
# A 0/1 reward is 0 or 1 up to this (float32 rewards summed in float64).
_BINARY_ATOL = 1e-6
# Evidence below this (after the discount) counts as none.
_MIN_EVIDENCE = 1e-9
# nu of Eq. 3: a neighbour with this much evidence counts half (0.1 completion: any real evidence counts ~fully).
_NEIGHBOUR_NU = 0.1
# As predictive.py: a different stream than the candidates' for the prompts that fit the feature basis.
_BASIS_SEED_OFFSET = 7_919


@dataclass
class PassRateConfig:
    threshold: float | None = field(
        default=None, metadata={"help": "A completion passes when its reward >= threshold; null: 0/1 rewards only."}
    )
    discount: float = field(
        default=0.9, metadata={"help": "lambda of Eq. 1: evidence kept per generation (1: never fades)."}
    )
    prior_alpha: float = field(default=1.0, metadata={"help": "a_0: Beta prior pseudo-passes (uniform prior)."})
    prior_beta: float = field(default=1.0, metadata={"help": "b_0: Beta prior pseudo-failures (uniform prior)."})
    share_prior: bool = field(default=True, metadata={"help": "Pool neighbours' evidence into the prior (Eq. 3)."})
    prior_strength: float = field(
        default=4.0, metadata={"help": "kappa of Eq. 3: pooled pseudo-completions at most (half a group of 8)."}
    )
    pool_factor: int = field(default=4, metadata={"help": "Candidates per chosen prompt (pool = 4x the batch)."})
    rule: str = field(
        default="expected", metadata={"help": "expected (E[p(1-p)], Eq. 4) | thompson (one Beta draw each) | ucb."}
    )
    beta: float = field(default=1.0, metadata={"help": "UCB: E[p(1-p)] + sqrt(beta) Std[p(1-p)]."})
    explore: float = field(
        default=0.05, metadata={"help": "Probability that a prompt is drawn uniformly from the pool instead."}
    )
    feature_layer: int = field(
        default=0, metadata={"help": "Hidden state pooled as features: 0 = input embeddings, -1 = last layer."}
    )
    feature_dims: int = field(default=8, metadata={"help": "Principal components of the features the kernel sees."})
    basis_prompts: int = field(default=64, metadata={"help": "Prompts whose features fit the principal directions."})
    filter: bool = field(default=False, metadata={"help": "Also drop zero-variance groups and refill (DAPO)."})
    max_rounds: int = field(default=1, metadata={"help": "With filter: generation rounds per step at most."})

    def __post_init__(self) -> None:
        problems = []
        for name, value, low, high, hint in (
            ("pool_factor", self.pool_factor, 1, 1000, "4 draws from four times the prompts a step needs"),
            ("feature_dims", self.feature_dims, 1, 64, "8 is the default"),
            ("basis_prompts", self.basis_prompts, 2, 100_000, "64 is the default"),
            ("feature_layer", self.feature_layer, -1000, 1000, "0 (embeddings) or -1 (last layer)"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(
                    f"sampling.params.{name} = {value!r}: must be a whole number in [{low:g}, {high:g}]; {hint}."
                )
        for name, value, low, high, hint in (
            ("discount", self.discount, 0.0, 1.0, "0.9 keeps a generation's evidence at 0.9 the next"),
            ("prior_alpha", self.prior_alpha, 1e-6, 1e6, "1 with prior_beta 1 is the uniform prior"),
            ("prior_beta", self.prior_beta, 1e-6, 1e6, "1 with prior_alpha 1 is the uniform prior"),
            ("prior_strength", self.prior_strength, 0.0, 1e6, "4 pseudo-completions is the default"),
            ("beta", self.beta, 0.0, 1e6, "1 is one standard deviation"),
            ("explore", self.explore, 0.0, 1.0, "0.05 is the default"),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                problems.append(
                    f"sampling.params.{name} = {value!r}: must be a number in [{low:g}, {high:g}]; {hint}."
                )
        if self.threshold is not None and (
            isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float)
        ):
            problems.append(
                f"sampling.params.threshold = {self.threshold!r}: must be a number (a completion passes when its "
                "reward >= threshold) or null (0/1 rewards)."
            )
        if self.rule not in RULES:
            problems.append(f'sampling.params.rule = "{self.rule}": must be one of {", ".join(RULES)}.')
        for name in ("share_prior", "filter"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"sampling.params.{name} = {getattr(self, name)!r}: must be true or false.")
        problems += check_max_rounds(self.max_rounds, "sampling.params.max_rounds", "1 without filter")
        if problems:
            raise ConfigError(problems)


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def count_passes(rewards: torch.Tensor, threshold: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`(P,)` passes k and scored completions n of each group of `(P, G)` trained rewards (NaN: not scored).

    Raises UnsupportedError when `threshold` is None and a scored reward is neither 0 nor 1.
    """
    r = rewards.double()
    scored = ~torch.isnan(r)
    if threshold is None:
        finite = r[scored]
        off = finite[((finite - 0).abs() > _BINARY_ATOL) & ((finite - 1).abs() > _BINARY_ATOL)]
        if off.numel():
            raise UnsupportedError(
                f"sampling: a completion's trained reward is {float(off[0]):.4g}, not 0 or 1; the pass-rate samplers "
                "need a pass/fail reward: set sampling.params.threshold (a completion passes when its reward >= it), "
                "or use sampling.name: predictive, which predicts any reward's within-group variance."
            )
        passed = scored & (r > 0.5)
    else:
        passed = scored & (r >= threshold)
    return passed.sum(1).double(), scored.sum(1).double()


def beta_pq_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of p(1-p) for p ~ Beta(a, b) (Eq. 4), elementwise."""
    s = a + b
    first = a * b / (s * (s + 1))
    second = a * (a + 1) * b * (b + 1) / (s * (s + 1) * (s + 2) * (s + 3))
    return first, (second - first**2).clamp(min=0.0).sqrt()


def pooled_prior(
    weights: torch.Tensor, S: torch.Tensor, F: torch.Tensor, a0: float, b0: float, kappa: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prior pseudo-counts (a, b) of Eq. 3 for m prompts from the posteriors of M others.

    Args:
        weights: `(m, M)` kernel weights w_ij (zero where j is i itself).
        S, F: `(M,)` discounted passes and failures of the M observed prompts.
        a0, b0: the base Beta prior; kappa: the pooled prior's strength at most, in pseudo-completions.
    """
    N = S + F
    r = N / (N + _NEIGHBOUR_NU)  # (M,) a neighbour counts once, whatever its evidence
    rate = torch.where(N > _MIN_EVIDENCE, S / N.clamp(min=_MIN_EVIDENCE), 0.0)  # (M,)
    mass = weights @ r  # (m,)
    m = torch.where(mass > _MIN_EVIDENCE, weights @ (r * rate) / mass.clamp(min=_MIN_EVIDENCE), 0.5)
    k = kappa * mass.clamp(max=1.0)
    return a0 + k * m, b0 + k * (1 - m)


def kernel_weights(sq_dist: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Gaussian kernel exp(-|u - v|^2 / (2 l^2)) from squared distances `(m, M)`; ones for l = inf."""
    if math.isinf(bandwidth):
        return torch.ones_like(sq_dist)
    return torch.exp(-sq_dist / (2 * bandwidth**2))


def choose_bandwidth(
    U: torch.Tensor, S: torch.Tensor, F: torch.Tensor, a0: float, b0: float, kappa: float, grid: tuple[float, ...]
) -> tuple[float, float]:
    """The bandwidth of `grid` whose leave-one-out prior mean (Eq. 3) best predicts the observed pass rates.

    Args:
        U: `(M, d)` features of the observed prompts; S, F: `(M,)` their discounted passes and failures.

    Returns:
        (bandwidth, its evidence-weighted Brier score); (inf, nan) below 3 prompts.
    """
    N = S + F
    if U.shape[0] < 3:
        return math.inf, math.nan
    sq_dist = torch.cdist(U.double(), U.double()).square()  # (M, M)
    best = (math.inf, math.inf)
    for bandwidth in grid:
        W = kernel_weights(sq_dist, bandwidth).fill_diagonal_(0.0)  # leave one out
        a, b = pooled_prior(W, S, F, a0, b0, kappa)
        brier = float((N * (a / (a + b) - S / N).square()).sum() / N.sum())
        if brier < best[1] - 1e-12:
            best = (bandwidth, brier)
    return best


# ---------------------------------------------------------------------------------------------------------------
# the sampler


class PassRateSampling(Sampler):
    """Chooses each round's prompts from a candidate pool by their posterior p(1-p) (Eqs. 1-4)."""

    name = "pass_rate"
    needs_dataset = True

    def __init__(self, **params: Any):
        super().__init__()
        self.config = sampler_config(PassRateConfig, self.name, {**self._defaults(), **params})
        self.filters = self.config.filter
        self.max_rounds = self.config.max_rounds if self.config.filter else 1
        self.clock = 0  # generations started (the t of Eq. 1)
        self.calls = 0  # seeds each choice's generator
        self.evidence: dict[int, tuple[float, float, int]] = {}  # index -> (S_i, F_i, t_i) of Eq. 1
        self.basis: Basis | None = None
        self.cache: dict[int, torch.Tensor] = {}  # index -> (d,) features, computed once
        self.bandwidth = math.inf
        self._pending: dict[int, float] = {}  # position in the last proposal -> predicted pass rate
        self.last_predicted: list[float] = []  # posterior mean pass rate of each prompt of the last proposal
        self._generation: dict[str, list[float]] = {}

    @staticmethod
    def _defaults() -> dict[str, Any]:
        return {}

    # -- the seam ------------------------------------------------------------------------------------------------

    def propose(self, ctx: SamplingContext, round_index: int, num_prompts: int) -> list[int]:
        assert self.stream is not None, "bind() runs before training"
        if round_index == 0:
            self.clock += 1
            self._generation = {k: [] for k in ("predicted", "observed", "signal", "explored", "surrogate_s")}
            self._generation["features_s"] = []
        pool = distinct_pool(self.stream, num_prompts * self.config.pool_factor, num_prompts)
        tick = time.perf_counter()
        a, b = self.posterior(ctx, pool)  # (m,) each
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + self.calls)
        self.calls += 1
        if self.config.rule in ("expected", "ucb"):
            mean, std = beta_pq_moments(a, b)
            scores = mean + math.sqrt(self.config.beta) * std if self.config.rule == "ucb" else mean
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
                draws = torch.distributions.Beta(a, b).sample()  # (m,)
            scores = draws * (1 - draws)
        positions, explored = choose(scores, num_prompts, self.config.explore, generator)
        positions = ctx.broadcast(positions)  # process 0's choice on every process
        self._generation["surrogate_s"].append(time.perf_counter() - tick)
        self._generation["explored"] += [float(e) for e in explored]
        self._pending = {k: float(a[p] / (a[p] + b[p])) for k, p in enumerate(positions)}
        self.last_predicted = list(self._pending.values())
        chosen = [pool[p] for p in positions]
        if len(chosen) < num_prompts:  # a dataset smaller than the round: repeat prompts
            chosen = (chosen * math.ceil(num_prompts / len(chosen)))[:num_prompts]
        return chosen

    def observe(
        self,
        ctx: SamplingContext,
        indices: list[int] | None,
        variances: torch.Tensor,
        rewards: torch.Tensor | None = None,
    ) -> None:
        assert indices is not None and rewards is not None
        passes, scored = count_passes(rewards, self.config.threshold)
        decay, signal = self.config.discount, has_signal(variances).tolist()
        for k, (index, kk, n, v) in enumerate(zip(indices, passes.tolist(), scored.tolist(), signal, strict=True)):
            if n == 0:
                continue  # nobody scored this group
            S, F, t = self.evidence.get(index, (0.0, 0.0, self.clock))
            fade = decay ** (self.clock - t)
            self.evidence[index] = (S * fade + kk, F * fade + (n - kk), self.clock)  # Eq. 1
            if k in self._pending:
                self._generation["predicted"].append(self._pending.pop(k))
                self._generation["observed"].append(kk / n)
                self._generation["signal"].append(float(v))

    def round_metrics(self) -> dict[str, float]:
        g = self._generation
        predicted, observed = torch.tensor(g["predicted"]), torch.tensor(g["observed"])
        metrics = {
            "sampling/explore_share": sum(g["explored"]) / max(len(g["explored"]), 1),
            "sampling/surrogate_s": sum(g["surrogate_s"]),
            "sampling/features_s": sum(g["features_s"]),
            "sampling/prompts_seen": float(len(self.evidence)),
        }
        if predicted.numel():
            metrics |= {
                "sampling/brier": float((predicted - observed).square().mean()),
                "sampling/signal_share": sum(g["signal"]) / len(g["signal"]),
                "sampling/predicted_pass_rate": float(predicted.mean()),
                "sampling/observed_pass_rate": float(observed.mean()),
            }
        if self.config.share_prior:
            metrics["sampling/prior_bandwidth"] = self.bandwidth
        return metrics

    # -- the model -----------------------------------------------------------------------------------------------

    def posterior(self, ctx: SamplingContext, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(m,)` Beta parameters (a, b) of Eq. 2 for the prompts `indices`, at the current generation."""
        cfg = self.config
        S, F = self._discounted(indices)  # (m,) each
        if not cfg.share_prior:
            return cfg.prior_alpha + S, cfg.prior_beta + F
        U = self._features(ctx, indices)  # (m, d)
        seen = [i for i, (s, f, _) in self.evidence.items() if s + f > _MIN_EVIDENCE]
        if not seen:
            return cfg.prior_alpha + S, cfg.prior_beta + F
        V = self._features(ctx, seen)  # (M, d)
        S_seen, F_seen = self._discounted(seen)
        scale = math.sqrt(V.shape[1])
        loo = seen
        if len(seen) > _LOO_PROMPTS:  # a seeded subset for the bandwidth's choice
            g = torch.Generator().manual_seed(ctx.seed * 1_000_003 + self.calls)
            loo = sorted(torch.randperm(len(seen), generator=g)[:_LOO_PROMPTS].tolist())
            loo = [seen[j] for j in loo]
        position = {index: j for j, index in enumerate(seen)}
        rows = [position[i] for i in loo]
        grid = tuple(r * scale for r in _BANDWIDTHS)
        bandwidth, _ = choose_bandwidth(
            V[rows], S_seen[rows], F_seen[rows], cfg.prior_alpha, cfg.prior_beta, cfg.prior_strength, grid
        )
        self.bandwidth = bandwidth / scale
        W = kernel_weights(torch.cdist(U.double(), V.double()).square(), bandwidth)  # (m, M)
        for row, index in enumerate(indices):
            if index in position:
                W[row, position[index]] = 0.0  # a prompt's own evidence is not its prior
        a0, b0 = pooled_prior(W, S_seen, F_seen, cfg.prior_alpha, cfg.prior_beta, cfg.prior_strength)
        return a0 + S, b0 + F

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        state, tensors = super().state_dict()
        state |= {
            "clock": self.clock,
            "calls": self.calls,
            "bandwidth": None if math.isinf(self.bandwidth) else self.bandwidth,
            "evidence": [[i, s, f, t] for i, (s, f, t) in self.evidence.items()],
            "cache_index": list(self.cache),
        }
        if self.basis is not None:
            tensors |= {"basis.mean": self.basis.mean, "basis.components": self.basis.components}
            tensors["basis.scale"] = self.basis.scale
        if self.cache:
            tensors["cache"] = torch.stack(list(self.cache.values()))
        return state, tensors

    def load_state_dict(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state, tensors)
        self.clock, self.calls = int(state["clock"]), int(state["calls"])
        self.bandwidth = math.inf if state["bandwidth"] is None else float(state["bandwidth"])
        self.evidence = {int(i): (float(s), float(f), int(t)) for i, s, f, t in state["evidence"]}
        if "basis.mean" in tensors:
            self.basis = Basis(tensors["basis.mean"], tensors["basis.components"], tensors["basis.scale"])
        index = [int(i) for i in state["cache_index"]]
        self.cache = dict(zip(index, tensors["cache"].unbind(0), strict=True)) if index else {}

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _discounted(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(m,)` passes and failures of Eq. 1 faded to the current generation (zeros for unseen prompts)."""
        S, F = [], []
        for index in indices:
            s, f, t = self.evidence.get(index, (0.0, 0.0, self.clock))
            fade = self.config.discount ** (self.clock - t)
            S.append(s * fade)
            F.append(f * fade)
        return torch.tensor(S, dtype=torch.float64), torch.tensor(F, dtype=torch.float64)

    def _features(self, ctx: SamplingContext, indices: list[int]) -> torch.Tensor:
        """`(m, d)` kernel inputs, computing (collectively) the features of prompts not yet seen."""
        tick = time.perf_counter()
        if self.basis is None:
            basis_stream = PromptStream(ctx.dataset_size(), ctx.seed + _BASIS_SEED_OFFSET)
            basis_rows = basis_stream.draw(min(self.config.basis_prompts, ctx.dataset_size()))
            self.basis = fit_basis(
                ctx.prompt_features(basis_rows, self.config.feature_layer), self.config.feature_dims
            )
        missing = [i for i in dict.fromkeys(indices) if i not in self.cache]
        if missing:
            U = project(ctx.prompt_features(missing, self.config.feature_layer), self.basis)
            self.cache.update(zip(missing, U.unbind(0), strict=True))
        if self._generation:
            self._generation["features_s"].append(time.perf_counter() - tick)
        return torch.stack([self.cache[i] for i in indices])


class MoPPSSampling(PassRateSampling):
    """MoPPS as published: the per-prompt Beta posterior without a shared prior, Thompson draws, no exploration.
    With `rule`, `explore` set as `pass_rate`'s it is the ablation that shows what the shared prior adds."""

    name = "mopps"

    @staticmethod
    def _defaults() -> dict[str, Any]:
        return {"share_prior": False, "rule": "thompson", "explore": 0.0}
