"""Bad inputs for the prompt optimizer's durable query log (`queries.jsonl`), its resume and its result files.

Each log case pays for a small run first (4 instructions x 3 validation examples = 12 chat calls to a counting fake
black box, plus 4 evaluations), damages the log the way a crash, a full disk, an editor or a second run would, then
resumes the same run the way `optimize-prompt --resume` does (`QueryLog(resume=True)`, `write_meta`, an
`InstructionEvaluator` on the same instructions). It reports:
- "handled": the resume went through; `records_lost` counts the calls whose record the damaged file still held but
  that were re-bought, plus such records no longer in the file (0 when every readable record survived); the detail
  gives the calls re-sent and the warning the user saw, if any (a call whose record the damage destroyed, e.g. the
  whole file deleted, is re-sent without counting as lost);
- "clear_error": the resume was refused with an `RLSurrogateError` (a log of another run, a second live run, a
  directory) and the file is unchanged;
- "traceback": any other exception, or a refusal that changed the file.
"""

from __future__ import annotations

import json
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from rlsurrogate.errors import RLSurrogateError
from rlsurrogate.prompt_opt.clients import Completion, Usage
from rlsurrogate.prompt_opt.evaluator import InstructionEvaluator
from rlsurrogate.prompt_opt.query_log import Budget, QueryLog
from rlsurrogate.prompt_opt.tasks import Example, Task

from . import Case, Outcome, clear_error, handled, traceback

__all__ = ["CASES"]

SURFACE = "query_log"
INSTRUCTIONS = [f"Instruction {i}." for i in range(4)]
META = {"task": "yesno", "method": "random"}
PAID_CALLS = 12


class _CountingBlackBox:
    """Answers "yes" to every request."""

    name = "counting"

    def __init__(self) -> None:
        self.usage = Usage()

    def complete(self, requests, *, max_tokens=16, temperature=0.0, on_result=None):  # type: ignore[no-untyped-def]
        out = []
        for i, _ in enumerate(requests):
            c = Completion("yes", 10, 1)
            self.usage.calls += 1
            if on_result is not None:
                on_result(i, c)
            out.append(c)
        return out


def _run(path: Path, resume: bool, meta: dict | None = None) -> list[str]:
    """One (resumed) run on the 4 instructions; returns the request keys of the calls paid for in it."""
    task = Task("yesno", [Example(f"x{i}", "yes") for i in range(5)], metric="exact_match", n_demo=2, n_val=3)
    paid: list[str] = []
    with QueryLog(path, resume=resume) as log:
        log.write_meta(meta or META)
        append_call = log.append_call

        def logged(record: dict) -> None:
            paid.append(record["key"])
            append_call(record)

        log.append_call = logged  # type: ignore[method-assign]
        evaluator = InstructionEvaluator(task, _CountingBlackBox(), Budget(max_queries=10), log)
        for instruction in INSTRUCTIONS:
            evaluator.evaluate(instruction)
    return paid


def _keys(data: bytes) -> set[str]:
    keys = set()
    for line in data.split(b"\n"):
        try:
            record = json.loads(line.strip(b"\x00 \r"))
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("key"), str):
            keys.add(record["key"])
    return keys


def _resume_case(damage: Callable[[Path], None], meta: dict | None = None) -> Callable[[], Outcome]:
    """A paid run, `damage(log path)`, then a resume: what the user saw and what was lost."""

    def run() -> Outcome:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run" / "queries.jsonl"
            _run(path, resume=False)
            damage(path)
            damaged = path.read_bytes() if path.is_file() else b""
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    rebought = _run(path, resume=True, meta=meta)
                except RLSurrogateError as err:
                    if path.is_file() and path.read_bytes() != damaged:
                        return traceback(f"refused but changed the log: {err}")
                    return clear_error(err)
                except Exception as err:  # noqa: BLE001 (any other exception is what this corpus looks for)
                    return traceback(f"{type(err).__name__}: {err}")
            after = path.read_bytes()
            readable = _keys(damaged)  # calls whose record the damaged file still holds
            lost = len(readable & set(rebought)) + len(readable - _keys(after))  # re-bought + deleted
            message = "; ".join(str(w.message) for w in caught) or "resumed without a warning"
            return handled(f"{len(rebought)} of {PAID_CALLS} calls re-sent; {message}", records_lost=lost)

    return run


def _insert(line: bytes, at: int = 4) -> Callable[[Path], None]:
    """Puts `line` in as file line `at + 1`, between two good records."""

    def damage(path: Path) -> None:
        lines = path.read_bytes().split(b"\n")
        path.write_bytes(b"\n".join(lines[:at] + [line] + lines[at:]))

    return damage


def _append(data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path, "ab") as f:
            f.write(data)

    return damage


