"""Synthetic arithmetic word problems with ground-truth answers, sized for a 135M model.

SmolLM2-135M-Instruct often knows one-digit sums but cannot add two-digit numbers reliably, and it almost never
puts its answer in `\\boxed{}` before training. So the problems use one-digit operands (sums up to 18, small
differences), phrased mostly as one-step word problems ("Tom has 4 apples and gets 3 more. ..."), sometimes as a
bare sum ("What is 7 + 5?"). A label-free format
reward can then teach boxing, and accuracy (the last boxed answer checked against `answer`) shows whether the model
boxes the *right* number.

Splits are disjoint: every problem is identified by (template, names, operands), and the held-out split only draws
problems the train split cannot produce (a hash of the identity decides the split), so `eval` is truly held out.
"""

from __future__ import annotations

import hashlib
import random

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


def arithmetic(split: str, num: int, seed: int = 0, chat: bool = True) -> list[dict]:
    """`num` distinct problems of `split` ("train" | "eval"), each {"prompt", "answer", "question"}.

    Example:
        >>> rows = arithmetic("eval", 2, seed=0)
        >>> sorted(rows[0])
        ['answer', 'prompt', 'question']
    """
    if split not in ("train", "eval"):
        raise ValueError(f'split must be "train" or "eval", got {split!r}')
    rng = random.Random(f"arithmetic-{split}-{seed}")
    rows, seen = [], set()
    attempts = 0
    while len(rows) < num:
        attempts += 1
        if attempts > 200 * num + 10_000:
            raise ValueError(f"arithmetic: cannot draw {num} distinct {split} problems; ask for fewer")
        kind, template = rng.choice(_TEMPLATES)
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        if kind == "diff":
            a, b = max(a, b) + rng.randint(1, 9), min(a, b)  # never negative
        name, obj = rng.choice(_NAMES), rng.choice(_OBJECTS)
        question = template.format(a=a, b=b, name=name, obj=obj)
        if question in seen or _split_of(question) != split:
            continue
        seen.add(question)
        answer = str(a + b if kind == "sum" else a - b)
        text = f"{question} {INSTRUCTION}"
        prompt = [{"role": "user", "content": text}] if chat else text
        rows.append({"prompt": prompt, "answer": answer, "question": question})
    return rows


def _split_of(question: str) -> str:
    digest = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16)
    return "eval" if digest % 1000 < EVAL_FRACTION * 1000 else "train"
