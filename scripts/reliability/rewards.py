"""Bad inputs for the built-in rewards: model text that tries to hang, crash or escape the answer parsers.

Each case feeds one completion (gold answer "12") to `format`, `format_length`, `accuracy` and `boxed_number`, built
with `rlsurrogate.rewards.build_reward`, and reports:
- "handled": every reward returned a score in its range and equal to the expected one (0 for an invalid answer;
  `format_length` is built with L_max = 64 and given 32 tokens, so it scores 2 with a valid format and 0 without).
- "traceback": an exception escaped a reward; also a score out of range or different from the expected one (detail
  "wrong score: ..."), since the protocol has no kind for a wrong answer.
`reward_ms` is the slowest single reward call, wall clock, with the verdict caches cleared before each call and the
imports and math-verify's one-off set-up done before the first measurement.

Inputs: literals SymPy converts in C while parsing (`1e999999999`), names outside the parser's whitelist
(`doctest()` ran SymPy's test suite, `pprint(x)` printed), values too large to compute (power towers, factorials,
`1<<99999999999`), 1 MB strings, deep nesting, unbalanced braces, unicode and NUL bytes, plus two controls that
must score full marks.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

from . import Case, Outcome, handled, traceback

__all__ = ["CASES"]

SURFACE = "rewards"
GOLD = "12"
# L_max = 64 and 32 completion tokens put the length term at its peak R_l = 1: format_length is then 2 or 0.
SPECS = {
    "format": ("format", {}),
    "format_length": ("format_length", {"max_length": 64}),
    "accuracy": ("accuracy", {}),
    "boxed_number": ("boxed_number", {}),
}
RANGES = {"format": (0.0, 1.0), "format_length": (-1.0, 2.0), "accuracy": (0.0, 1.0), "boxed_number": (0.0, 1.0)}
TOKENS = 32
ZERO = {"format": 0.0, "format_length": 0.0, "accuracy": 0.0, "boxed_number": 0.0}
# A boxed plain number other than the gold: valid format, wrong answer.
NUMBER_NOT_GOLD = {"format": 1.0, "format_length": 2.0, "accuracy": 0.0, "boxed_number": 1.0}
FULL_MARKS = {"format": 1.0, "format_length": 2.0, "accuracy": 1.0, "boxed_number": 1.0}
# A valid expression that is not a plain number.
EXPRESSION = {"format": 1.0, "format_length": 2.0, "accuracy": 0.0, "boxed_number": 0.0}


def _boxed(content: str) -> str:
    return "The answer is \\boxed{" + content + "}."


# (name, completion, expected scores, tags)
INPUTS: list[tuple[str, str, dict[str, float | None], list[str]]] = [
    # Number literals: SymPy's Float converts them to binary in C during parsing (1e999999 took 22 s).
    ("exponent_1e999999999", _boxed("1e999999999"), ZERO, ["exponent"]),
    ("exponent_1e-9999999", _boxed("1e-9999999"), ZERO, ["exponent"]),
    ("exponent_1e999999", _boxed("1e999999"), ZERO, ["exponent"]),
    ("exponent_1E+999999999", _boxed("1E+999999999"), ZERO, ["exponent"]),
    ("exponent_1.5E999999999", _boxed("1.5E999999999"), ZERO, ["exponent"]),
    # `1E\\!+9...` is 1*E + 9... to the format parser (valid), a literal to math-verify's grammar (refused).
    ("exponent_with_latex_spacing", _boxed("1E\\!+999999999"), {**EXPRESSION, "format": 1.0}, ["exponent"]),
    ("exponent_in_power", _boxed("x^{1E99999999}"), ZERO, ["exponent"]),
    ("exponent_imaginary", _boxed("1e999999999j"), ZERO, ["exponent"]),
    ("power_10^999999999", _boxed("10^{999999999}"), ZERO, ["exponent", "magnitude"]),
    ("power_10**999999999", _boxed("10**999999999"), ZERO, ["exponent", "magnitude"]),
    ("scientific_times_power", _boxed("1.5 \\times 10^{+999999999}"), ZERO, ["exponent", "magnitude"]),
    # Names outside the whitelist: a whole-namespace parse (the official code's) calls them.
    ("call_doctest", _boxed("doctest()"), ZERO, ["namespace"]),
    ("call_pprint", _boxed("pprint(x)"), ZERO, ["namespace"]),
    ("call_init_printing", _boxed("init_printing()"), ZERO, ["namespace"]),
    ("call_var", _boxed("var(x)"), ZERO, ["namespace"]),
    ("call_symbols", _boxed("symbols(x)"), ZERO, ["namespace"]),
    ("call_test", _boxed("test()"), ZERO, ["namespace"]),
    ("call_exec", _boxed("exec(1)"), ZERO, ["namespace"]),
    ("call_import_os", _boxed("__import__('os').system('true')"), ZERO, ["namespace"]),
    ("attribute_class", _boxed("x.__class__"), ZERO, ["namespace"]),
    ("attribute_bases", _boxed("(1).__class__.__bases__"), ZERO, ["namespace"]),
    ("float_precision", _boxed("Float(1, 999999999)"), ZERO, ["namespace"]),
    ("lambda", _boxed("lambda: 1"), ZERO, ["namespace"]),
    # Values too large to compute.
    ("tower_braced", _boxed("9^{9^{9^{9}}}"), ZERO, ["magnitude"]),
    ("tower_bare", _boxed("9^9^9^9"), ZERO, ["magnitude"]),
    ("tower_400", _boxed("9^" * 400 + "9"), ZERO, ["magnitude"]),
    ("factorial_100000", _boxed("100000!"), ZERO, ["magnitude"]),
    ("factorial_of_power", _boxed("(10^{10})!"), ZERO, ["magnitude"]),
    ("double_factorial_chain", _boxed("(10^{10})!!!!"), ZERO, ["magnitude"]),
    ("binomial_huge", _boxed("\\binom{10^{100}}{10^{50}}"), ZERO, ["magnitude"]),
    ("gcd_of_power", _boxed("\\gcd(2^{999999999}, 3)"), ZERO, ["magnitude", "namespace"]),
    ("shift_6_gb", _boxed("1<<99999999999"), ZERO, ["magnitude"]),
    ("floor_division_of_power", _boxed("(2^{999999999})//3"), ZERO, ["magnitude"]),
    ("negated_tower", _boxed("-9^{9^{9^{9}}}"), ZERO, ["magnitude"]),
    # Size.
    ("box_1mb", _boxed("1" * 1_000_000), ZERO, ["size"]),
    ("prefix_1mb", "x" * 1_000_000 + _boxed("7"), NUMBER_NOT_GOLD, ["size"]),
    ("open_boxes_100k", "\\boxed{" * 100_000, ZERO, ["size", "braces"]),
    ("braces_1mb", "{" * 1_000_000, ZERO, ["size", "braces"]),
    ("boxes_100k", "\\boxed{7}" * 100_000, NUMBER_NOT_GOLD, ["size"]),
    ("think_tags_100k", "</think>" * 100_000 + _boxed("7"), NUMBER_NOT_GOLD, ["size"]),
    ("digits_999", _boxed("9" * 999), {**NUMBER_NOT_GOLD, "boxed_number": 0.0}, ["size"]),
    ("sum_400_terms", _boxed("x+" * 400 + "x"), ZERO, ["size"]),
    (
        "word_990_letters",
        _boxed("\\text{" + "a" * 990 + "}"),
        {**ZERO, "format": None, "format_length": None},
        ["size"],
    ),
    # Nesting.
    ("parentheses_300", _boxed("(" * 300 + "1" + ")" * 300), ZERO, ["nesting"]),
    ("fractions_300", _boxed("\\frac{" * 300 + "1" + "}{2}" * 300), ZERO, ["nesting"]),
    ("roots_200", _boxed("\\sqrt{" * 200 + "2" + "}" * 200), ZERO, ["nesting"]),
    ("root_indices_100", _boxed("\\sqrt[" * 100 + "2" + "]{2}" * 100), ZERO, ["nesting"]),
    ("braces_400", _boxed("{" * 400 + "1" + "}" * 400), ZERO, ["nesting", "braces"]),
    # Unbalanced braces and broken LaTeX.
    ("unclosed_box", "\\boxed{12", ZERO, ["braces"]),
    ("extra_open_brace", _boxed("{12"), ZERO, ["braces"]),
    ("extra_close_braces", "\\boxed{7}}}}", NUMBER_NOT_GOLD, ["braces"]),
    ("unclosed_frac", _boxed("\\frac{1}{"), ZERO, ["braces"]),
    ("unclosed_subscript", _boxed("x_{" + "a" * 900), ZERO, ["braces"]),
    ("lone_backslash", _boxed("\\"), ZERO, ["braces"]),
    # Unicode, control characters, NUL bytes.
    # Plain-number parsing reads any Unicode decimal digits (`１２` is 12); the format parser is ASCII only.
    ("fullwidth_digits", _boxed("１２"), {**ZERO, "accuracy": None, "boxed_number": None}, ["unicode"]),
    ("unicode_pi", _boxed("2π"), ZERO, ["unicode"]),
    ("superscript_two", _boxed("x²"), ZERO, ["unicode"]),
    ("nul_byte", _boxed("1\x002"), ZERO, ["unicode"]),
    ("nul_only", _boxed("\x00"), ZERO, ["unicode"]),
    ("zero_width_space", _boxed("1\u200b2"), {**ZERO, "accuracy": None}, ["unicode"]),
    ("right_to_left_override", _boxed("\u202e21"), {**ZERO, "accuracy": None}, ["unicode"]),
    ("lone_surrogate", _boxed("\ud800"), ZERO, ["unicode"]),
    ("no_break_space", _boxed("1\u00a0+\u00a02"), {**ZERO, "format": None, "format_length": None}, ["unicode"]),
    ("newlines", _boxed("1\n+\n2"), {**ZERO, "format": None, "format_length": None}, ["unicode"]),
    # Controls: ordinary answers keep full marks.
    ("control_gold", _boxed("12"), FULL_MARKS, ["control"]),
    ("control_fraction", _boxed("\\frac{24}{2}"), FULL_MARKS, ["control"]),
    ("control_big_but_admissible", _boxed("2^{1000}"), EXPRESSION, ["control", "magnitude"]),
]


def _run(completion: str, expected: dict[str, float | None]) -> Outcome:
    """Scores `completion` with each reward; `None` in `expected` accepts any score in range."""
    rewards = _rewards()
    times: dict[str, float] = {}  # ms per reward
    problems = []
    for name, reward in rewards.items():
        _clear_caches()
        start = time.perf_counter()
        try:
            (value,) = reward(prompts=["q"], completions=[completion], completion_ids=[[0] * TOKENS], answer=[GOLD])
        except BaseException as err:  # noqa: BLE001 - what escapes a reward is what this corpus looks for
            ms = 1000 * (time.perf_counter() - start)
            return traceback(f"{name}: {type(err).__name__}: {err}", reward_ms=max([ms, *times.values()]))
        times[name] = 1000 * (time.perf_counter() - start)
        low, high = RANGES[name]
        want = expected[name]
        ok = isinstance(value, float) and math.isfinite(value) and low <= value <= high
        if not ok or (want is not None and not math.isclose(value, want, abs_tol=1e-9)):
            problems.append(f"{name} = {value!r}, expected {want!r} in [{low}, {high}]")
    slowest = max(times.values())
    if problems:
        return traceback("wrong score: " + "; ".join(problems), reward_ms=slowest)
    return handled(
        "scores as expected; ms: " + ", ".join(f"{n} {ms:.1f}" for n, ms in times.items()), reward_ms=slowest
    )


# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _rewards() -> dict[str, Callable[..., list[float | None]]]:
    # Built once per worker, and each called once on ordinary text so that imports and math-verify's set-up (about
    # 1 s) are not charged to the first case.
    from rlsurrogate.rewards import build_reward

    rewards = {name: build_reward(spec, params) for name, (spec, params) in SPECS.items()}
    for reward in rewards.values():
        reward(prompts=["q"], completions=[_boxed("x^2+1")], completion_ids=[[0] * TOKENS], answer=[GOLD])
    return rewards


def _clear_caches() -> None:
    # The verdict caches: `format` and `format_length` share one, which would hide the second call's cost.
    from rlsurrogate.rewards import accuracy, sympy_guard

    sympy_guard._is_valid_cached.cache_clear()
    accuracy._clear_caches()


def _cases() -> list[Case]:
    return [
        Case(SURFACE, name, functools.partial(_run, completion, expected), tags=tags)
        for name, completion, expected, tags in INPUTS
    ]


def _check_inputs() -> None:
    names = [name for name, *_ in INPUTS]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate case names in scripts/reliability/rewards.py: {duplicates}")
    for name, _, expected, _ in INPUTS:
        if expected.keys() != SPECS.keys():
            raise ValueError(f"case {name!r}: expected scores for {sorted(SPECS)}, got {sorted(expected)}")


_check_inputs()
CASES: list[Case] = _cases()


def _main() -> None:
    # For a quick look without the driver: python -m scripts.reliability.rewards
    for case in CASES:
        outcome = case.run()
        print(f"{outcome.kind:10} {outcome.reward_ms or 0.0:8.1f} ms  {case.name}: {outcome.detail}")


if __name__ == "__main__":
    _main()
