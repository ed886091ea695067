"""Is a boxed answer valid mathematics? A whitelisted SymPy parse that model text cannot abuse, bounded in time.

The format surrogate of Xin et al. 2025 (arXiv 2505.19439, §2 and App. A.8) counts a `\\boxed{...}` as valid when
its content parses in SymPy after normalisation, with a single `=` read as `==` (official code: `val_by_sympy`,
which normalises LaTeX to text and calls `sympy.parse_expr` with SymPy's whole namespace). We keep that rule and
make it safe to run on model output, in any thread: the text reaches nothing but the grammar of steps 2-4.

1. Size: content longer than `MAX_BOXED_CHARS` is invalid (a 1 MB string is rejected before any parsing), which
   also bounds every number literal to `MAX_BOXED_CHARS` digits.
2. Normalisation (`latex_to_sympy_text`, our own wording of the usual MATH-answer normalisation): LaTeX commands
   become SymPy syntax (`\\frac{a}{b}` -> `((a)/(b))`, `\\sqrt`, `\\cdot`, `\\le`, `\\infty`, `^` -> `**`, ...).
   The result must use a small ASCII character set (letters, digits, operators, brackets, commas, dots), so no
   attribute access, underscores, strings or lambdas; bracket depth, powers and tokens are capped.
3. Lexical screen (`_screen`) on the very tokens `parse_expr` will see (Python's tokenizer, which SymPy uses):
   - a number is a literal whose decimal exponent stays within `MAX_DIGITS` (`1e999999999`, `1E+999999999` and
     `1e-9999999` are invalid): SymPy converts a literal to binary in C while it parses, before any later check
     or the deadline can act (`1e999999` took 22 s; within the bound it takes < 5 ms);
   - a name is a whitelisted function (followed by its argument) or constant (`_FUNCTIONS`, `_INERT_FUNCTIONS`,
     `_CONSTANTS`, the Greek letters), a single letter, or a word that neither Python nor SymPy defines, which
     SymPy's parse turns into symbols (`xy` -> `x*y`, `\\text{ cm}`). Any other SymPy name the answer writes
     (`doctest`, `pprint`, `var`, `symbols`, `Interval`, `init_printing`) and any Python keyword makes the answer
     invalid, called or not; one that only joining a subscript formed (`E_1` -> `E1`) is a symbol, except the
     constructors of step 4 (`Flo_at` -> `Float`), which are refused however spelt;
   - an operator is arithmetic, a comparison, `!`, `|`, `&`, a bracket, a comma or `...` (no `.`, `//`, `<<`).
4. Parsing in an explicit namespace (`_namespace`): `parse_expr` gets a `global_dict` holding only the whitelisted
   objects and the constructors its own transformations emit (`Symbol`, `Integer`, `Float`, `Add`, `Pow`, ...),
   with `__builtins__` empty, and runs with evaluation off (`evaluate=False`, thread-local in SymPy), so
   `9^9^9^9` and `100000!` stay unevaluated trees instead of hanging the process in a big-integer power.
5. Magnitude bound (`_log10_bound`): a tree whose value would have more than `MAX_DIGITS` digits (power towers,
   `10^{999999999}`, huge factorials or binomials) is invalid, because no grader can compare it in time.
6. A deadline (`time_limit`): a per-thread trace function raises once the CPU-time budget is spent, at the next
   call with no generator, coroutine or finaliser between it and the block (where an exception raised while a
   generator is being closed would only be printed and dropped), and then removes itself. It interrupts
   pure-Python work (SymPy); steps 1-5 keep C-level work (literal conversion, big-int arithmetic) small. It is
   skipped when a tracer is already installed (a debugger or coverage), leaving steps 1-5 as the guard.
No worker process for the format check: after steps 1-3 the only C-level work left is converting literals of bounded
size and exponent; the rest is SymPy code the deadline interrupts. The accuracy reward, whose math-verify parser
keeps shared caches that an interruption could leave half updated, runs in a `bounded_worker` process instead and
calls `safe_parse` there with `timeout_s=None`.

Deviations from the official code:
- The official parse evaluates (so `9^9^9^9` and `1e999999999` hang it, and its timeout decides); here such input
  is invalid (score 0).
- Half-open intervals `[0,1)` are valid here (brackets become parentheses); the official parse rejects them.
- The official parse (as this module's before it had a whitelist) runs in SymPy's whole namespace and calls any
  SymPy name in the answer (`doctest()` runs SymPy's test suite, `pprint(x)` prints, `1<<99999999999` allocates
  6 GB). Here a SymPy name outside the whitelist (`Interval(0, 1)`, `erf(x)`, `\\text{ rad}`), an unapplied function
  (`\\ln`, `2\\sin`) and `//`, `<<` make the answer invalid. Single letters are always symbols or undefined
  functions (`S_n = n^2`, `5 N`, `O(n^2)` are valid; SymPy's own `S`, `N`, `O` made the whole-namespace parse reject
  them). `\\gcd`, `\\operatorname{lcm}`, `\\det`, `\\max`, `\\min` are inert functions here; the whole-namespace
  parse calls SymPy's eager `gcd`, `lcm`, `det` and splits `max` into letters.
Checked: the paper's valid/invalid examples (App. A.8) classify as in the paper. Against this module's previous
whole-namespace parse, on 250 typical MATH-style answers, 340 answers of `scripts/bench_rewards.py` and 5,500 random
fragment strings, the verdicts differ only in the cases above (19, 0 and 127 answers).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import keyword
import math
import re
import sys
import time
import tokenize
from collections.abc import Callable
from typing import Any, NamedTuple

from rlsurrogate.rewards.boxed import MAX_BOXED_CHARS

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_DIGITS",
    "DeadlineExceeded",
    "exponents_bounded",
    "is_valid_math",
    "latex_to_sympy_text",
    "preload",
    "safe_parse",
    "time_limit",
]

# Budget for parsing one answer; the goal is <= 100 ms per completion, extraction and overhead included.
DEFAULT_TIMEOUT_S = 0.05
# Values with more digits than this are "not computable in time": 10^4 digits takes microseconds to build, while
# the next power tower (9^9^9 has 3.7e8 digits) takes minutes.
MAX_DIGITS = 10_000
# Python's own parser refuses deeper nesting ("too many nested parentheses" at 200); stop earlier, cheaply.
_MAX_NESTING = 100
_MAX_TREE_NODES = 5_000
# No final answer needs more powers than this; long power chains only make the parser and the bound check slow.
_MAX_POWERS = 32
# parse_expr costs ~0.15 ms per token (its transformations are pure Python): 300 tokens stay well inside the budget.
_MAX_TOKENS = 300
_TOKEN = re.compile(r"[A-Za-z]+|\d+|\S")

_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi omicron "
    "rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi "
    "Omega"
).split()
# The functions an answer may apply: name after normalisation -> SymPy name. Each is a SymPy Function class (or
# sqrt/cbrt/root, which build a Pow) that honours evaluate=False, so building it computes nothing.
_FUNCTIONS = {
    **{
        name: name
        for name in (
            "sin cos tan cot sec csc asin acos atan acot asec acsc sinh cosh tanh coth sech csch asinh acosh atanh "
            "exp log sqrt cbrt root Abs floor ceiling factorial factorial2 binomial re im arg sign conjugate "
            "Max Min Mod"
        ).split()
    },
    **{f"arc{name}": f"a{name}" for name in ("sin", "cos", "tan", "cot", "sec", "csc")},
    "ln": "log",
    "abs": "Abs",
}
# Written in answers (\gcd, \operatorname{lcm}, \det, \max, \min) but eager in SymPy, whose gcd, lcm and det compute
# on the spot (`\gcd(2^{999999999}, 3)` ran for minutes): inert function symbols instead, like an unknown f(x).
_INERT_FUNCTIONS = ("gcd", "lcm", "det", "max", "min")
_CONSTANTS = {name: name for name in ("pi", "oo", "zoo", "nan", "E", "I", "EulerGamma", "GoldenRatio", "Catalan")}
# What parse_expr's transformations and its evaluate=False rewrite emit into the code they evaluate. They are in the
# namespace for that code only: an answer naming one (`Float(1, 10**9)`) is invalid.
_PARSER_NAMES = (
    "Symbol Function Number Integer Float Rational Add Mul Pow Eq Ne Lt Le Gt Ge And Or Not factorial factorial2 I"
).split()
# Operator tokens of the grammar (Python's tokenizer spells `!` as an error token in 3.11 and as OP later).
_OPERATORS = frozenset("+ - * / ** ( ) , == != < > <= >= | & ! ...".split())
_APPLIED = frozenset({*_FUNCTIONS, *_INERT_FUNCTIONS})
_OPERANDS = frozenset({tokenize.NAME, tokenize.NUMBER})
_LAYOUT_TOKENS = frozenset({tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER})
# A name with underscores, looked up before normalisation turns `init_printing` into `initprinting`.
_SNAKE_CASE = re.compile(r"(?<![\\A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+")
_NUMBER_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)$")
# Scientific notation anywhere in LaTeX once commands and punctuation are dropped (`1E\!+99`, `1{,}5E99`).
_SQUEEZE = re.compile(r"\\[A-Za-z]+|[^0-9A-Za-z.+\-]")
_SCIENTIFIC = re.compile(r"(?<=[0-9.])[eE][+-]?([0-9]+)")
_SIMPLE_COMMANDS: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    # (LaTeX, replacement), applied in order; longer names before their prefixes.
    (r"\\\$|\\%|%|\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ", ""),
    (r"\\left|\\right|\\displaystyle|\\limits|\\!|\\,|\\;|\\:|\\ |\\quad|\\qquad|~|\$", " "),
    (r"\\[dt]frac", r"\\frac"),
    (r"\\(?:cdot|times|ast)(?![A-Za-z])", "*"),
    (r"\\div(?![A-Za-z])", "/"),
    (r"\\(?:pm|mp)(?![A-Za-z])", "+"),
    (r"\\(?:leqslant|leq|le)(?![A-Za-z])", "<="),
    (r"\\(?:geqslant|geq|ge)(?![A-Za-z])", ">="),
    (r"\\(?:neq|ne)(?![A-Za-z])", "!="),
    (r"\\lt(?![A-Za-z])", "<"),
    (r"\\gt(?![A-Za-z])", ">"),
    (r"\\infty(?![A-Za-z])", "oo"),
    (r"\\ln(?![A-Za-z])", "log"),
    (r"\\lambda(?![A-Za-z])", "lamda"),  # `lambda` is a Python keyword; SymPy spells the symbol `lamda`
    (r"\\(?:ldots|cdots|dots|vdots)(?![A-Za-z])", ""),
    (r"\\[{}]", lambda m: "(" if m.group() == "\\{" else ")"),
    (r"\\(?:text|textbf|textit|mathrm|mathbf|mathit|operatorname|mbox|hbox)\s*\{([^{}]*)\}", r" \1 "),
    (r"_\s*\{\s*([A-Za-z0-9]+)\s*\}", r"\1"),  # x_{12} -> x12
    (r"_\s*([A-Za-z0-9])", r"\1"),  # x_1 -> x1
]
_COMPILED_COMMANDS = [(re.compile(p), r) for p, r in _SIMPLE_COMMANDS]
_BRACED_COMMAND = re.compile(r"\\(frac|binom|sqrt)(?![A-Za-z])")
_ALLOWED = re.compile(r"^[0-9A-Za-z\s+\-*/().,<>=!|&]*$")
_ATTRIBUTE = re.compile(r"\.\s*[A-Za-z]")
_WORD = re.compile(r"[A-Za-z]+")
# Frames a deadline never raises into: generators and coroutines (`call` events also mark their resumption).
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
_FORBIDDEN_WORDS = frozenset(keyword.kwlist) | {"print", "exec", "eval", "open", "input", "compile", "globals"}


class DeadlineExceeded(BaseException):
    """Raised inside the guarded code when its time budget is spent.

    A BaseException, so that library code catching `Exception` cannot swallow it and keep running.
    """


def time_limit(seconds: float) -> _TimeLimit:
    """Raise `DeadlineExceeded` inside the block once it has used `seconds` of CPU time (pure-Python code only).

    Works in any thread: it installs a trace function on the calling thread only (no signals), which checks the
    thread's CPU time at every function call; CPU time rather than wall time, so that a busy machine does not turn
    slow-but-fine answers into zeros. It raises once, at a safe point: a call with no generator, coroutine or
    `__del__` between it and the block (an exception raised while a generator is being closed, or in a finaliser,
    is printed as "Exception ignored in ..." and dropped), then stops tracing, so the unwinding runs untraced.
    Does nothing when a tracer (debugger, coverage) is already installed on this thread, and nothing inside a block
    that already has a deadline (the outer one stays in force).

    Example:
        >>> with time_limit(1.0):
        ...     x = sum(range(10))
    """
    return _TimeLimit(seconds)


def latex_to_sympy_text(latex: str) -> str | None:
    """Normalise a LaTeX answer to `parse_expr` syntax, or None when it cannot be valid or safe.

    Example:
        >>> latex_to_sympy_text("x^2 + 12y =1")
        'x**2 + 12y ==1'
    """
    s = latex.strip()
    if not s or len(s) > MAX_BOXED_CHARS:
        return None
    for pattern, replacement in _COMPILED_COMMANDS:
        s = pattern.sub(replacement, s)
    expanded = _expand_braced_commands(s)
    if expanded is None:
        return None
    s = expanded
    s = re.sub(r"\\([A-Za-z]+)", r" \1 ", s)  # remaining commands (\sin, \pi, \alpha) -> their names
    s = s.replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")").replace("^", "**")
    s = re.sub(r"(?<![=!<>])=(?!=)", "==", s)  # the paper's rule: a single `=` is an equation
    s = s.strip()
    if not s or not _ALLOWED.match(s) or _ATTRIBUTE.search(s):
        return None
    if any(w in _FORBIDDEN_WORDS for w in _WORD.findall(s)):
        return None
    if _nesting(s) > _MAX_NESTING or s.count("**") > _MAX_POWERS or len(_TOKEN.findall(s)) > _MAX_TOKENS:
        return None
    return s


def safe_parse(latex: str, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Any | None:
    """Parse a LaTeX answer into an unevaluated SymPy object; None if invalid, unsafe or too slow.

    Args:
        latex: the content of a `\\boxed{...}`.
        timeout_s: time budget for parsing and the magnitude check; None when the caller bounds the time itself
            (e.g. in a `bounded_worker` process).

    Returns:
        The SymPy expression (or tuple of them), or None.

    Example:
        >>> safe_parse("2^{10}"), safe_parse("1e999999999"), safe_parse("doctest()")
        (2**10, None, None)
    """
    text = latex_to_sympy_text(latex)
    if text is None:
        return None
    # SymPy is imported outside the deadline: an import cut short would leave broken modules behind.
    namespace = _namespace()
    if not _screen(latex, text, namespace):
        return None
    try:
        with time_limit(timeout_s) if timeout_s is not None else contextlib.nullcontext():
            expr = _parse(text, namespace)
            if _log10_bound(expr, [0]) > MAX_DIGITS:
                return None
            return expr
    except (DeadlineExceeded, RecursionError, MemoryError):
        return None
    except Exception:  # any parse failure means "not valid mathematics"
        return None


def exponents_bounded(latex: str) -> bool:
    """False when a number in scientific notation has a decimal exponent beyond `MAX_DIGITS`.

    For parsers that read `1E+999999999` as a number and build it in C before any deadline can act (math-verify's
    LaTeX grammar does). Conservative: LaTeX commands and punctuation are dropped first, so `1E\\!99999` counts too.

    Example:
        >>> exponents_bounded("1.5E+30"), exponents_bounded("1E+999999999"), exponents_bounded("e^{999999999}")
        (True, False, True)
    """
    squeezed = _SQUEEZE.sub("", latex)
    return all(int(m.group(1)) <= MAX_DIGITS for m in _SCIENTIFIC.finditer(squeezed))


def preload() -> None:
    """Import SymPy now. Call it before entering a `time_limit`: an import cut short leaves broken modules behind."""
    _namespace()


def is_valid_math(latex: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """The paper's format test on a boxed answer: non-empty and SymPy-parsable after normalisation.

    Example:
        >>> is_valid_math("\\\\frac{3}{2}"), is_valid_math("x +* 2"), is_valid_math("(0,1 ")
        (True, False, False)
    """
    return latex is not None and _is_valid_cached(latex, timeout_s)


# ----------------------------------------------------------------------------------------------------------------


class _TimeLimit:
    # The context manager `time_limit` returns.
    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self) -> None:
        self._active = sys.gettrace() is None
        if self._active:
            self._block = sys._getframe(1)  # the frame running the `with` statement
            self._deadline = time.thread_time() + self.seconds
            sys.settrace(self._tracer)

    def __exit__(self, *exc_info: Any) -> None:
        if self._active:
            sys.settrace(None)
            self._block = None  # no reference cycle through the frame

    def _tracer(self, frame: Any, event: str, arg: Any) -> None:
        if time.thread_time() > self._deadline and _safe_point(frame, self._block):
            sys.settrace(None)  # raise once: the frames it unwinds (and generators closed on the way) run untraced
            raise DeadlineExceeded(f"time limit of {self.seconds:g} s exceeded")
        return None  # no per-line tracing: only function calls are checked


def _safe_point(frame: Any, block: Any) -> bool:
    # Whether an exception raised on entry to `frame` reaches the block: no generator or coroutine (resumed, or
    # being closed) and no finaliser on the way.
    while frame is not None and frame is not block:
        if frame.f_code.co_flags & _RESUMABLE or frame.f_code.co_name == "__del__":
            return False
        frame = frame.f_back
    return True


@functools.lru_cache(maxsize=4096)
def _is_valid_cached(latex: str, timeout_s: float) -> bool:
    # A group's completions often share an answer ("12"); the verdict depends only on the string.
    return safe_parse(latex, timeout_s) is not None


def _expand_braced_commands(s: str) -> str | None:
    # \frac{a}{b} -> ((a)/(b)), \frac12 -> ((1)/(2)), \sqrt{a} -> sqrt(a), \sqrt[n]{a} -> ((a)**(1/(n))),
    # \binom{n}{k} -> binomial(n,k). Scans left to right; nested commands are handled when the loop reaches them.
    out: list[str] = []
    i = 0
    while i < len(s):
        m = _BRACED_COMMAND.search(s, i)
        if m is None:
            out.append(s[i:])
            break
        out.append(s[i : m.start()])
        j = m.end()
        if m.group(1) == "sqrt":
            root = None
            k = _skip_space(s, j)
            if k < len(s) and s[k] == "[":
                close = s.find("]", k)
                if close < 0:
                    return None
                root, j = s[k + 1 : close], close + 1
            arg, j = _argument(s, j)
            if arg is None:
                return None
            out.append(f"sqrt({arg})" if root is None else f"(({arg})**(1/({root})))")
        else:
            a, j = _argument(s, j)
            b, j = _argument(s, j) if a is not None else (None, j)
            if a is None or b is None:
                return None
            out.append(f"(({a})/({b}))" if m.group(1) == "frac" else f"binomial({a},{b})")
        i = j
    return "".join(out)


def _argument(s: str, i: int) -> tuple[str | None, int]:
    # One LaTeX argument starting at s[i]: a brace group (returned without braces) or a single character.
    i = _skip_space(s, i)
    if i >= len(s):
        return None, i
    if s[i] != "{":
        return (s[i], i + 1) if s[i] not in "}\\" else (None, i)
    depth = 0
    for k in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[k], 0)
        if depth == 0:
            return s[i + 1 : k], k + 1
    return None, len(s)


def _skip_space(s: str, i: int) -> int:
    while i < len(s) and s[i] == " ":
        i += 1
    return i


def _nesting(s: str) -> int:
    depth = deepest = 0
    for ch in s:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


class _Namespace(NamedTuple):
    global_dict: dict[str, Any]
    local_dict: dict[str, Any]
    transformations: tuple[Any, ...]
    reserved: frozenset[str]


def _screen(latex: str, text: str, namespace: _Namespace) -> bool:
    # Step 3 of the module docstring, on the tokens parse_expr will see (it uses Python's tokenizer too).
    reserved = namespace.reserved
    if any(word in reserved for word in _SNAKE_CASE.findall(latex)):
        return False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):  # unbalanced brackets, bad indentation: not valid anyway
        return False
    for token, following in zip(tokens, tokens[1:]):
        kind, value = token.type, token.string
        if value in _APPLIED and following.string not in ("(", "**") and following.type not in _OPERANDS:
            return False  # a function left unapplied (`2\sin`, `\sin!`) is no value; SymPy then fails at random
        if kind == tokenize.NUMBER:
            exponent = _NUMBER_EXPONENT.search(value.rstrip("jJ"))
            hexadecimal = value[:2].lower() in ("0x", "0o", "0b")  # Integer literals: no exponent
            if exponent is not None and not hexadecimal and abs(int(exponent.group(1))) > MAX_DIGITS:
                return False
        elif kind == tokenize.NAME:
            # A reserved name the answer did not write (`E_1` joined into `E1`) is a plain symbol, unless the
            # parser's own code could reach it (`Flo_at(1, 10**9)`).
            written = re.search(rf"(?<![A-Za-z]){value}(?![A-Za-z])", latex)
            if value in reserved and (value in namespace.global_dict or written):
                return False
        elif kind in (tokenize.OP, tokenize.ERRORTOKEN):
            if value not in _OPERATORS and value not in (" ", "\t"):
                return False
        elif kind not in _LAYOUT_TOKENS:
            return False
    return True


@functools.lru_cache(maxsize=1)
def _namespace() -> _Namespace:
    # SymPy is imported on first use so that `import rlsurrogate.rewards` stays light.
    import sympy
    from sympy.core.parameters import evaluate  # noqa: F401 - imported here, before any deadline starts
    from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations  # noqa: F401,E501

    global_dict: dict[str, Any] = {"__builtins__": {}}  # model output never reaches Python builtins
    for name in _PARSER_NAMES:
        global_dict[name] = getattr(sympy, name)
    for table in (_FUNCTIONS, _CONSTANTS):
        global_dict.update({name: getattr(sympy, target) for name, target in table.items()})
    global_dict.update({name: sympy.Function(name) for name in _INERT_FUNCTIONS})
    local_dict = {name: sympy.Symbol(name) for name in _GREEK if name != "lambda"}
    local_dict.update({"lamda": sympy.Symbol("lamda"), "E": sympy.E, "e": sympy.E, "i": sympy.I})
    # Names an answer may not write: Python's keywords, our parser's constructors and everything else SymPy
    # exports (`doctest`, `var`, `Interval`), except the whitelist and single letters (symbols, or E and I).
    allowed = {*_FUNCTIONS, *_INERT_FUNCTIONS, *_CONSTANTS, *local_dict}
    reserved = frozenset(
        name for name in {*sympy.__all__, *_PARSER_NAMES, *_FORBIDDEN_WORDS} if name not in allowed and len(name) > 1
    )
    return _Namespace(
        global_dict, local_dict, standard_transformations + (implicit_multiplication_application,), reserved
    )


def _parse(text: str, namespace: _Namespace) -> Any:
    from sympy.core.parameters import evaluate
    from sympy.parsing.sympy_parser import parse_expr

    with evaluate(False):  # thread-local in SymPy: other threads keep their setting
        return parse_expr(
            text,
            local_dict=dict(namespace.local_dict),  # parse_expr writes into it
            global_dict=dict(namespace.global_dict),
            transformations=namespace.transformations,
            evaluate=False,
        )


def _log10_bound(expr: Any, count: list[int]) -> float:
    # Rough upper bound on log10(1 + |value|) of an unevaluated tree, symbols counted as magnitude 1. It only has
    # to separate "a few thousand digits" from "towers": constant factors do not matter.
    import sympy

    count[0] += 1
    if count[0] > _MAX_TREE_NODES:
        return math.inf
    if isinstance(expr, tuple | list):
        return max((_log10_bound(e, count) for e in expr), default=0.0)
    if not isinstance(expr, sympy.Basic):
        return 0.0
    if isinstance(expr, sympy.Integer):
        return float(len(str(abs(int(expr.p))))) if abs(expr.p) > 10**15 else math.log10(1 + abs(int(expr.p)))
    if isinstance(expr, sympy.Rational):
        return max(_log10_bound(sympy.Integer(expr.p), count), _log10_bound(sympy.Integer(expr.q), count))
    if isinstance(expr, sympy.Float):
        # From the binary exponent: `1e9999` carries 10^4 digits of precision, and its log would take ~80 ms.
        _, mantissa, exponent, bits = expr._mpf_
        return max(0.0, (exponent + bits) * math.log10(2)) if mantissa else 0.0
    args = [_log10_bound(a, count) for a in expr.args]
    if isinstance(expr, sympy.Pow):
        base, exponent = args
        # |b^e| <= 10^(base * 10^exponent); the exponent's own size is what explodes in towers.
        return math.inf if exponent > 16 else base * 10**exponent + 1
    if isinstance(expr, sympy.Mul):
        return sum(args)
    if isinstance(expr, (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma)):
        n = 10 ** args[0] if args[0] < 16 else math.inf
        return n * max(math.log10(n), 1.0)
    if isinstance(expr, sympy.binomial):  # C(n, k) <= min(n^k, 2^n)
        n_digits, k_digits = args
        return min(n_digits * 10 ** min(k_digits, 16), 0.302 * 10 ** min(n_digits, 16))
    return max(args, default=0.0) + 1  # sums, relations, functions: about the largest argument
