"""Accuracy reward: does the last `\\boxed{}` equal the ground-truth answer column? (math-verify, bounded in time)

The "Correctness" baseline of Xin et al. 2025 (arXiv 2505.19439, §3.1), graded the way TRL 1.16's
`trl.rewards.accuracy_reward` grades (math-verify `parse` + `verify`; `None` when the gold answer does not parse,
so TRL skips that sample), with these differences:

- The answer is the last brace-matched `\\boxed{}` after any `</think>` (`boxed.last_boxed`, the same extraction as
  the format reward); no box scores 0. TRL lets math-verify search the whole text.
- Two plain numbers (integer, decimal, `a/b`, `\\frac{a}{b}`) are compared exactly as fractions without SymPy: the
  common case costs microseconds.
- Everything else is graded by math-verify in a worker process (`bounded_worker`) whose CPU time the kernel bounds
  per completion (`timeout_s`, default 0.08 s), instead of math-verify's `signal.alarm` timeouts, which TRL turns
  off outside the main thread. A completion over the budget scores 0 with one `[reward]` warning naming it; the
  worker is abandoned (nothing is printed, nothing in the training process is interrupted) and the next completion
  gets a fresh fork of a warm template process (milliseconds). Works from any thread or process.
- Gold answers are parsed once per distinct gold (a group of G completions shares one), each distinct answer once,
  and each distinct (gold, answer) pair is graded once: bounded LRU caches in the worker and in this process.
- Answers whose value is too large to compute (`9^{9^{9^9}}`, `100000!`) score 0 before math-verify sees them,
  because math-verify evaluates and would spend the budget (and memory) in big-integer C code; so do numbers in
  scientific notation with an exponent beyond `sympy_guard.MAX_DIGITS` (`1E+999999999`), which math-verify's LaTeX
  grammar reads as one number and SymPy converts to binary in C. An answer longer than 200 characters or nested
  deeper than 6 brackets scores 0 (math-verify's parser slows down steeply with nesting: `((((((x+1))))))` takes
  0.37 s of CPU on a 2-core CPU).

Metrics: `rewards/accuracy/mean` (fraction of gradable completions that are correct).
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.bounded_worker import AVAILABLE, BoundedWorker, WorkerOverrun
from rlsurrogate.rewards.boxed import MAX_BOXED_CHARS, completion_text, last_boxed, parse_plain_number
from rlsurrogate.rewards.sympy_guard import DeadlineExceeded, exponents_bounded, preload, safe_parse, time_limit

__all__ = ["grade", "make_accuracy"]

# One completion should cost <= 100 ms in total: the budget leaves room for extraction, the gold's parse (a few ms,
# once per prompt), the worker round trip (0.1 ms), the kernel's CPU accounting (tick-sampled: a few ms) and a fork
# after an overrun (milliseconds). math-verify on a short answer takes 1-10 ms of CPU.
DEFAULT_TIMEOUT_S = 0.08
# Gold answers come from the dataset (trusted, repeated G times per prompt): parse once, with a generous budget.
_GOLD_TIMEOUT_S = 2.0
# Operators whose value can explode; an answer using them must pass our own magnitude check first.
# math-verify's LaTeX parser slows down steeply with nesting and ~1.5 ms per term, so longer or deeper answers could
# not be graded within the budget anyway; no final answer in MATH or DeepScaleR comes close.
_MAX_VERIFY_CHARS = 200
_MAX_VERIFY_DEPTH = 6
# Distinct golds, answers and (gold, answer) pairs remembered: a few training steps' worth of prompts and answers.
_CACHE_SIZE = 4096
# Characters of an answer quoted in the over-budget warning.
_QUOTE_CHARS = 60
# One (gold, answer) pair per kind of answer math-verify handles differently: expression, interval, equation,
# set, tuple, matrix, radical, and a wrong answer (its `simplify` imports sympy.physics.units: 0.1 s).
_WARM_UP = (
    ("x^2+1", "1+x^{2}"),
    ("x^2", "1"),
    ("(0, \\infty)", "(0,\\infty)"),
    ("x=2", "2"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("(1,2)", "(1, 2)"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
)
_EXPLOSIVE = re.compile(r"\^|\*\*|!|\\binom|\\choose|\\fact|\\Gamma|\\uparrow")
# math-verify runs here, in forks of one template process per training process (started on first use).
_WORKER = BoundedWorker(__name__, setup="_set_up")


def make_accuracy(*, answer_column: str = "answer", timeout_s: float = DEFAULT_TIMEOUT_S) -> _AccuracyReward:
    """Accuracy reward ∈ {0, 1}, or None when the gold answer does not parse (arXiv 2505.19439 §3.1 baseline).

    Args:
        answer_column: dataset column holding the ground-truth answer (a string such as "12" or "\\\\frac{1}{3}").
        timeout_s: CPU-time budget per completion; an answer not graded in time scores 0 (with a warning).

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
    try:
        return _grade(answer, gold, timeout_s)
    except WorkerOverrun:
        _warn_over_budget(f"answer {_quote(answer)}", timeout_s)
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
        scores: list[float | None] = []
        for i, (completion, gold) in enumerate(zip(completions, kwargs[self.answer_column], strict=True)):
            answer = last_boxed(completion_text(completion))
            try:
                scores.append(_grade(answer, "" if gold is None else str(gold), self.timeout_s))
            except WorkerOverrun:
                _warn_over_budget(f"completion {i} (answer {_quote(answer)})", self.timeout_s)
                scores.append(0.0)
        return scores


