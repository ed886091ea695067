"""Accuracy reward: does the last `\\boxed{}` equal the ground-truth answer column? (math-verify, bounded in time)

The "Correctness" baseline of Xin et al. 2025 (arXiv 2505.19439, §3.1), graded the way TRL 1.16's
`trl.rewards.accuracy_reward` grades (math-verify `parse` + `verify`; `None` when the gold answer does not parse,
so TRL skips that sample), with these differences:

- The answer is the last brace-matched `\\boxed{}` after any `</think>` (`boxed.last_boxed`, the same extraction as
  the format reward); no box scores 0. TRL lets math-verify search the whole text.
- Two plain numbers (integer, decimal, `a/b`, `\\frac{a}{b}`) are compared exactly as fractions without SymPy: the
  common case costs microseconds.
- Everything else runs under a per-completion deadline (`timeout_s`, default 0.09 s of CPU time) that works in
  any thread (`sympy_guard.time_limit`), instead of math-verify's `signal.alarm` timeouts, which TRL turns off
  outside the main thread. Answers whose value is too large to compute (`9^{9^{9^9}}`, `100000!`) score 0 before
  math-verify sees them, because math-verify evaluates and would hang in C code no deadline can interrupt; so do
  numbers in scientific notation with an exponent beyond `sympy_guard.MAX_DIGITS` (`1E+999999999`), which
  math-verify's LaTeX grammar reads as one number and SymPy converts to binary in C (minutes). A
  correct answer whose verification needs longer than `timeout_s` scores 0, and so does one longer than 200
  characters or nested deeper than 6 brackets (math-verify's parser slows down ~25 ms per level of parentheses).

Metrics: `rewards/accuracy/mean` (fraction of gradable completions that are correct).
"""

from __future__ import annotations

import functools
import logging
import re
from fractions import Fraction
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.boxed import MAX_BOXED_CHARS, completion_text, last_boxed, parse_plain_number
from rlsurrogate.rewards.sympy_guard import DeadlineExceeded, exponents_bounded, preload, safe_parse, time_limit

__all__ = ["grade", "make_accuracy"]

