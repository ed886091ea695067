"""The side-by-side benchmark on a tiny budget: INSTINCT, MIPROv2 and GEPA on the same served black box, each within
the same budget of black-box calls, and a task whose pool spread (best vs median candidate) is at least 0.3.
Slow: loads the embedded 135M model and runs DSPy against `rlsurrogate serve`'s server."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

if importlib.util.find_spec("dspy") is None:
    pytest.skip("dspy is not installed: pip install -e '.[bench]' (dspy 3.4.1, gepa 0.1.4)", allow_module_level=True)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_prompt_opt", REPO / "scripts" / "bench_prompt_opt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_instinct_mipro_and_gepa_share_one_black_box_and_budget(tmp_path, monkeypatch, capsys):
    budget = 24
    argv = ["bench", "--tasks", "animal_or_fruit", "--seeds", "0", "--budget-calls", str(budget), "--pool-size", "16",
            "--soft-pool", "8", "--ape-samples", "4", "--train-steps", "20", "--proposer-tokens", "32",
            "--methods", "instinct", "random", "mipro", "gepa", "--out-dir", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    _bench().main()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["test_score"]) == {"instinct", "random", "mipro", "gepa"}
    assert all(0.0 <= v <= 1.0 for v in summary["test_score"].values())
    assert summary["budget"] == budget and summary["seeds"] == 1
    assert summary["spread"]["animal_or_fruit"] >= 0.3  # the instruction (and its demos) decide the score
    records = json.loads((tmp_path / "records.json").read_text())["records"]
    for r in records:
        assert 0 < r["calls"] <= budget, r["method"]  # every black-box call counted, none past the budget
    dspy_runs = [r for r in records if r["method"] in ("mipro", "gepa")]
    assert all(r["proposer_calls"] > 0 for r in dspy_runs)  # proposer / reflection calls are counted apart
    assert (tmp_path / "animal_or_fruit.png").exists()