def _grade(answer: str | None, gold: str, timeout_s: float) -> float | None:
    # `grade` without the warning: raises WorkerOverrun when math-verify needs more than `timeout_s`.
    gold = _unboxed(gold)
    gold_number = parse_plain_number(gold)
    if gold_number is None and not _gold_parses(gold):
        return None
    if answer is None or len(answer) > MAX_BOXED_CHARS:
        return 0.0
    number = parse_plain_number(answer)
    if number is not None and gold_number is not None:
        return float(number == gold_number)
    if len(answer) > _MAX_VERIFY_CHARS or _bracket_depth(answer) > _MAX_VERIFY_DEPTH:
        return 0.0
    if not exponents_bounded(answer):
        return 0.0  # math-verify would build `1E+999999999` in C
    return _verified(gold, answer, timeout_s)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _unboxed(gold: str) -> str:
    # A boxed gold ("... \boxed{7}") is graded by its box.
    boxed = last_boxed(gold)
    return (boxed if boxed is not None else gold).strip()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _gold_parses(gold: str) -> bool:
    return bool(gold) and _gold_loaded(gold)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _verified(gold: str, answer: str, timeout_s: float) -> float:
    # A WorkerOverrun propagates, so an answer over the budget is not cached (and is warned about each time).
    if not _gold_parses(gold) or not _gold_loaded(gold):
        return 0.0
    return _in_worker("_verified_here", (gold, answer), timeout_s)


def _gold_loaded(gold: str) -> bool:
    # Parses gold in the current worker, which caches it (a fresh worker after an overrun parses it again); a gold
    # over its budget counts as unparsable.
    try:
        return _in_worker("_gold_parses_here", (gold,), _GOLD_TIMEOUT_S)
    except WorkerOverrun:
        return False


def _in_worker(function: str, args: tuple[Any, ...], cpu_seconds: float) -> Any:
    # `function(*args)` of this module in the worker; WorkerOverrun past `cpu_seconds` of CPU.
    if AVAILABLE:
        return _WORKER.call(function, args, cpu_seconds)
    try:  # no fork on this platform: in this process, under the trace-based deadline
        with time_limit(cpu_seconds):
            return globals()[function](*args)
    except DeadlineExceeded:
        raise WorkerOverrun(function) from None


def _clear_caches() -> None:
    # For benchmarks: forget every verdict and parse, here and in the worker.
    for cache in (_unboxed, _gold_parses, _verified):
        cache.cache_clear()
    _in_worker("_clear_caches_here", (), _GOLD_TIMEOUT_S)


def _warn_over_budget(what: str, timeout_s: float) -> None:
    warnings.warn(
        f"[reward] accuracy: {what} was not graded within timeout_s = {timeout_s:g} s of CPU; scored 0.",
        RuntimeWarning,
        stacklevel=3,
    )


def _quote(answer: str | None) -> str:
    text = " ".join((answer or "").split())
    return repr(text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "...")


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


# ----------------------------------------------------------------------------------------------------------------
# What runs in the worker process (`_WORKER`), under its CPU budget.


def _set_up() -> None:
    # In the template, once: imports and warm-up, so that every fork starts warm.
    _math_verify()
    preload()


def _gold_parses_here(gold: str) -> bool:
    return bool(_parsed_gold(gold))


def _verified_here(gold: str, answer: str) -> float:
    if _EXPLOSIVE.search(answer) and safe_parse(answer, timeout_s=None) is None:
        return 0.0  # cannot bound its value, so math-verify might spend the budget evaluating it
    predicted = _parsed_answer(answer)
    _, verify = _math_verify()
    try:
        return 1.0 if predicted and verify(list(_parsed_gold(gold)), list(predicted), timeout_seconds=None) else 0.0
    except Exception:  # noqa: BLE001 - ungradable counts as wrong
        return 0.0


def _clear_caches_here() -> None:
    _parsed_gold.cache_clear()
    _parsed_answer.cache_clear()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parsed_gold(gold: str) -> tuple[Any, ...]:
    # math-verify's parse of gold: as LaTeX math first ("1+x^2" as a whole), then its default extraction ("$...$").
    parse, _ = _math_verify()
    try:
        return tuple(parse("$" + gold + "$", parsing_timeout=None) or parse(gold, parsing_timeout=None))
    except Exception:  # noqa: BLE001 - an unparsable gold means "skip this sample"
        return ()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parsed_answer(answer: str) -> tuple[Any, ...]:
    parse, _ = _math_verify()
    try:
        return tuple(
            parse(
                "\\boxed{" + answer + "}",
                extraction_config=_extraction_config(),
                extraction_mode="first_match",
                parsing_timeout=None,
            )
        )
    except Exception:  # noqa: BLE001 - an unparsable answer is wrong
        return ()


@functools.lru_cache(maxsize=1)
def _math_verify() -> tuple[Any, Any]:
    # Imported on first use (math-verify pulls in SymPy and an ANTLR parser).
    from math_verify import parse, verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_drop_timeout_disabled_warning)
    # The first verify of each kind of answer imports and caches parts of SymPy (about 1 s in all): done once in
    # the template rather than in the first completions' budgets.
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


def _drop_timeout_disabled_warning(record: logging.LogRecord) -> bool:
    # math-verify warns on every call made with its signal timeouts off; the worker's CPU budget replaces them.
    return not str(record.msg).startswith("Timeout is disabled")