# One completion should cost <= 100 ms in total (issue goal), extraction included; math-verify on a short answer
# takes 1-30 ms of CPU.
DEFAULT_TIMEOUT_S = 0.09
# Gold answers come from the dataset (trusted, repeated G times per prompt): parse once, with a generous limit.
_GOLD_TIMEOUT_S = 2.0
# Operators whose value can explode; an answer using them must pass our own magnitude check first.
# math-verify's LaTeX parser needs ~25 ms per level of nested parentheses and ~1.5 ms per term, so longer or deeper
# answers could not be graded within the budget anyway; no final answer in MATH or DeepScaleR comes close.
_MAX_VERIFY_CHARS = 200
_MAX_VERIFY_DEPTH = 6
# One (gold, answer) pair per kind of answer math-verify handles differently: expression, interval, equation,
# set, tuple, matrix, radical.
_WARM_UP = (
    ("x^2+1", "1+x^{2}"),
    ("(0, \\infty)", "(0,\\infty)"),
    ("x=2", "2"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("(1,2)", "(1, 2)"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
)
_EXPLOSIVE = re.compile(r"\^|\*\*|!|\\binom|\\choose|\\fact|\\Gamma|\\uparrow")


def make_accuracy(*, answer_column: str = "answer", timeout_s: float = DEFAULT_TIMEOUT_S) -> _AccuracyReward:
    """Accuracy reward ∈ {0, 1}, or None when the gold answer does not parse (arXiv 2505.19439 §3.1 baseline).

    Args:
        answer_column: dataset column holding the ground-truth answer (a string such as "12" or "\\\\frac{1}{3}").
        timeout_s: time budget per completion; an answer not graded in time scores 0.

    Example:
        >>> reward = make_accuracy()
        >>> reward(completions=["\\\\boxed{12}", "\\\\boxed{13}", "12"], answer=["12", "12", "12"])
        [1.0, 0.0, 0.0]
    """
    problems = []
    if not isinstance(answer_column, str) or not answer_column:
        problems.append(
            f"accuracy.answer_column = {answer_column!r}: must be a non-empty column name; the built-in "
            "tasks use 'answer'."
        )
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 60:
        problems.append(
            f"accuracy.timeout_s = {timeout_s!r}: must be a number of seconds in (0, 60]; the default "
            f"{DEFAULT_TIMEOUT_S} keeps each completion under 100 ms."
        )
    if problems:
        raise ConfigError(problems)
    return _AccuracyReward(answer_column, float(timeout_s))


def grade(answer: str | None, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> float | None:
    """1.0 if the boxed `answer` equals `gold`, 0.0 if not (or not gradable in time), None if `gold` is unparsable.

    Example:
        >>> grade("\\\\frac{24}{2}", "12"), grade(None, "12"), grade("1", "")
        (1.0, 0.0, None)
    """
    gold_number, gold_parsed = _parse_gold(gold)
    if gold_number is None and not gold_parsed:
        return None
    if answer is None or len(answer) > MAX_BOXED_CHARS:
        return 0.0
    number = parse_plain_number(answer)
    if number is not None and gold_number is not None:
        return float(number == gold_number)
    if not gold_parsed or len(answer) > _MAX_VERIFY_CHARS or _bracket_depth(answer) > _MAX_VERIFY_DEPTH:
        return 0.0
    if not exponents_bounded(answer):
        return 0.0  # math-verify would build `1E+999999999` in C, out of the deadline's reach
    parse, verify = _math_verify()
    preload()  # imports happen outside the deadline: an import cut short would leave broken modules behind
    try:
        with time_limit(timeout_s):  # one budget for the magnitude check and math-verify together
            if _EXPLOSIVE.search(answer) and safe_parse(answer, timeout_s) is None:
                return 0.0  # cannot bound its value, so math-verify might hang evaluating it
            predicted = parse(
                "\\boxed{" + answer + "}",
                extraction_config=_extraction_config(),
                extraction_mode="first_match",
                parsing_timeout=None,
            )
            return 1.0 if predicted and verify(list(gold_parsed), predicted, timeout_seconds=None) else 0.0
    except (DeadlineExceeded, RecursionError, Exception):  # noqa: BLE001 - ungradable counts as wrong
        return 0.0


# ----------------------------------------------------------------------------------------------------------------


class _AccuracyReward:
    __name__ = "accuracy"
    version = "1"

    def __init__(self, answer_column: str, timeout_s: float):
        self.answer_column = answer_column
        self.timeout_s = timeout_s

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        if self.answer_column not in kwargs:
            columns = sorted(k for k in kwargs if k not in ("prompts", "completion_ids", "trainer_state"))
            raise KeyError(
                f"reward 'accuracy' needs the dataset column {self.answer_column!r}; the dataset has "
                f"{columns}. Set params: {{answer_column: <name>}} in the recipe."
            )
        gold = kwargs[self.answer_column]
        return [
            grade(last_boxed(completion_text(c)), "" if g is None else str(g), self.timeout_s)
            for c, g in zip(completions, gold, strict=True)
        ]


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[Fraction | None, tuple[Any, ...]]:
    # -> (exact value if gold is a plain number, math-verify's parse of gold). A boxed gold is unboxed first.
    boxed = last_boxed(gold)
    gold = (boxed if boxed is not None else gold).strip()
    if not gold:
        return None, ()
    parse, _ = _math_verify()
    try:
        with time_limit(_GOLD_TIMEOUT_S):
            # As LaTeX math first ("1+x^2" as a whole), then math-verify's default extraction (e.g. "$...$" text).
            parsed = parse("$" + gold + "$", parsing_timeout=None) or parse(gold, parsing_timeout=None)
    except (DeadlineExceeded, Exception):  # noqa: BLE001 - an unparsable gold means "skip this sample"
        parsed = []
    return parse_plain_number(gold), tuple(parsed)


@functools.lru_cache(maxsize=1)
def _math_verify() -> tuple[Any, Any]:
    # Imported on first use (math-verify pulls in SymPy and an ANTLR parser), outside any deadline.
    from math_verify import parse, verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_drop_timeout_disabled_warning)
    # Warm up outside any deadline: the first verify of each kind of answer imports and caches parts of SymPy
    # (about 1 s in all), which would otherwise eat the first completions' budgets.
    for gold, answer in _WARM_UP:
        verify(
            parse("$" + gold + "$", parsing_timeout=None),
            parse("\\boxed{" + answer + "}", extraction_config=_extraction_config(), parsing_timeout=None),
            timeout_seconds=None,
        )
    return parse, verify


@functools.lru_cache(maxsize=1)
def _extraction_config() -> list[Any]:
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig

    # As TRL's accuracy_reward: units normalised, boxed content first, no anchor-free guessing.
    return [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(units=True),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _drop_timeout_disabled_warning(record: logging.LogRecord) -> bool:
    # math-verify warns on every call made with its signal timeouts off; our deadline replaces them.
    return not str(record.msg).startswith("Timeout is disabled")
