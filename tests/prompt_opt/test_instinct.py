"""The optimizer loop (duplicates, budget, every method) and the NeuralUCB selection properties of METHODS.md §4.3."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from rlsurrogate.prompt_opt.clients import Completion, Usage
from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
from rlsurrogate.prompt_opt.instinct import METHODS, INSTINCTConfig, optimize
from rlsurrogate.prompt_opt.pool_features import PoolFeatureMap
from rlsurrogate.prompt_opt.query_log import Budget, QueryLog
from rlsurrogate.prompt_opt.tasks import Example, Task

neural_bandit = pytest.importorskip("rlsurrogate.blackbox.neural_bandit")
NeuralUCB = neural_bandit.NeuralUCB


class CountingBlackBox:
    """Answers "yes" when the instruction contains "good", else "no"; counts every request it receives."""

    name = "counting"

    def __init__(self):
        self.usage = Usage()
        self.requests: Counter[str] = Counter()

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):
        out = []
        for i, messages in enumerate(requests):
            prompt = messages[-1]["content"]
            self.requests[prompt] += 1
            instruction = prompt.split("\n")[0]
            c = Completion("yes" if "good" in instruction else "no", 10, 1)
            self.usage.calls += 1
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


class FakeGenerator:
    """A pool whose candidate i has a fixed instruction and a fixed feature; counts generations."""

    def __init__(self, instructions, features=None, seed=0):
        n = len(instructions)
        self.Z = torch.rand(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.instructions = list(instructions)
        self.H = features if features is not None else torch.randn(n, 6, generator=torch.Generator().manual_seed(1))
        self.generated = 0

    def pool_features(self):
        return self.H

    def generate(self, Z):
        self.generated += len(Z)
        return [self.instructions[int((self.Z == z).all(1).nonzero()[0])] for z in Z]

    def sample_ape(self, n, seed=0):
        rng = random.Random(seed)
        return [rng.choice(self.instructions) for _ in range(n)]


def _task(n_val=3):
    return Task(
        "yesno", [Example(f"x{i}", "yes") for i in range(n_val + 2)], metric="exact_match", n_demo=2, n_val=n_val
    )


FAST = INSTINCTConfig(n_init=2, train_steps=20, seed=0)


@pytest.mark.parametrize("method", METHODS.names())
def test_duplicate_instructions_are_never_queried_twice(method):
    pool = ["a", "a", "b", "good a", "b", "a", "good a", "c", "c", "good b"] * 2
    black_box, task = CountingBlackBox(), _task()
    evaluator = InstructionEvaluator(task, black_box, Budget(max_queries=50))
    result = optimize(method, evaluator, FakeGenerator(pool), FAST)
    assert result.stopped == "pool exhausted"
    assert max(black_box.requests.values()) == 1  # no request was ever sent twice
    queried = [e.instruction for e in result.history]
    assert len(queried) == len(set(queried)) == result.queries
    assert set(queried) <= set(pool)
    assert result.best.score == 1.0 and "good" in result.best.instruction


@pytest.mark.parametrize("method", METHODS.names())
def test_budget_stops_cleanly(method):
    pool = [f"instruction {i}" for i in range(12)]
    black_box = CountingBlackBox()
    evaluator = InstructionEvaluator(_task(), black_box, Budget(max_queries=4))
    result = optimize(method, evaluator, FakeGenerator(pool), FAST)
    assert (result.stopped, result.queries, len(result.history)) == ("budget", 4, 4)
    assert black_box.usage.calls == 4 * 3
    assert result.best_curve() == sorted(result.best_curve())  # best-so-far never decreases


def test_token_budget_stops_before_the_next_query():
    evaluator = InstructionEvaluator(_task(), CountingBlackBox(), Budget(max_tokens=50))  # one query costs 3 x 11
    result = optimize("random", evaluator, FakeGenerator([f"i{k}" for k in range(10)]), FAST)
    assert result.stopped == "budget" and result.queries == 2 and result.tokens == 66


def test_instinct_loop_feeds_every_observation_to_the_scorer_and_excludes_what_it_queried():
    pool = ["a", "b", "a", "good", "c", "b", "d", "e", "a", "f"]
    calls = []

    class SpyUCB(NeuralUCB):
        def select(self, features, exclude=None):
            i = super().select(features, exclude)
            calls.append(("select", i, set(exclude)))
            return i

        def update(self, feature, value):
            calls.append(("update", feature.clone(), value))
            super().update(feature, value)

    gen = FakeGenerator(pool)
    evaluator = InstructionEvaluator(_task(), CountingBlackBox(), Budget(max_queries=100))
    config = INSTINCTConfig(n_init=2, train_steps=10, seed=0)
    result = optimize(
        "instinct", evaluator, gen, config, bandit_factory=lambda d, c: SpyUCB(d, width=8, train_steps=10)
    )
    updates = [c for c in calls if c[0] == "update"]
    selects = [c for c in calls if c[0] == "select"]
    assert len(updates) == len(pool)  # duplicates cost no query but still teach the scorer
    assert result.queries == len(set(pool)) == 7
    seen = set()
    for _, i, exclude in selects:
        assert i not in exclude and exclude >= seen
        seen.add(i)
    mapped = PoolFeatureMap(gen.H, config.feature_dim)(gen.H)  # the scorer sees the pool-standardised PCA features
    for _, h, value in updates:  # each update carries a candidate's own feature and its instruction's score
        assert value == evaluator.results[gen.instructions[int(_row(mapped, h))]].score


def _row(H, h):
    return (H.double() == h.double()).all(1).nonzero()[0]


def test_resumed_evaluator_answers_from_the_log(tmp_path):
    pool = [f"instruction {i}" for i in range(8)]
    black_box = CountingBlackBox()
    with QueryLog(tmp_path / "q.jsonl") as log:
        first = optimize(
            "random", InstructionEvaluator(_task(), black_box, Budget(max_queries=3), log), FakeGenerator(pool), FAST
        )
    calls_before = black_box.usage.calls
    with QueryLog(tmp_path / "q.jsonl", resume=True) as log:
        evaluator = InstructionEvaluator(_task(), black_box, Budget(max_queries=5), log)
        second = optimize("random", evaluator, FakeGenerator(pool), FAST)
    assert [e.instruction for e in second.history[:3]] == [e.instruction for e in first.history]
    assert second.queries == 5 and evaluator.new_calls == black_box.usage.calls - calls_before == 2 * 3
    assert max(black_box.requests.values()) == 1


# ---- METHODS.md §4.3: NeuralUCB selection properties ---------------------------------------------------------------


def _fitted_bandit(nu=1.0, seed=0, n=6):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = X[:, 0] - 0.5 * X[:, 1]
    bandit = NeuralUCB(5, nu=nu, lam=0.1, width=16, train_steps=30, n_eval=None, seed=seed)
    for i in range(n):
        bandit.update(X[i], float(y[i]))
    return bandit, X


def test_ucb_is_at_least_the_mean_for_every_candidate():
    bandit, X = _fitted_bandit()
    mean, bonus = bandit.predict(X)
    assert mean.shape == bonus.shape == (40,)
    assert torch.all(mean + bonus >= mean) and torch.all(bonus >= 0)


def test_selecting_a_candidate_shrinks_its_exploration_bonus():
    bandit, X = _fitted_bandit()
    i = bandit.select(X, exclude=list(range(6)))
    assert i >= 6
    before = bandit.predict(X)[1][i]
    bandit.train_steps = 0  # isolate the U update from retraining (same weights before and after)
    U_before = bandit.U.clone()
    bandit.update(X[i], 0.0)
    assert torch.all(bandit.U >= U_before) and torch.any(bandit.U > U_before)
    bandit.features, bandit.values = bandit.features[:-1], bandit.values[:-1]  # same standardisation as before
    assert bandit.predict(X)[1][i] < before


def test_nu_zero_is_greedy_on_the_mean():
    bandit, X = _fitted_bandit(nu=0.0)
    exclude = [0, 1, 2]
    mean, bonus = bandit.predict(X)
    assert torch.all(bonus == 0)
    masked = mean.clone()
    masked[exclude] = -float("inf")
    assert bandit.select(X, exclude=exclude) == int(masked.argmax())


def test_retraining_from_the_fixed_init_is_deterministic():
    (a, X), (b, _) = _fitted_bandit(seed=4), _fitted_bandit(seed=4)
    torch.testing.assert_close(a.predict(X)[0], b.predict(X)[0], rtol=0, atol=0)
    c, _ = _fitted_bandit(seed=5)
    assert not torch.allclose(a.predict(X)[0], c.predict(X)[0])


def test_instinct_never_selects_an_excluded_candidate():
    pool = [f"instruction {i}" for i in range(15)]
    gen = FakeGenerator(pool)
    evaluator = InstructionEvaluator(_task(), CountingBlackBox(), Budget(max_queries=100))
    result = optimize("instinct", evaluator, gen, FAST)
    assert result.stopped == "pool exhausted" and result.queries == 15
    assert gen.generated == 15  # each candidate's instruction was generated exactly once


@pytest.mark.parametrize("method", ["instinct", "random", "gp-bo"])
def test_candidates_known_to_duplicate_are_excluded_without_being_picked(method):
    class PregeneratedPool(FakeGenerator):
        def cached_instruction(self, z):
            return self.instructions[int((self.Z == z).all(1).nonzero()[0])]

    pool = ["a", "b", "c", "good"] * 5
    gen = PregeneratedPool(pool)
    updates = []

    class CountingUCB(NeuralUCB):
        def update(self, feature, value):
            updates.append(value)
            super().update(feature, value)

    evaluator = InstructionEvaluator(_task(), CountingBlackBox(), Budget(max_queries=100))
    result = optimize(method, evaluator, gen, FAST, bandit_factory=lambda d, c: CountingUCB(d, width=8, train_steps=5))
    assert result.stopped == "pool exhausted" and result.queries == 4
    assert gen.generated == 4  # one pick per distinct instruction; the other 16 candidates were never picked
    if method == "instinct":
        assert len(updates) == 4
