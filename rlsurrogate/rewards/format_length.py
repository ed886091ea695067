"""Format-Length surrogate rewards: label-free rewards from answer format and response length.

Xin, Liu, Wang, Zhang, Sui, Hu, Wang 2025, "Surrogate Signals from Format and Length: Reinforcement Learning for
Solving Mathematical Problems without Ground Truth Answers", arXiv 2505.19439, §2 and App. A.8.

- Format reward R_f ∈ {0, 1}: 1 iff the last brace-matched `\\boxed{...}` after any `</think>` holds content that
  SymPy parses after normalisation (`sympy_guard.is_valid_math`; examples: `\\boxed{\\frac{3}{2}}` valid,
  `\\boxed{x +* 2}` invalid).
- Length reward R_l(x), x = L / L_max with L the completion length in tokens, turning point p (Eq. 2-3):
      R_l(x) = 1 - (1 - x/p)^2              for 0 <= x <= p
      R_l(x) = 1 - 2 ((x - p) / (1 - p))^2  for p < x <= 1
  so R_l(0) = 0, R_l(p) = 1 (the unique maximum, zero slope), R_l(1) = -1. Polyline ablation (Eq. 4):
  R_l = 2x for x <= p, 3 - 4x for x > p (continuous only at p = 0.5).
- Format-Length (Eq. 5): R_fl = w_fmt + R_l when the format holds, else min(0, R_l); a format error never earns a
  positive reward. R_fl ∈ [w_fmt - 1, w_fmt + 1] with the format, [-1, 0] without.

Deviations and choices:
- `w_fmt` defaults to the paper's 1.0. The official code (`math_reward.py`) effectively uses 0.5: its format term
  is 0.5 * (soft_format + answer_format) and soft_format is always 0 under the Qwen-Math template, so its scores lie
  in [-1, 1.5] (matching its logged score range). Set `w_fmt: 0.5` to reproduce the code.
- L_max is `max_length`, in tokens; the recipe layer fills it from `generation.max_completion_length` (the official
  code hard-codes 3072 = its max response length). Lengths above L_max are clamped to x = 1.
- An answer whose value is too large to compute (power towers, huge factorials, `1e999999999`) counts as a format
  error, and so does one naming a SymPy function outside the parser's whitelist (`doctest()`); the official code
  would hang in SymPy until its timeout, or call the function (see `sympy_guard`).
Checked: the properties of METHODS.md §2.5 and the paper's App. A.8 examples (tests/rewards); the paper's training
results are not reproduced here.

Metrics (logged by TRL from `__name__`): `rewards/format/mean`, `rewards/length/mean`, `rewards/format_length/mean`
(and `/std`): the mean and std of R_f, R_l and R_fl over the step's completions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import InitVar, dataclass, field
from typing import Any

from rlsurrogate.errors import ConfigError
from rlsurrogate.rewards.boxed import completion_text, last_boxed
from rlsurrogate.rewards.sympy_guard import is_valid_math

__all__ = [
    "FormatLengthConfig",
    "format_ok",
    "format_length_reward",
    "length_reward",
    "make_format",
    "make_format_length",
    "make_length",
]

SHAPES = ("quadratic", "polyline")


@dataclass
class FormatLengthConfig:
    """Knobs of the length and Format-Length rewards (arXiv 2505.19439, Eq. 2-5)."""

    max_length: int = field(
        metadata={
            "help": "L_max in tokens (Eq. 2): usually generation.max_completion_length; the official code uses 3072."
        }
    )
    p: float = field(
        default=0.5,
        metadata={
            "help": "Turning point p in (0, 1) where R_l peaks (Eq. 2-3); the paper "
            "uses 0.5 (Table 4 also tries 0.4, 0.6, 0.8)."
        },
    )
    w_fmt: float = field(
        default=1.0,
        metadata={"help": "Reward for a correct format (Eq. 5); the paper uses 1.0, the official code 0.5."},
    )
    shape: str = field(
        default="quadratic",
        metadata={"help": "Length curve: 'quadratic' (Eq. 2-3, the paper's) or 'polyline' (Eq. 4 ablation)."},
    )
    reward_name: InitVar[str] = "format_length"

    def __post_init__(self, reward_name: str) -> None:
        problems = []
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length <= 0:
            problems.append(
                f"{reward_name}.max_length = {self.max_length!r}: must be a positive integer (L_max in "
                "tokens, Eq. 2); set it to generation.max_completion_length, e.g. 3072."
            )
        if not _is_real(self.p) or not 0.0 < self.p < 1.0:
            problems.append(
                f"{reward_name}.p = {self.p!r}: must be a number in (0, 1) (turning point of R_l, "
                "Eq. 2-3); the paper uses 0.5."
            )
        if not _is_real(self.w_fmt) or self.w_fmt < 0:
            problems.append(
                f"{reward_name}.w_fmt = {self.w_fmt!r}: must be a number >= 0 (format reward, Eq. 5); "
                "the paper uses 1.0, the official code 0.5."
            )
        if self.shape not in SHAPES:
            problems.append(
                f"{reward_name}.shape = {self.shape!r}: must be one of {', '.join(SHAPES)}; "
                "'quadratic' is the paper's Eq. 2-3."
            )
        if problems:
            raise ConfigError(problems)
        if self.shape == "polyline" and self.p != 0.5:
            warnings.warn(
                f"{reward_name}: the polyline length reward (Eq. 4: 2x, then 3 - 4x) is discontinuous at "
                f"p = {self.p}; the paper uses it only with p = 0.5. Set p: 0.5 to silence this.",
                UserWarning,
                stacklevel=4,
            )


def length_reward(x: float, p: float = 0.5, shape: str = "quadratic") -> float:
    """Length surrogate R_l(x), x = L / L_max (Eq. 2-3; polyline: Eq. 4).

    Args:
        x: relative length L / L_max; clamped to [0, 1].
        p: turning point in (0, 1).
        shape: "quadratic" or "polyline".

    Returns:
        R_l ∈ [-1, 1] (quadratic); the polyline stays in [-1, 1] for p = 0.5.

    Example:
        >>> [length_reward(x) for x in (0.0, 0.5, 1.0)]
        [0.0, 1.0, -1.0]
    """
    x = min(max(x, 0.0), 1.0)
    if shape == "polyline":
        return 2.0 * x if x <= p else 3.0 - 4.0 * x
    if x <= p:
        return 1.0 - (1.0 - x / p) ** 2
    return 1.0 - 2.0 * ((x - p) / (1.0 - p)) ** 2


def format_length_reward(format_is_ok: bool, r_l: float, w_fmt: float = 1.0) -> float:
    """Format-Length reward R_fl (Eq. 5): w_fmt + R_l with a correct format, else min(0, R_l).

    Example:
        >>> format_length_reward(True, 0.5), format_length_reward(False, 0.5), format_length_reward(False, -1.0)
        (1.5, 0.0, -1.0)
    """
    return w_fmt + r_l if format_is_ok else min(0.0, r_l)


def format_ok(completion: Any) -> bool:
    """The paper's format test R_f on one completion (plain text or chat messages).

    Example:
        >>> format_ok("The answer is \\\\boxed{\\\\frac{3}{2}}."), format_ok("\\\\boxed{x +* 2}")
        (True, False)
    """
    return is_valid_math(last_boxed(completion_text(completion)))


def make_format() -> _FormatReward:
    """Format reward R_f ∈ {0, 1} (arXiv 2505.19439 §2): 1 iff the last `\\boxed{}` holds valid mathematics.

    Example:
        >>> make_format()(completions=["\\\\boxed{1}", "\\\\boxed{}", "no box"])
        [1.0, 0.0, 0.0]
    """
    return _FormatReward()


def make_length(*, max_length: int, p: float = 0.5, shape: str = "quadratic") -> _LengthReward:
    """Length reward R_l ∈ [-1, 1] (Eq. 2-3, or the Eq. 4 polyline) of the completion's token count.

    Example:
        >>> make_length(max_length=4)(completions=["a", "b"], completion_ids=[[1, 2], [1, 2, 3, 4]])
        [1.0, -1.0]
    """
    return _LengthReward(FormatLengthConfig(max_length=max_length, p=p, shape=shape, reward_name="length"))


def make_format_length(
    *, max_length: int, p: float = 0.5, w_fmt: float = 1.0, shape: str = "quadratic"
) -> _FormatLengthReward:
    """Format-Length reward R_fl (Eq. 5) ∈ [w_fmt - 1, w_fmt + 1] with a correct format, [-1, 0] without.

    Example:
        >>> make_format_length(max_length=4)(completions=["\\\\boxed{1}", "oops"], completion_ids=[[1, 2], [1, 2]])
        [2.0, 0.0]
    """
    return _FormatLengthReward(FormatLengthConfig(max_length=max_length, p=p, w_fmt=w_fmt, shape=shape))


# ----------------------------------------------------------------------------------------------------------------


class _FormatReward:
    __name__ = "format"
    version = "1"

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float | None]:
        return [float(format_ok(c)) for c in completions]


class _LengthReward:
    __name__ = "length"
    version = "1"

    def __init__(self, config: FormatLengthConfig):
        self.config = config

    def __call__(
        self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any
    ) -> list[float | None]:
        c = self.config
        return [length_reward(len(ids) / c.max_length, c.p, c.shape) for ids in _ids(self.__name__, completion_ids)]


class _FormatLengthReward:
    __name__ = "format_length"
    version = "1"

    def __init__(self, config: FormatLengthConfig):
        self.config = config

    def __call__(
        self, completions: list[Any], completion_ids: list[list[int]] | None = None, **kwargs: Any
    ) -> list[float | None]:
        c = self.config
        ids = _ids(self.__name__, completion_ids)
        return [
            format_length_reward(format_ok(text), length_reward(len(i) / c.max_length, c.p, c.shape), c.w_fmt)
            for text, i in zip(completions, ids, strict=True)
        ]


def _ids(name: str, completion_ids: list[list[int]] | None) -> list[list[int]]:
    if completion_ids is None:
        raise TypeError(
            f"reward {name!r} measures length in tokens and needs completion_ids=...; TRL's "
            "GRPOTrainer passes them, pass them yourself when calling the reward directly."
        )
    return completion_ids


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
