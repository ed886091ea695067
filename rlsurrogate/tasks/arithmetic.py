"""Synthetic arithmetic word problems with ground-truth answers, sized for a 135M model.

SmolLM2-135M-Instruct often knows one-digit sums but cannot add two-digit numbers reliably, and it almost never
puts its answer in `\\boxed{}` before training. So the problems use one-digit operands (sums up to 18, small
differences), phrased mostly as one-step word problems ("Tom has 4 apples and gets 3 more. ..."), sometimes as a
bare sum ("What is 7 + 5?"). A label-free format
reward can then teach boxing, and accuracy (the last boxed answer checked against `answer`) shows whether the model
boxes the *right* number.

Splits are disjoint: every problem is identified by (template, names, operands), and the held-out split only draws
problems the train split cannot produce (a hash of the identity decides the split), so `eval` is truly held out.

`difficulty` mixes operand sizes: `{1: w1, 2: w2, 3: w3}` draws each problem's number of digits with these weights
(a d-digit operand lies in [10^(d-1), 10^d - 1]; a difference adds up to 9 x 10^(d-1) so it stays positive). The
135M model is right on some one-digit sums and almost never on two- and three-digit ones, so a correctness reward
has within-group variance on some prompts and none on others: the task `arithmetic_mixed` (equal thirds) is where
the choice of prompts matters (`rlsurrogate.sampling`). Rows of a mix carry a `digits` column. Without `difficulty`
the task is unchanged, row for row.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping

__all__ = ["INSTRUCTION", "MIXED_DIFFICULTY", "arithmetic", "arithmetic_mixed", "arithmetic_tools"]

INSTRUCTION = "Put the final answer in \\boxed{}."
# One problem in five goes to the held-out split; the hash makes the assignment independent of the seed.
EVAL_FRACTION = 0.2

_NAMES = ["Tom", "Anna", "Ben", "Lucy", "Sam", "Mia", "Leo", "Emma", "Max", "Zoe"]
_OBJECTS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "coins", "shells"]
# Mostly one-step word problems: SmolLM2-135M-Instruct boxes some answers to word problems but almost never to a bare
# "What is 7 + 5?", so word problems give a label-free format reward something to reinforce from the first step.
_TEMPLATES = [
    ("sum", "What is {a} + {b}?"),
    ("sum", "{name} has {a} {obj} and gets {b} more. How many {obj} does {name} have now?"),
    ("sum", "There are {a} {obj} in a box and {b} {obj} on the table. How many {obj} are there in total?"),
    ("sum", "{name} found {a} {obj} in the morning and {b} {obj} in the afternoon. How many {obj} did {name} find?"),
    ("diff", "{name} has {a} {obj} and gives away {b}. How many {obj} does {name} have left?"),
    ("diff", "A jar holds {a} {obj}. {name} takes {b} of them. How many {obj} are left in the jar?"),
]
# The mix of `arithmetic_mixed`: equal thirds of one-, two- and three-digit problems, so that about a third of the
# prompts give the 135M model's answers within-group variance (one-digit) and two thirds rarely do.
MIXED_DIFFICULTY: dict[int, float] = {1: 1.0, 2: 1.0, 3: 1.0}
# Operands of more digits than this are not a "small model" task any more (and would make huge answers).
_MAX_DIGITS = 6


def arithmetic(
    split: str, num: int, seed: int = 0, chat: bool = True, difficulty: Mapping[int, float] | None = None
) -> list[dict]:
    """`num` distinct problems of `split` ("train" | "eval"), each {"prompt", "answer", "question"}.

    Args:
        split: "train" or "eval" (disjoint).
        num: number of problems.
        seed: seed of the generator.
        chat: prompts as chat messages (True) or plain text.
        difficulty: weights of the operands' number of digits, e.g. `{1: 0.5, 3: 0.5}`; None: one-digit
            operands as always (rows then have no `digits` column).

    Example:
        >>> rows = arithmetic("eval", 2, seed=0)
        >>> sorted(rows[0])
        ['answer', 'prompt', 'question']
    """
    if split not in ("train", "eval"):
        raise ValueError(f'split must be "train" or "eval", got {split!r}')
    digits, weights = _check_difficulty(difficulty) if difficulty is not None else ([1], [1.0])
    rng = random.Random(f"arithmetic-{split}-{seed}")
    rows, seen = [], set()
    attempts = 0
    while len(rows) < num:
        attempts += 1
        if attempts > 200 * num + 10_000:
            raise ValueError(f"arithmetic: cannot draw {num} distinct {split} problems; ask for fewer")
        kind, template = rng.choice(_TEMPLATES)
        d = rng.choices(digits, weights)[0] if difficulty is not None else 1
        low, high = (1, 9) if d == 1 else (10 ** (d - 1), 10**d - 1)
        a, b = rng.randint(low, high), rng.randint(low, high)
        if kind == "diff":
            a, b = max(a, b) + rng.randint(1, 9 * max(1, low)), min(a, b)  # never negative
        name, obj = rng.choice(_NAMES), rng.choice(_OBJECTS)
        question = template.format(a=a, b=b, name=name, obj=obj)
        if question in seen or _split_of(question) != split:
            continue
        seen.add(question)
        answer = str(a + b if kind == "sum" else a - b)
        text = f"{question} {INSTRUCTION}"
        prompt = [{"role": "user", "content": text}] if chat else text
        row = {"prompt": prompt, "answer": answer, "question": question}
        if difficulty is not None:
            row["digits"] = d
        rows.append(row)
    return rows


def arithmetic_mixed(split: str, num: int, seed: int = 0, chat: bool = True) -> list[dict]:
    """`arithmetic` with equal thirds of one-, two- and three-digit problems (`MIXED_DIFFICULTY`).

    Example:
        >>> sorted({row["digits"] for row in arithmetic_mixed("train", 30)})
        [1, 2, 3]
    """
    return arithmetic(split, num, seed=seed, chat=chat, difficulty=MIXED_DIFFICULTY)


def arithmetic_tools(split: str, num: int, seed: int = 0, chat: bool = True) -> list[dict]:
    """`arithmetic` with two-digit operands: the 135M model rarely adds them in its head, but can with a calculator
    tool (`rlsurrogate.environments.calculator`, recipe `recipes/tools_cpu.yaml`).

    Example:
        >>> sorted({row["digits"] for row in arithmetic_tools("train", 10)})
        [2]
    """
    return arithmetic(split, num, seed=seed, chat=chat, difficulty={2: 1.0})


def _check_difficulty(difficulty: Mapping[int, float]) -> tuple[list[int], list[float]]:
    """(digits, weights) of a difficulty mix; ValueError naming the bad entry."""
    if not isinstance(difficulty, Mapping) or not difficulty:
        raise ValueError(f"difficulty = {difficulty!r}: must map digits to weights, e.g. {{1: 0.5, 2: 0.5}}.")
    for d, w in difficulty.items():
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= _MAX_DIGITS:
            raise ValueError(f"difficulty key {d!r}: must be a number of digits in 1-{_MAX_DIGITS}.")
        if isinstance(w, bool) or not isinstance(w, int | float) or not (math.isfinite(w) and w >= 0):
            raise ValueError(f"difficulty[{d}] = {w!r}: must be a finite weight >= 0.")
    if not sum(difficulty.values()) > 0:
        raise ValueError(f"difficulty = {dict(difficulty)}: at least one weight must be > 0.")
    return list(difficulty), [float(w) for w in difficulty.values()]


def _split_of(question: str) -> str:
    digest = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16)
    return "eval" if digest % 1000 < EVAL_FRACTION * 1000 else "train"
