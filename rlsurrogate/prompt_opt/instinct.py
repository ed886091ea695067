"""INSTINCT: instruction optimization with a neural-bandit scorer, and the APE / random / GP-BO baselines.

INSTINCT (Lin, Wu, Dai, Hu, Shu, Ng, Jaillet, Low; "Use Your INSTINCT: INSTruction optimization usIng Neural bandits
Coupled with Transformers", ICML 2024; METHODS.md §4.1): candidates are soft prompts of a white-box LLM
(`candidates.py`), each with a feature h(z) = the white-box model's last-token hidden state. After `n_init` random
queries, a NeuralUCB scorer over h picks the next candidate, UCB(x) = mu(x) + sigma(x) with
sigma(x) = sqrt(lambda nu sum_k g_k(x)^2 / U_k) (diagonal approximation, §4.1 step 8), the white-box model writes
that candidate's instruction, and the black box scores it (`evaluator.py`).

Rules shared by every method here:
- a duplicate instruction is never queried twice: its cached score is reused at no cost, the candidate is excluded,
  and (pool methods) the scorer still learns the (feature, score) pair;
- the budget (queries and/or tokens) stops the loop cleanly (`BudgetExhausted`), keeping everything learned so far.

Baselines (METHODS.md §4.2):
- `ape`: APE-style, instructions sampled from the white-box model at temperature 0.9 given the demos, queried in
  sampling order, the best kept (no surrogate);
- `random`: random candidates of the same soft-prompt pool;
- `gp-bo`: InstructZero-like GP-BO on the soft prompts' low-dimensional z: a Matérn-5/2 ARD GP (Gamma(3, 6)
  lengthscale prior) and expected improvement.

Deviations:
- NeuralUCB scores the whole (small) pool each iteration instead of a random subset of `n_eval` = 1000 candidates.
- GP-BO maximises EI over the unqueried pool points instead of running CMA-ES in the continuous z space, and uses
  a Matérn kernel on z only (InstructZero's instruction-coupled kernel is not implemented).
- A candidate whose instruction is already known (generated earlier) to duplicate a scored one is excluded without
  being picked; only picked candidates are fed to the scorer.
- Pool methods stop after `duplicate_patience` consecutive picks whose instruction was already scored (each such
  pick is free but still retrains the scorer): small white-box models map many soft prompts to the same instruction.
- `n_init` defaults to 5 (the paper: 40 of 165 queries), since our benchmark budget is 30 queries.
- The scorer's initial weights are N(0, 1 / fan_in) (`init="fan_in"`), not INSTINCT's N(0, 1) (`init="normal"`):
  with N(0, 1) weights on 576-d features the untrained output has a std of about 130 against scores in [0, 1],
  and a few hundred Adam steps leave its picks the same whether the observed scores are true or inverted.
- The scorer sees the pool's features standardised with pool statistics and reduced to `feature_dim` = 32 principal
  components (`feature_stats="pool"`, `pool_features.PoolFeatureMap`), not the raw features standardised with the
  observed ones (`feature_stats="observed"`, INSTINCT).
- nu defaults to `NU_DEFAULT` = 0.1 (INSTINCT: 1), the best of a grid on synthetic pools that are not used for any
  reported comparison (`scripts/screen_instinct.py`).

`search_pool` runs any of `POOL_METHODS` on one fixed pool (`exemplars.ExemplarPromptPool`, or a synthetic one,
`synthetic.py`) with the same black box and budget of distinct calls.

Checked: the selection properties of METHODS.md §4.3, and that the scorer's picks follow the observed scores (tests);
the paper's results are not reproduced (no Vicuna or ChatGPT here); `scripts/bench_prompt_opt.py` compares the methods
with the embedded 135M model as the black box, `scripts/screen_instinct.py` on synthetic pools.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from rlsurrogate.errors import ConfigError
from rlsurrogate.prompt_opt.candidates import InstructionGenerator
from rlsurrogate.prompt_opt.clients import DEFAULT_MAX_TOKENS, ChatClient
from rlsurrogate.prompt_opt.evaluator import Evaluation, InstructionEvaluator
from rlsurrogate.prompt_opt.pool_features import PoolFeatureMap
from rlsurrogate.prompt_opt.query_log import Budget, BudgetExhausted
from rlsurrogate.prompt_opt.tasks import Task
from rlsurrogate.registry import Registry

__all__ = ["METHODS", "POOL_METHODS", "NU_DEFAULT", "INSTINCTConfig", "OptimizationResult", "optimize", "search_pool",
           "make_neural_ucb"]  # fmt: skip

METHODS: Registry[Callable[..., None]] = Registry("prompt-optimization method")
# The methods that search a fixed candidate pool (`search_pool`); "ape" samples its own instructions.
POOL_METHODS = ("instinct", "random", "gp-bo")
# NeuralUCB's exploration scale: the best of a grid on synthetic pools (`scripts/screen_instinct.py`).
NU_DEFAULT = 0.1


@dataclass
class INSTINCTConfig:
    """Knobs of the optimizer loop (defaults: INSTINCT's induction scripts unless the help says otherwise)."""

    n_init: int = field(default=5, metadata={"help": "Random queries before the scorer is used (paper 40 of 165)."})
    nu: float = field(
        default=NU_DEFAULT,
        metadata={"help": "NeuralUCB exploration scale nu (INSTINCT .sh: 1; ours: screened on synthetic pools)."},
    )
    lam: float = field(default=0.1, metadata={"help": "NeuralUCB regularisation lambda (INSTINCT .sh: 0.1)."})
    init: str = field(
        default="fan_in",
        metadata={"help": "Scorer's initial weights: 'fan_in' N(0, 1/fan_in) (ours) or 'normal' N(0, 1) (INSTINCT)."},
    )
    feature_stats: str = field(
        default="pool",
        metadata={
            "help": "'pool': standardise with pool statistics, then PCA (ours); 'observed': raw features standardised "
            "with the observed ones' statistics (INSTINCT)."
        },
    )
    feature_dim: int = field(
        default=32, metadata={"help": "Principal components the scorer sees with feature_stats 'pool' (0 = all)."}
    )
    hidden: int = field(default=100, metadata={"help": "Width of the scorer's hidden layer (INSTINCT: 100)."})
    train_steps: int = field(default=1000, metadata={"help": "Adam steps per refit (INSTINCT .sh: 1000)."})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of the scorer (INSTINCT: 1e-3)."})
    duplicate_patience: int = field(
        default=10,
        metadata={
            "help": "Pool methods stop after this many consecutive picks of already-scored instructions (ours)."
        },
    )
    ape_oversample: int = field(default=2, metadata={"help": "APE samples per query of budget (APE: 50 prompts)."})
    seed: int = field(default=0, metadata={"help": "Seed of the random choices and the scorer's initial weights."})

    def __post_init__(self) -> None:
        problems = []
        if self.n_init < 1:
            problems.append(f"instinct.n_init = {self.n_init}: must be >= 1 (the scorer needs data).")
        if self.nu < 0 or self.lam <= 0:
            problems.append(f"instinct.nu = {self.nu}, lam = {self.lam}: need nu >= 0 and lam > 0.")
        if self.init not in ("fan_in", "normal"):
            problems.append(f"instinct.init = {self.init!r}: must be 'fan_in' (ours) or 'normal' (INSTINCT).")
        if self.feature_stats not in ("pool", "observed"):
            problems.append(
                f"instinct.feature_stats = {self.feature_stats!r}: must be 'pool' (ours) or 'observed' (INSTINCT)."
            )
        if self.feature_dim < 0:
            problems.append(f"instinct.feature_dim = {self.feature_dim}: must be >= 0 (0 keeps every coordinate).")
        if min(self.hidden, self.train_steps, self.ape_oversample, self.duplicate_patience) < 1 or self.lr <= 0:
            problems.append("instinct.hidden, train_steps, ape_oversample, duplicate_patience must be >= 1; lr > 0.")
        if problems:
            raise ConfigError(problems)


@dataclass
class OptimizationResult:
    method: str
    history: list[Evaluation]  # in query order
    best: Evaluation | None
    queries: int
    tokens: int
    stopped: str  # "budget", "pool exhausted" or "done"

    def best_curve(self) -> list[float]:
        """Best validation score after each query (index i = after query i + 1)."""
        curve, best = [], float("-inf")
        for e in self.history:
            best = max(best, e.score)
            curve.append(best)
        return curve


def optimize(
    method: str,
    evaluator: InstructionEvaluator,
    generator: InstructionGenerator,
    config: INSTINCTConfig | None = None,
    features: Tensor | None = None,
    bandit_factory: Callable[[int, INSTINCTConfig], Any] | None = None,
) -> OptimizationResult:
    """Runs one method until the budget is spent or its candidates run out.

    Args:
        method: one of `METHODS` ("instinct", "ape", "random", "gp-bo").
        evaluator: scores instructions with the black box (holds the budget and the query log).
        generator: the white-box model's candidate generator.
        config: loop settings.
        features: `(N, hidden)` precomputed pool features (computed here when None and the method needs them).
        bandit_factory: `(feature_dim, config) -> scorer` with `select`, `update`, `predict`; NeuralUCB by default.

    Returns:
        The history of evaluations (query order), the best one, and the queries and tokens spent.

    Example:
        >>> result = optimize("instinct", evaluator, generator)  # doctest: +SKIP
        >>> result.best.instruction, result.best.score  # doctest: +SKIP
    """
    config = config or INSTINCTConfig()
    run = METHODS.get(method)
    state = _PoolState(generator, evaluator, random.Random(config.seed), config.duplicate_patience)
    stopped = "done"
    try:
        run(state, config, features=features, bandit_factory=bandit_factory or make_neural_ucb)
    except BudgetExhausted:
        stopped = "budget"
    except _PoolExhausted:
        stopped = "pool exhausted"
    return OptimizationResult(
        method, list(evaluator.history), evaluator.best(), evaluator.queries, evaluator.tokens, stopped
    )


def make_neural_ucb(dim: int, config: INSTINCTConfig) -> Any:
    """The default scorer: the surrogate core's NeuralUCB with INSTINCT's settings."""
    from rlsurrogate.blackbox.neural_bandit import NeuralUCB

    return NeuralUCB(
        dim, nu=config.nu, lam=config.lam, width=config.hidden, train_steps=config.train_steps, lr=config.lr,
        n_eval=None, init=config.init, standardise=config.feature_stats == "observed", seed=config.seed,
    )  # fmt: skip


def search_pool(
    method: str,
    pool: Any,
    task: Task,
    client: ChatClient,
    budget_calls: int,
    config: INSTINCTConfig | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> OptimizationResult:
    """One pool method on a fixed candidate pool with a budget of distinct black-box calls.

    Every method of `POOL_METHODS` sees the same candidates (`pool`: an `ExemplarPromptPool` or anything with its
    `Z`, `generate`, `cached_instruction` and `pool_features`), the same black box and the same budget: one query
    scores a candidate on the task's validation split, `n_val` distinct calls; a repeated prompt costs nothing.

    Args:
        method: one of `POOL_METHODS`.
        pool: the candidates.
        task: the task (its validation split is what a query costs).
        client: the black box.
        budget_calls: distinct black-box calls the search may spend (rounded down to whole queries).
        config: loop settings (its seed picks the random queries and the scorer's initial weights).
        max_tokens: answer length cap per call.

    Example:
        >>> result = search_pool("instinct", pool, task, client, budget_calls=96)  # doctest: +SKIP
    """
    if method not in POOL_METHODS:
        raise ConfigError(f"method = {method!r}: pool methods are {list(POOL_METHODS)}; 'ape' samples its own.")
    n_val = len(task.split()[1])
    if budget_calls < n_val:
        raise ConfigError(f"budget_calls = {budget_calls}: one query costs n_val = {n_val} calls; give at least that.")
    evaluator = InstructionEvaluator(task, client, Budget(max_queries=budget_calls // n_val), None, max_tokens)
    return optimize(method, evaluator, pool, config)


# ---- methods ----------------------------------------------------------------------------------------------------


@METHODS.register("instinct")
def _instinct(state: _PoolState, config: INSTINCTConfig, *, features: Tensor | None, bandit_factory: Any) -> None:
    H = (features if features is not None else state.generator.pool_features()).double()  # (N, hidden)
    if config.feature_stats == "pool":
        H = PoolFeatureMap(H, config.feature_dim)(H)  # (N, feature_dim)
    bandit = bandit_factory(H.shape[1], config)
    for i in state.random_order()[: config.n_init]:
        if i not in state.excluded:
            bandit.update(H[i], state.query(i).score)
    while True:
        state.check_open()
        i = int(bandit.select(H, exclude=sorted(state.excluded)))
        bandit.update(H[i], state.query(i).score)


@METHODS.register("random")
def _random(state: _PoolState, config: INSTINCTConfig, **_: Any) -> None:
    for i in state.random_order():
        state.check_open()
        if i not in state.excluded:
            state.query(i)
    raise _PoolExhausted


@METHODS.register("gp-bo")
def _gp_bo(state: _PoolState, config: INSTINCTConfig, **_: Any) -> None:
    from rlsurrogate.blackbox.bo import expected_improvement, fit_gp

    Z = state.generator.Z  # (N, d), in the unit cube already
    X: list[int] = []
    y: list[float] = []
    for i in state.random_order()[: config.n_init]:
        if i not in state.excluded:
            y.append(state.query(i).score)
            X.append(i)
    while True:
        state.check_open()
        free = torch.tensor([i for i in range(len(Z)) if i not in state.excluded])  # (M,)
        Y = torch.tensor(y, dtype=torch.float64)
        spread = float(Y.std()) if len(Y) > 1 else 0.0
        if spread > 0:
            gp = fit_gp(Z[X], Y)
            with torch.no_grad():
                post = gp.posterior(Z[free])
                mean, sigma = post.mean.squeeze(-1), post.variance.clamp_min(1e-12).sqrt().squeeze(-1)  # (M,)
            i = int(free[int(expected_improvement(mean, sigma, Y.max()).argmax())])
        else:  # a constant Y gives the GP nothing to fit: keep exploring at random
            i = int(free[state.rng.randrange(len(free))])
        y.append(state.query(i).score)
        X.append(i)


@METHODS.register("ape")
def _ape(state: _PoolState, config: INSTINCTConfig, **_: Any) -> None:
    budget = state.evaluator.budget.max_queries or 30
    tried: set[str] = set()
    for round_ in range(3):  # resample when duplicates leave too few distinct instructions
        samples = state.generator.sample_ape(budget * config.ape_oversample, seed=config.seed * 1000 + round_)
        for instruction in dict.fromkeys(samples):
            if instruction and instruction not in tried:
                tried.add(instruction)
                state.evaluator.evaluate(instruction)
    raise _PoolExhausted


# ---- private helpers ---------------------------------------------------------------------------------------------


class _PoolExhausted(Exception):
    pass


class _PoolState:
    """The soft-prompt pool as seen by a method: instructions generated lazily, excluded (queried) candidates."""

    def __init__(
        self, generator: InstructionGenerator, evaluator: InstructionEvaluator, rng: random.Random, patience: int
    ):
        self.generator, self.evaluator, self.rng, self.patience = generator, evaluator, rng, patience
        self.duplicate_streak = 0
        self.excluded: set[int] = set()
        self.instructions: dict[int, str] = {}

    def random_order(self) -> list[int]:
        order = list(range(len(self.generator.Z)))
        self.rng.shuffle(order)
        return order

    def check_open(self) -> None:
        if len(self.excluded) >= len(self.generator.Z) or self.duplicate_streak >= self.patience:
            raise _PoolExhausted

    def query(self, i: int) -> Evaluation:
        """Candidate i's score; free when its instruction was already scored (a duplicate is never re-queried)."""
        if i not in self.instructions:
            self.instructions[i] = self.generator.generate(self.generator.Z[i : i + 1])[0]
        instruction = self.instructions[i]
        seen = self.evaluator.is_cached(instruction)
        evaluation = self.evaluator.evaluate(instruction)
        self.excluded.add(i)
        self.duplicate_streak = self.duplicate_streak + 1 if seen else 0
        # candidates already known to write this instruction would only be duplicates: exclude them now
        peek = getattr(self.generator, "cached_instruction", None)
        if peek is not None:
            Z = self.generator.Z
            self.excluded.update(j for j in range(len(Z)) if j not in self.excluded and peek(Z[j]) == instruction)
        return evaluation
