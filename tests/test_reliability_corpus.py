"""The fast surfaces of the bad-input corpus (scripts/reliability) give no traceback: a regression test of each
clear error. The whole corpus, with hang detection, is `python scripts/bench_reliability.py`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _cases(surface: str):
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(f"reliability.{surface}").CASES
    finally:
        sys.path.remove(str(SCRIPTS))


@pytest.mark.parametrize("surface", ["rewards", "reward_calls", "checkpoints", "query_log", "ask_tell"])
def test_no_bad_input_gives_a_traceback_or_loses_records(surface):
    failures = []
    for case in _cases(surface):
        outcome = case.run()
        if outcome.kind not in ("clear_error", "handled") or outcome.records_lost:
            failures.append(f"{case.name}: {outcome.kind}: {outcome.detail}")
    assert not failures, failures
