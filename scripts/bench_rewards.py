"""Reward cost: completions/s per reward on realistic completions, worst case over an adversarial set.

    python scripts/bench_rewards.py [--num 800] [--step-seconds 18] [--per-step 16]

Realistic completions imitate a small model on the arithmetic task and MATH-style answers (boxed integers,
fractions, expressions, intervals, equations, missing or unclosed boxes, reasoning of 10-3000 characters), with
random numbers so that answers rarely repeat; the rewards' verdict caches are cleared before each measurement.
The adversarial set holds answers that hang naive SymPy/math-verify (power towers, huge factorials and binomials,
literals with huge exponents such as `1e999999999`), names outside the parser's whitelist (`doctest()`), 1 MB
strings, deep nesting and many boxes, plus admissible answers that are merely slow to grade (six nested
parentheses, 100-term sums), which only the per-completion deadline bounds.
`reward_share_of_step` is the time the CPU Format-Length recipe's rewards (format_length, accuracy, boxed_number;
a superset of the quickstart's boxed_number + accuracy) take for one quickstart step of `--per-step` completions,
divided by `--step-seconds` (a quickstart step takes about 18 s on a 2-core CPU). Times are wall-clock on this
machine; the per-completion deadline inside the rewards counts CPU time. `cpu_ms` is the calling thread's CPU
time: it leaves out accuracy's grading, which runs in its worker process (bounded there at `timeout_s` of CPU).
`over_budget` counts, per reward, the completions scored 0 for running over that budget (each warned about once
with a `[reward]` prefix), over all measurements; `over_budget_adversarial` the adversarial ones among them.
The last line is JSON with the key figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from rlsurrogate.rewards import accuracy, build_reward, sympy_guard  # noqa: E402

# recipes/format_length_cpu.yaml; a superset of the quickstart's (boxed_number, accuracy), so an upper bound for it.
RECIPE_REWARDS = ("format_length", "accuracy", "boxed_number")
SPECS = [
    ("format", {}),
    ("length", {"max_length": 64}),
    ("format_length", {"max_length": 64}),
    ("accuracy", {}),
    ("boxed_number", {}),
    ("rewards/exact_answer.py:exact_answer", {}),
    ("rewards/keywords.py:make_keyword_reward", {"keywords": ["total", "answer"]}),
]
# (boxed content, gold) makers over random integers a, b: mostly distinct strings, so caches rarely help.
# The quickstart's arithmetic task: one-digit sums and differences, right or wrong, sometimes with a unit.
ARITHMETIC = [
    lambda a, b: (f"{a % 10 + b % 10}", f"{a % 10 + b % 10}"),
    lambda a, b: (f"{a % 10 + b % 10 + 1}", f"{a % 10 + b % 10}"),
    lambda a, b: (f"{a % 10} + {b % 10}", f"{a % 10 + b % 10}"),
    lambda a, b: (f"{a % 10} \\text{{ apples}}", f"{a % 10}"),
]
# MATH/DeepScaleR-style answers: fractions, expressions, intervals, radicals, equations, sets.
MATH = [
    lambda a, b: (f"{a + b}", f"{a + b}"),
    lambda a, b: (f"{a + b + 1}", f"{a + b}"),
    lambda a, b: (f"-{a}", f"-{a}"),
    lambda a, b: (f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}"),
    lambda a, b: (f"{a}/{b}", f"\\frac{{{a}}}{{{b}}}"),
    lambda a, b: (f"x^{a}+{b}", f"{b}+x^{a}"),
    lambda a, b: (f"({a},\\infty)", f"({a},\\infty)"),
    lambda a, b: (f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}"),
    lambda a, b: (f"x = {a}", f"{a}"),
    lambda a, b: (f"\\frac{{{a}\\pi}}{{{b}}}", f"\\frac{{{a}\\pi}}{{{b}}}"),
    lambda a, b: (f"{a}+{b}", f"{a + b}"),
    lambda a, b: (f"\\{{{a},{b}\\}}", f"\\{{{b},{a}\\}}"),
    lambda a, b: (f"{a} \\text{{ apples}}", f"{a}"),
]
ADVERSARIAL = [
    "\\boxed{9^9^9^9}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{100000!}",
    "\\boxed{(10^{10})!}",
    "\\boxed{2^{10^{10}}}",
    "\\boxed{\\binom{10^{100}}{10^{50}}}",
    "\\boxed{x^{9^{9^9}}}",
    "\\boxed{" + "9^" * 400 + "9}",
    "\\boxed{" + "1" * 999 + "}",
    "\\boxed{" + "(" * 300 + ")" * 300 + "}",
    "\\boxed{" + "\\frac{" * 300 + "1" + "}{2}" * 300 + "}",
    "x" * 1_000_000 + "\\boxed{12}",
    "\\boxed{" + "1" * 1_000_000 + "}",
    "\\boxed{" * 100_000,
    "{" * 1_000_000,
    "\\boxed{1}" * 100_000,
    "</think>" * 100_000 + "\\boxed{2}",
    "\\boxed{__import__('os').system('true')}",
    "\\boxed{1e999999999}",
    "\\boxed{1E+999999999}",
    "\\boxed{1e-9999999}",
    "\\boxed{doctest()}",
    "\\boxed{pprint(x)}",
    "\\boxed{1<<99999999999}",
    "\\boxed{\\gcd(2^{999999999}, 3)}",
    # Slow but admissible: just inside the size and depth screens, so only the deadline bounds them.
    "\\boxed{((((((x+1))))))}",
    "\\boxed{" + "x+" * 99 + "x}",
    "\\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(20)) + "}",
    "\\boxed{" + "x+" * 400 + "x}",
    "\\boxed{10^{10^{10}}+1}",
]


def realistic_completions(n: int, seed: int = 0, answers: list = ARITHMETIC) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    words = "first we add the numbers so the total is then we check the answer carefully step".split()
    completions, golds = [], []
    for _ in range(n):
        content, gold = rng.choice(answers)(rng.randint(1, 999), rng.randint(2, 99))
        reasoning = " ".join(rng.choice(words) for _ in range(rng.choice([2, 10, 30, 120, 500])))
        kind = rng.random()
        if kind < 0.6:
            text = f"{reasoning}. The answer is \\boxed{{{content}}}."
        elif kind < 0.75:
            text = f"{reasoning}. The answer is {content}."  # no box
        elif kind < 0.85:
            text = f"{reasoning} \\boxed{{{content}"  # truncated
        else:
            text = f"<think>{reasoning}</think> So \\boxed{{{content}}}"
        completions.append(text)
        golds.append(gold)
    return completions, golds


def clear_caches() -> None:
    # Our verdict and parse caches (accuracy's also in its worker); math-verify keeps its own (as in training).
    sympy_guard._is_valid_cached.cache_clear()
    accuracy._clear_caches()


def time_batch(reward, completions: list[str], golds: list[str]) -> tuple[float, int]:
    """-> (wall seconds, completions scored 0 for running over their budget)."""
    clear_caches()
    ids = [[0] * max(1, len(c) // 4) for c in completions]  # ~4 characters per token
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        reward(prompts=["q"] * len(completions), completions=completions, completion_ids=ids, answer=golds)
        seconds = time.perf_counter() - start
    return seconds, over_budget(caught)


def time_single(reward, completion: str) -> tuple[float, float, int]:
    """-> (wall seconds, CPU seconds of this thread, 1 if scored 0 for running over its budget else 0)."""
    clear_caches()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, cpu = time.perf_counter(), time.thread_time()
        values = reward(prompts=["q"], completions=[completion], completion_ids=[[0] * 64], answer=["12"])
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    assert values[0] is not None and values[0] <= 2.0, values
    return wall, cpu, over_budget(caught)


def over_budget(caught: list[warnings.WarningMessage]) -> int:
    # A reward over its per-completion budget warns once per completion, with a "[reward]" prefix.
    return sum(str(w.message).startswith("[reward]") for w in caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=800, help="realistic completions per reward")
    parser.add_argument("--step-seconds", type=float, default=18.0, help="wall time of one quickstart step")
    parser.add_argument("--per-step", type=int, default=16, help="completions scored per quickstart step")
    args = parser.parse_args()

    os.chdir(REPO)
    rewards = [build_reward(spec, params) for spec, params in SPECS]
    completions, golds = realistic_completions(args.num)
    warm_up, _ = realistic_completions(20, seed=1)
    for reward in rewards:  # imports and math-verify's one-off set-up (its worker's template), on other completions
        time_batch(reward, warm_up, golds[:20])

    math_completions, math_golds = realistic_completions(args.num, seed=2, answers=MATH)
    rows, per_completion, per_completion_math, over = [], {}, {}, {}
    for (spec, _), reward in zip(SPECS, rewards):
        seconds, over_realistic = time_batch(reward, completions, golds)
        seconds_math, over_math = time_batch(reward, math_completions, math_golds)
        per_completion[reward.__name__] = seconds / len(completions)
        per_completion_math[reward.__name__] = seconds_math / len(math_completions)
        worst_wall = worst_cpu = 0.0
        over_adversarial = 0
        for text in ADVERSARIAL:
            wall, cpu, over_one = time_single(reward, text)
            worst_wall, worst_cpu = max(worst_wall, wall), max(worst_cpu, cpu)
            over_adversarial += over_one
        over[spec] = {"realistic": over_realistic, "math": over_math, "adversarial": over_adversarial}
        rows.append(
            (
                spec,
                len(completions) / seconds,
                len(math_completions) / seconds_math,
                1000 * worst_wall,
                1000 * worst_cpu,
            )
        )

    print(f"{'reward':44} {'arith compl/s':>14} {'math compl/s':>13} {'worst ms':>9} {'worst cpu ms':>13}")
    for spec, rate, rate_math, worst_ms, worst_cpu_ms in rows:
        print(f"{spec:44} {rate:14.0f} {rate_math:13.0f} {worst_ms:9.1f} {worst_cpu_ms:13.1f}")
    step_seconds = args.per_step * sum(per_completion[name] for name in RECIPE_REWARDS)
    step_seconds_math = args.per_step * sum(per_completion_math[name] for name in RECIPE_REWARDS)
    share, share_math = step_seconds / args.step_seconds, step_seconds_math / args.step_seconds
    print(
        f"\nrecipe rewards {'+'.join(RECIPE_REWARDS)} per step of {args.per_step} completions: "
        f"{1000 * step_seconds:.1f} ms on arithmetic = {100 * share:.3f} % of a {args.step_seconds:g} s quickstart "
        f"step (goal <= 2 %); {1000 * step_seconds_math:.1f} ms ({100 * share_math:.2f} %) on MATH-style answers"
    )
    print(
        f"adversarial set: {len(ADVERSARIAL)} completions; worst single completion "
        f"{max(r[3] for r in rows):.1f} ms wall, {max(r[4] for r in rows):.1f} ms CPU (goal <= 100 ms)"
    )
    for spec, counts in over.items():
        if any(counts.values()):
            print(f"{spec}: scored 0 for running over the per-completion budget: {counts}")
    summary = {
        "worst_case_ms": round(max(r[3] for r in rows), 2),
        "worst_case_cpu_ms": round(max(r[4] for r in rows), 2),
        "reward_share_of_step": round(share, 6),
        "reward_share_of_step_math_answers": round(share_math, 6),
        "recipe_reward_ms_per_step": round(1000 * step_seconds, 3),
        "completions_per_s": {spec: round(rate, 1) for spec, rate, *_ in rows},
        "completions_per_s_math_answers": {spec: round(rate, 1) for spec, _, rate, *_ in rows},
        "num_realistic": len(completions),
        "num_adversarial": len(ADVERSARIAL),
        "over_budget": {spec: sum(counts.values()) for spec, counts in over.items()},
        "over_budget_adversarial": {spec: counts["adversarial"] for spec, counts in over.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
