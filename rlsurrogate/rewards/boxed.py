"""Shared answer extraction: completion text, the last brace-matched `\\boxed{...}`, plain numbers.

Follows the answer extraction of Xin et al. 2025 ("Surrogate Signals from Format and Length", arXiv 2505.19439,
App. A.8; official code `evaluator.py`, `parse_answer`/`extract_boxed_answer`): the answer is the content of the
LAST `\\boxed` in the text after the last `</think>`, with braces matched.

Deviations from the official code:
- The brace scan stops after `MAX_BOXED_CHARS` characters, so a 1 MB completion costs one `rfind` plus a bounded
  regex scan instead of a Python loop over every character. A box that does not close within the limit counts as
  missing (the official code would return its content).
- `<answer>...</answer>` tags are not searched (the Qwen-Math template the paper trains with never produces them).
- Only the braced form `\\boxed{...}` counts; `\\boxed 5` (no braces) does not.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

__all__ = ["MAX_BOXED_CHARS", "completion_text", "last_boxed", "parse_plain_number"]

# A final answer longer than this is not a final answer; 1,000 characters covers matrices and long intervals in
# MATH/DeepScaleR while keeping the scan and the SymPy parse of one completion far below 100 ms.
MAX_BOXED_CHARS = 1000

_BOXED = "\\boxed"
_THINK_END = "</think>"
_BRACE = re.compile(r"[{}]")
# An optional sign, then an integer, a decimal, a/b or \frac{a}{b} (also \dfrac, \tfrac); nothing else.
_PLAIN_NUMBER = re.compile(
    r"""^\s*(?P<sign>[+-]?)\s*(?:
        (?P<int>\d+)
      | (?P<dec>\d*\.\d+|\d+\.\d*)
      | (?P<num>\d+)\s*/\s*(?P<den>\d+)
      | \\[dt]?frac\s*\{\s*(?P<fnum>\d+)\s*\}\s*\{\s*(?P<fden>\d+)\s*\}
    )\s*$""",
    re.VERBOSE,
)
# Longer digit strings are not "plain numbers" a grader should compare exactly (and would slow Fraction down).
_MAX_NUMBER_DIGITS = 100


def completion_text(completion: Any) -> str:
    """The text of one completion, in either of TRL's formats.

    Args:
        completion: a string (plain-text dataset) or a list of chat messages (conversational dataset), e.g.
            `[{"role": "assistant", "content": "..."}]`; the assistant contents are joined.

    Returns:
        The completion text; anything else (None, a number) becomes `str(completion)` or "".

    Example:
        >>> completion_text([{"role": "assistant", "content": "\\\\boxed{4}"}])
        '\\\\boxed{4}'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, list | tuple):
        parts = [_content_text(m.get("content")) for m in completion if isinstance(m, dict)]
        return "".join(parts)
    return "" if completion is None else str(completion)


def last_boxed(text: str) -> str | None:
    """Content of the last brace-matched `\\boxed{...}` after the last `</think>`, or None.

    Args:
        text: the completion text.

    Returns:
        The content between the braces (possibly ""), or None when there is no `\\boxed`, the last one has no
        opening brace, or it does not close within `MAX_BOXED_CHARS` characters.

    Example:
        >>> last_boxed("so \\\\boxed{1} or rather \\\\boxed{\\\\frac{3}{2}}")
        '\\\\frac{3}{2}'
    """
    start = text.rfind(_THINK_END)
    if start >= 0:
        text = text[start + len(_THINK_END) :]
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    i = start + len(_BOXED)
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for match in _BRACE.finditer(text, i, i + MAX_BOXED_CHARS + 2):
        depth += 1 if match.group() == "{" else -1
        if depth == 0:
            return text[i + 1 : match.start()]
    return None


def parse_plain_number(s: str) -> Fraction | None:
    """The value of a plain number (optional sign; integer, decimal, `a/b` or `\\frac{a}{b}`), else None.

    Example:
        >>> parse_plain_number("-\\\\frac{3}{4}")
        Fraction(-3, 4)
    """
    if len(s) > 2 * _MAX_NUMBER_DIGITS:
        return None
    match = _PLAIN_NUMBER.match(s)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["int"] is not None:
        return sign * Fraction(int(match["int"]))
    if match["dec"] is not None:
        return sign * Fraction(match["dec"])
    num, den = (match["num"], match["den"]) if match["num"] is not None else (match["fnum"], match["fden"])
    if int(den) == 0:
        return None
    return sign * Fraction(int(num), int(den))


# ----------------------------------------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    # Multimodal chat content is a list of parts like {"type": "text", "text": "..."}.
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "" if content is None else str(content)
