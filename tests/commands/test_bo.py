"""`rlsurrogate bo`: a benchmark or a user function optimized end to end, log and plot written, bad input refused."""

from __future__ import annotations

import argparse
import json

import pytest

from rlsurrogate.commands import bo
from rlsurrogate.errors import ConfigError


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    bo.add_arguments(parser)
    return bo.run(parser.parse_args(argv))


def test_cli_benchmark_writes_log_and_plot(tmp_path):
    assert _cli(["--objective", "branin", "--budget", "7", "--n-init", "5", "--output-dir", str(tmp_path)]) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert len(log["evaluations"]) == 7 and log["optimal_value"] == pytest.approx(0.397887, abs=1e-5)
    bests = [e["best"] for e in log["evaluations"]]
    assert bests == sorted(bests, reverse=True) and log["best_y"] == bests[-1]
    assert log["regret"] == pytest.approx(log["best_y"] - log["optimal_value"])
    assert (tmp_path / "convergence.png").stat().st_size > 1000


def test_cli_user_function_from_file(tmp_path):
    (tmp_path / "obj.py").write_text("def f(x):\n    return float(-((x - 0.3) ** 2).sum())\n")
    argv = ["--objective", f"{tmp_path / 'obj.py'}:f", "--bounds", "0:1,0:1,0:1", "--maximize", "--method", "random"]
    assert _cli([*argv, "--budget", "9", "--batch-size", "4", "--output-dir", str(tmp_path / "out")]) == 0
    log = json.loads((tmp_path / "out" / "log.json").read_text())
    assert len(log["evaluations"]) == 9 and log["maximize"] and len(log["best_x"]) == 3
    assert log["best_y"] == max(e["y"] for e in log["evaluations"])


def test_cli_rejects_unknown_objective_and_missing_bounds(tmp_path):
    with pytest.raises(ConfigError, match='Did you mean "branin"'):
        _cli(["--objective", "brannin", "--output-dir", str(tmp_path)])
    (tmp_path / "obj.py").write_text("def f(x):\n    return 0.0\n")
    with pytest.raises(ConfigError, match="--bounds"):
        _cli(["--objective", f"{tmp_path / 'obj.py'}:f", "--output-dir", str(tmp_path)])