def _rewrite(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        path.write_bytes(change(path.read_bytes()))

    return damage


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _second_live_run() -> Outcome:
    """A second run on the log while the first still holds it: refused, nothing paid twice."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.jsonl"
        _run(path, resume=False)
        with QueryLog(path, resume=True):
            before = path.read_bytes()
            result: dict[str, Outcome] = {}

            def second() -> None:
                try:
                    paid = _run(path, resume=True)
                    result["o"] = traceback(f"accepted: a second live run on the same log ({len(paid)} calls paid)")
                except RLSurrogateError as err:
                    result["o"] = clear_error(err)
                except Exception as err:  # noqa: BLE001
                    result["o"] = traceback(f"{type(err).__name__}: {err}")

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(10)
            if thread.is_alive():
                return Outcome("hang", "a second run blocked on the log")
            changed = path.read_bytes() != before
        outcome = result["o"]
        if outcome.kind == "clear_error" and changed:
            return traceback(f"refused but changed the log: {outcome.detail}")
        return outcome


def _existing_log_without_resume() -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.jsonl"
        _run(path, resume=False)
        before = path.read_bytes()
        try:
            paid = _run(path, resume=False)
        except RLSurrogateError as err:
            return clear_error(err) if path.read_bytes() == before else traceback(f"changed the log: {err}")
        except Exception as err:  # noqa: BLE001
            return traceback(f"{type(err).__name__}: {err}")
        return traceback(f"accepted: an existing log overwritten or reused without --resume ({len(paid)} calls)")


def _result_write_fails() -> Outcome:
    """The disk fills while result.json is replaced: the old file must survive whole."""
    import os

    from rlsurrogate.prompt_opt import results

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        results._write_atomic(path, b'{"queries": 4}\n')
        real_fsync = os.fsync

        def full_disk(fd: int) -> None:
            raise OSError(28, "No space left on device")

        os.fsync = full_disk
        try:
            results._write_atomic(path, b'{"queries": 8, "history": [')
        except OSError:
            pass
        finally:
            os.fsync = real_fsync
        left = sorted(p.name for p in Path(tmp).iterdir())
        if path.read_bytes() != b'{"queries": 4}\n':
            return traceback(f"result.json left half-written: {path.read_bytes()[:40]!r}")
        if left != ["result.json"]:
            return traceback(f"temporary files left behind: {left}")
        return handled("the old result.json survived the failed write whole")


def _cases() -> list[Case]:
    record = b'{"type": "call", "key": "%s", "text": "x", "prompt_tokens": %s, "completion_tokens": 1}'
    resume_cases: dict[str, Callable[[Path], None]] = {
        "middle_garbage": _insert(b"garbage{{ not json"),
        "middle_torn_write": _insert(b'{"type": "call", "key": "0123abc", "text": "hal'),
        "middle_nul_block": _insert(b"\x00" * 4096),
        "nul_block_before_record": _rewrite(lambda d: d.replace(b"\n", b"\n" + b"\x00" * 512, 3)),
        "middle_not_utf8": _insert(b'{"type": "call", "key": "k", "text": "\xff\xfe"}'),
        "middle_json_array": _insert(b"[1, 2, 3]"),
        "middle_json_string": _insert(b'"just a string"'),
        "middle_missing_field": _insert(b'{"type": "call", "key": "k", "text": "x"}'),
        "middle_token_count_string": _insert(record % (b"k", b'"abc"')),
        "middle_token_count_negative": _insert(record % (b"k", b"-5")),
        "middle_unknown_type": _insert(b'{"type": "refund", "amount": 3}'),
        "middle_deep_nesting": _insert(b"[" * 100_000),
        "middle_10mb_line": _insert(b"x" * 10_000_000),
        "eval_scores_not_list": _insert(b'{"type": "eval", "instruction": "Instruction 0.", "scores": "high"}', at=1),
        "torn_last_line": _append(b'{"type": "call", "key": "b", "te'),
        "last_record_without_newline": _rewrite(lambda d: d.rstrip(b"\n")),
        "nul_tail": _append(b"\x00" * 4096),
        "crlf_line_endings": _rewrite(lambda d: d.replace(b"\n", b"\r\n")),
        "utf8_bom": _rewrite(lambda d: b"\xef\xbb\xbf" + d),
        "blank_lines": _rewrite(lambda d: d.replace(b"\n", b"\n\n  \n")),
        "duplicate_records": _rewrite(lambda d: d + d),
        "empty_file": _rewrite(lambda d: b""),
        "log_deleted": lambda path: path.unlink(),
        "log_is_directory": _replace_with_dir,
    }
    cases = [Case(SURFACE, name, _resume_case(damage), tags=["resume"]) for name, damage in resume_cases.items()]
    cases += [
        Case(
            SURFACE,
            "other_run_settings",
            _resume_case(lambda p: None, meta={**META, "task": "other"}),
            tags=["resume"],
        ),
        Case(SURFACE, "second_live_run", _second_live_run, tags=["lock"]),
        Case(SURFACE, "existing_log_without_resume", _existing_log_without_resume, tags=["resume"]),
        Case(SURFACE, "result_json_write_fails", _result_write_fails, tags=["result"]),
    ]
    return cases


CASES: list[Case] = _cases()
