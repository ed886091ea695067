"""Predictive sampling: a GP predicts each candidate prompt's within-group reward variance before generating.

A group of G completions teaches GRPO and DisCO only through the within-group variance of its reward (Razin et al.
2025, arXiv 2503.15477, Def. of reward variance; for a 0/1 reward with success probability p the variance is
p(1-p)). Dynamic sampling (DAPO) pays for the zero-variance groups it drops; this sampler predicts the variance of
each candidate from the prompt's features and the variances observed so far, and generates for the prompts with the
highest predicted signal. It turns the surrogate core (`rlsurrogate.blackbox.gp.fit_gp`) into the RL loop's sampler.

Each round:
1. Candidate pool: `pool_factor` x the round's prompts, fresh from the sampler's seeded stream over the dataset, so
   every prompt is a candidate once per pass over the data.
2. Features (computed once per prompt, when first seen, and cached): the mean over the prompt's tokens of the
   policy's hidden state at `feature_layer` (0: the input embeddings, no forward pass), projected on the top
   `feature_dims` principal directions of `basis_prompts` prompts' features (fitted once), standardised and mapped to
   the unit cube by the normal CDF (BoTorch's convention for GP inputs).
3. Surrogate: a GP (`fit_gp`: Matern-5/2 ARD, Gamma priors, float64, standardised outputs, warm-started
   hyper-parameters) on the last `window` (feature, observed within-group variance) pairs.
4. Choice: score each candidate by one joint Thompson draw from the GP posterior over the pool (`rule: thompson`,
   Thompson 1933; Russo et al. 2018 Alg. 1) or by UCB `mean + sqrt(beta) std` (`rule: ucb`, Srinivas et al. 2010);
   take the best, except that each prompt is, with probability `explore`, drawn uniformly from the rest of the pool
   so that no prompt starves. Before `warmup` observations every prompt is drawn uniformly.
5. The observed variances of the generated groups are added to the GP's data. With `filter: true` dynamic sampling
   runs on top (zero-variance groups dropped, refill rounds chosen the same way, up to `max_rounds`).

Why a GP and not a neural bandit (`blackbox.neural_bandit`): a run observes tens to a few hundred groups, the
regime where a GP's posterior is calibrated and cheap (a warm-started refit on 256 points in 8 dimensions takes
~0.1 s), while NeuralUCB retrains an MLP from scratch on every update (INSTINCT: 1000 Adam steps) and its bonus is a
linearised approximation. The observed variance of G samples is a noisy estimate (many exact zeros), which the GP's
Gaussian noise model absorbs.
Why features computed once, from the input embeddings by default: the features describe the prompt (its numbers,
its wording); how the policy does on it is what the GP learns from observations, and its window keeps that recent
as the policy changes. Refreshing the features every K steps would move the inputs of every stored observation and
costs a forward pass over the pool: measured on the embedded 135M model on a 2-core CPU, a forward pass costs ~90 ms
per prompt, about 10 % of a training step with a 4x pool, against a 3 % budget; the input embeddings cost nothing
and separated one-digit from harder arithmetic prompts better than the last layer (leave-one-out 1-NN on 8 principal
components of 96 prompts: 0.86 vs 0.73). On a GPU a deeper `feature_layer` is affordable.

Identical decisions on every process: the pool comes from the shared stream, features are all-gathered, the GP runs
in float64 on the CPU from identical data with its own seeded generator (the global RNG is left untouched), and the
chosen indices are broadcast from process 0 as a guard against floating-point differences between devices.

Metrics (each generation, besides `rlsurrogate.sampling.base`'s): `sampling/predicted_var` and
`sampling/observed_var` (mean predicted and observed within-group variance of the chosen prompts, after warm-up),
`sampling/calibration_mae` (their mean absolute difference), `sampling/explore_share` (share of prompts drawn by the
exploration rule), `sampling/surrogate_s` (GP fit and prediction), `sampling/features_s`, `sampling/observations`.

Checked: prefers high-variance prompts on a synthetic stream with known variances, keeps exploring, restores its
state (tests/sampling); calibration and cost on the embedded model in `scripts/bench_sampling.py`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from rlsurrogate.blackbox.bo import upper_confidence_bound
from rlsurrogate.blackbox.gp import fit_gp
from rlsurrogate.errors import ConfigError
from rlsurrogate.sampling.base import PromptStream, Sampler, SamplingContext, check_max_rounds, sampler_config

__all__ = [
    "PredictiveConfig",
    "PredictiveSampling",
    "Basis",
    "fit_basis",
    "project",
    "acquisition_scores",
    "choose",
    "calibration",
    "distinct_pool",
]

RULES = ("thompson", "ucb")
# Jitter added to the pool's posterior covariance before the Cholesky factor of a Thompson draw (float64).
_JITTER = 1e-9
# A different stream than the candidates' for the prompts that fit the feature basis.
_BASIS_SEED_OFFSET = 7_919


@dataclass
class PredictiveConfig:
    pool_factor: int = field(default=4, metadata={"help": "Candidates per chosen prompt (pool = 4x the batch)."})
    rule: str = field(default="thompson", metadata={"help": "thompson (one joint posterior draw) | ucb."})
    beta: float = field(default=4.0, metadata={"help": "UCB: mean + sqrt(beta) std (BoTorch's form); 4 = 2 std."})
    explore: float = field(
        default=0.2, metadata={"help": "Probability that a prompt is drawn uniformly from the pool instead."}
    )
    warmup: int = field(default=4, metadata={"help": "Observed groups before the GP chooses (uniform until then)."})
    window: int = field(default=256, metadata={"help": "Most recent observations the GP is fitted on."})
    feature_layer: int = field(
        default=0, metadata={"help": "Hidden state pooled as features: 0 = input embeddings, -1 = last layer."}
    )
    feature_dims: int = field(default=8, metadata={"help": "Principal components of the features the GP sees."})
    basis_prompts: int = field(default=64, metadata={"help": "Prompts whose features fit the principal directions."})
    filter: bool = field(default=False, metadata={"help": "Also drop zero-variance groups and refill (DAPO)."})
    max_rounds: int = field(default=1, metadata={"help": "With filter: generation rounds per step at most."})

    def __post_init__(self) -> None:
        problems = []
        checks = (
            ("pool_factor", self.pool_factor, 1, 1000, "4 draws from four times the prompts a step needs"),
            ("warmup", self.warmup, 0, 1e9, "4 observed groups is the default"),
            ("window", self.window, 2, 100_000, "256 is the default"),
            ("feature_dims", self.feature_dims, 1, 64, "8 is the default"),
            ("basis_prompts", self.basis_prompts, 2, 100_000, "64 is the default"),
            ("feature_layer", self.feature_layer, -1000, 1000, "0 (embeddings) or -1 (last layer)"),
        )
        for name, value, low, high, hint in checks:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(
                    f"sampling.params.{name} = {value!r}: must be a whole number in [{low:g}, {high:g}]; {hint}."
                )
        if self.rule not in RULES:
            problems.append(f'sampling.params.rule = "{self.rule}": must be one of {", ".join(RULES)}.')
        for name, value, low, high in (("beta", self.beta, 0.0, 1e6), ("explore", self.explore, 0.0, 1.0)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                problems.append(f"sampling.params.{name} = {value!r}: must be a number in [{low:g}, {high:g}].")
        if not isinstance(self.filter, bool):
            problems.append(f"sampling.params.filter = {self.filter!r}: must be true or false.")
        problems += check_max_rounds(self.max_rounds, "sampling.params.max_rounds", "1 without filter")
        if problems:
            raise ConfigError(problems)


@dataclass
class Basis:
    """Principal directions of prompt features: `mean` `(D,)`, `components` `(D, d)`, `scale` `(d,)`."""

    mean: torch.Tensor
    components: torch.Tensor
    scale: torch.Tensor


# ---------------------------------------------------------------------------------------------------------------
# pure functions


def fit_basis(F: torch.Tensor, dims: int) -> Basis:
    """The top `dims` principal directions of `(n, D)` features (float64 SVD); fewer when n or D is smaller."""
    F = F.double()
    mean = F.mean(0)
    _, S, Vh = torch.linalg.svd(F - mean, full_matrices=False)
    d = max(1, min(dims, Vh.shape[0], F.shape[1]))
    components = Vh[:d].T.contiguous()  # (D, d)
    scale = ((F - mean) @ components).std(0).clamp(min=1e-12) if F.shape[0] > 1 else torch.ones(d, dtype=F.dtype)
    return Basis(mean, components, scale)


def project(F: torch.Tensor, basis: Basis) -> torch.Tensor:
    """`(n, D)` features -> `(n, d)` GP inputs in the unit cube: standardised principal scores through Phi."""
    z = (F.double() - basis.mean) @ basis.components / basis.scale  # (n, d)
    return torch.special.ndtr(z)


def acquisition_scores(
    mean: torch.Tensor, cov: torch.Tensor, rule: str, beta: float, generator: torch.Generator
) -> torch.Tensor:
    """`(m,)` scores of the pool's candidates from the GP posterior `mean` `(m,)` and covariance `(m, m)`.

    Thompson: one joint draw `mean + L xi`, `L L^T = cov`; UCB: `mean + sqrt(beta) std`.
    """
    if rule == "ucb":
        return upper_confidence_bound(mean, cov.diagonal().clamp(min=0.0).sqrt(), beta)
    xi = torch.randn(mean.shape[0], generator=generator, dtype=mean.dtype)  # (m,)
    eye = torch.eye(mean.shape[0], dtype=cov.dtype)
    for jitter in (_JITTER, 1e-6, 1e-3):
        L, info = torch.linalg.cholesky_ex(cov + jitter * cov.diagonal().mean().clamp(min=1e-12) * eye)
        if int(info) == 0:
            return mean + L @ xi
    return mean + cov.diagonal().clamp(min=0.0).sqrt() * xi  # independent draws when the covariance is degenerate


def choose(scores: torch.Tensor, n: int, explore: float, generator: torch.Generator) -> tuple[list[int], list[bool]]:
    """`n` positions of the pool: each, with probability `explore`, uniform among the rest; else the best score.

    Returns:
        (positions, explored flags), exploitation picks first in score order.
    """
    m = scores.shape[0]
    n = min(n, m)
    explored = (torch.rand(n, generator=generator) < explore).tolist()
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    chosen = order[: n - sum(explored)]
    rest = [i for i in range(m) if i not in set(chosen)]
    picks = torch.randperm(len(rest), generator=generator)[: sum(explored)].tolist()
    return chosen + [rest[i] for i in picks], [False] * len(chosen) + [True] * len(picks)


def calibration(predicted: torch.Tensor, observed: torch.Tensor) -> dict[str, float]:
    """Mean predicted and observed variance, mean absolute error and Pearson correlation (NaN below 3 pairs)."""
    if predicted.numel() == 0:
        return {}
    p, o = predicted.double(), observed.double()
    corr = float("nan")
    if p.numel() >= 3 and p.std() > 0 and o.std() > 0:
        corr = float(torch.corrcoef(torch.stack([p, o]))[0, 1])
    mae = float((p - o).abs().mean())
    return {"predicted": float(p.mean()), "observed": float(o.mean()), "mae": mae, "corr": corr}


def distinct_pool(stream: PromptStream, size: int, at_least: int) -> list[int]:
    """`size` draws of the stream without repeats (a dataset smaller than `size` gives fewer, at least one pass)."""
    pool = list(dict.fromkeys(stream.draw(size)))
    while len(pool) < min(at_least, stream.n):
        pool = list(dict.fromkeys(pool + stream.draw(at_least - len(pool))))
    return pool


# ---------------------------------------------------------------------------------------------------------------
# the sampler


class PredictiveSampling(Sampler):
    """Chooses each round's prompts from a candidate pool by the GP's predicted within-group reward variance."""

    name = "predictive"
    needs_dataset = True

    def __init__(self, **params: Any):
        super().__init__()
        self.config = sampler_config(PredictiveConfig, "predictive", params)
        self.filters = self.config.filter
        self.max_rounds = self.config.max_rounds if self.config.filter else 1
        self.basis: Basis | None = None
        self.cache: dict[int, torch.Tensor] = {}  # dataset index -> (d,) GP input, computed once
        self.X: list[torch.Tensor] = []  # observed inputs (window), (d,) each
        self.Y: list[float] = []  # observed within-group variances
        self.calls = 0  # seeds each choice's generator
        self.pairs: list[tuple[float, float]] = []  # (predicted, observed) of every chosen prompt after warm-up
        self._gp_state: dict[str, torch.Tensor] | None = None
        self._pending: dict[int, float] = {}  # position in the last proposal -> predicted variance
        self._generation: dict[str, list[float]] = {}

    def propose(self, ctx: SamplingContext, round_index: int, num_prompts: int) -> list[int]:
        assert self.stream is not None, "bind() runs before training"
        if round_index == 0:
            self._generation = {"predicted": [], "observed": [], "explored": [], "surrogate_s": [], "features_s": []}
        pool = distinct_pool(self.stream, num_prompts * self.config.pool_factor, num_prompts)
        U = self._features(ctx, pool)  # (m, d)
        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + self.calls)
        self.calls += 1
        predicted: torch.Tensor | None = None
        with torch.random.fork_rng(devices=[]):
            if len(self.Y) < max(self.config.warmup, 2):
                scores = torch.rand(len(pool), generator=generator, dtype=torch.float64)
            else:
                predicted, cov = self._posterior(U)
                scores = acquisition_scores(predicted, cov, self.config.rule, self.config.beta, generator)
            positions, explored = choose(scores, num_prompts, self.config.explore, generator)
        positions = ctx.broadcast(positions)  # process 0's choice on every process
        self._generation["surrogate_s"].append(time.perf_counter() - tick)
        self._generation["explored"] += [float(e) for e in explored]
        self._pending = {} if predicted is None else {k: float(predicted[p]) for k, p in enumerate(positions)}
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
        assert indices is not None
        for k, (index, v) in enumerate(zip(indices, variances.tolist(), strict=True)):
            if not math.isfinite(v):
                continue  # nobody scored this group
            self.X.append(self.cache[index])
            self.Y.append(v)
            if k in self._pending:
                self._generation["predicted"].append(max(self._pending[k], 0.0))
                self._generation["observed"].append(v)
                self.pairs.append((max(self._pending[k], 0.0), v))
        self.X, self.Y = self.X[-self.config.window :], self.Y[-self.config.window :]

    def round_metrics(self) -> dict[str, float]:
        g = self._generation
        metrics = {
            "sampling/explore_share": sum(g["explored"]) / max(len(g["explored"]), 1),
            "sampling/surrogate_s": sum(g["surrogate_s"]),
            "sampling/features_s": sum(g["features_s"]),
            "sampling/observations": float(len(self.Y)),
        }
        stats = calibration(torch.tensor(g["predicted"]), torch.tensor(g["observed"]))
        if stats:
            metrics |= {
                "sampling/predicted_var": stats["predicted"],
                "sampling/observed_var": stats["observed"],
                "sampling/calibration_mae": stats["mae"],
            }
        return metrics

    def state_dict(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        state, tensors = super().state_dict()
        state |= {"calls": self.calls, "Y": self.Y, "cache_index": list(self.cache), "pairs": self.pairs}
        if self.basis is not None:
            tensors |= {"basis.mean": self.basis.mean, "basis.components": self.basis.components}
            tensors["basis.scale"] = self.basis.scale
        if self.cache:
            tensors["cache"] = torch.stack(list(self.cache.values()))
        if self.X:
            tensors["X"] = torch.stack(self.X)
        for key, value in (self._gp_state or {}).items():
            tensors[f"gp.{key}"] = value
        return state, tensors

    def load_state_dict(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state, tensors)
        self.calls, self.Y = int(state["calls"]), [float(v) for v in state["Y"]]
        self.pairs = [(float(p), float(o)) for p, o in state.get("pairs", [])]
        if "basis.mean" in tensors:
            self.basis = Basis(tensors["basis.mean"], tensors["basis.components"], tensors["basis.scale"])
        index = [int(i) for i in state["cache_index"]]
        self.cache = dict(zip(index, tensors["cache"].unbind(0), strict=True)) if index else {}
        self.X = list(tensors["X"].unbind(0)) if "X" in tensors else []
        if len(self.X) != len(self.Y):
            raise ConfigError(f"sampler state: {len(self.X)} observed inputs but {len(self.Y)} values; it is damaged.")
        gp = {k[3:]: v for k, v in tensors.items() if k.startswith("gp.")}
        self._gp_state = gp or None

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _features(self, ctx: SamplingContext, pool: list[int]) -> torch.Tensor:
        """`(m, d)` GP inputs of the pool, computing (collectively) the features of prompts not yet seen."""
        tick = time.perf_counter()
        if self.basis is None:
            basis_stream = PromptStream(ctx.dataset_size(), ctx.seed + _BASIS_SEED_OFFSET)
            basis_rows = basis_stream.draw(min(self.config.basis_prompts, ctx.dataset_size()))
            features = ctx.prompt_features(basis_rows, self.config.feature_layer)
            self.basis = fit_basis(features, self.config.feature_dims)
        missing = [i for i in dict.fromkeys(pool) if i not in self.cache]
        if missing:
            U = project(ctx.prompt_features(missing, self.config.feature_layer), self.basis)
            self.cache.update(zip(missing, U.unbind(0), strict=True))
        self._generation["features_s"].append(time.perf_counter() - tick)
        return torch.stack([self.cache[i] for i in pool])

    def _posterior(self, U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GP posterior mean `(m,)` and covariance `(m, m)` of the latent variance at the pool's inputs."""
        model = fit_gp(torch.stack(self.X), torch.tensor(self.Y, dtype=torch.float64), warm_start=self._gp_state)
        self._gp_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            posterior = model.posterior(U)
            mean = posterior.mean.squeeze(-1)
            cov = posterior.distribution.covariance_matrix
        return mean, cov
