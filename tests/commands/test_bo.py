"""`rlsurrogate bo`: a benchmark or a user function optimized end to end, log and plot written, bad input refused;
named spaces, failed evaluations and outcome constraints; resume from log.json repeats no evaluation and a killed
run loses no evaluated point."""

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
    with pytest.raises(ConfigError, match="--direction minimize or"):
        _cli(["--objective", f"{tmp_path / 'obj.py'}:f", "--bounds", "0:1", "--output-dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="--bounds"):
        _cli(["--objective", f"{tmp_path / 'obj.py'}:f", "--direction", "minimize", "--output-dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="a benchmark is minimised"):
        _cli(["--objective", "branin", "--direction", "maximize", "--output-dir", str(tmp_path)])


# A user objective on a named space: it counts its calls in a file, fails on one point, and can be told to die.
OBJECTIVE = """
import json, math, os
from pathlib import Path

CALLS = Path(__file__).with_name("calls.txt")


def loss(p):
    with CALLS.open("a") as fh:
        fh.write(json.dumps(p) + "\\n")
    n = len(CALLS.read_text().splitlines())
    if n == int(os.environ.get("DIE_AT", "0")):
        raise KeyboardInterrupt  # the run is killed while evaluating this point
    if p["act"] == "tanh" and p["layers"] == 1:
        return None  # a failed evaluation
    value = (math.log10(p["lr"]) + 2) ** 2 + (p["layers"] - 3) ** 2 / 4 + (p["act"] != "gelu")
    return {"value": value, "latency": p["layers"] * 10.0} if os.environ.get("CONSTRAINED") else value
"""
SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "layers": {"type": "int", "low": 1, "high": 6},
    "act": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
}


def named_run(tmp_path, budget: int, *extra: str) -> dict:
    (tmp_path / "obj.py").write_text(OBJECTIVE)
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    argv = ["--objective", f"{tmp_path / 'obj.py'}:loss", "--space", str(tmp_path / "space.json")]
    argv += ["--direction", "minimize", "--n-init", "4", "--budget", str(budget)]
    argv += ["--output-dir", str(tmp_path / "run")]
    assert _cli([*argv, *extra]) == 0
    return json.loads((tmp_path / "run" / "log.json").read_text())


def calls(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.txt").read_text().splitlines()]


def test_cli_named_space_gives_dicts_and_records_failures(tmp_path):
    log = named_run(tmp_path, 8)
    assert len(log["evaluations"]) == 8 and log["complete"] and log["direction"] == "minimize"
    for e in log["evaluations"]:
        assert set(e["params"]) == {"lr", "layers", "act"} and e["params"]["act"] in ("relu", "gelu", "tanh")
    assert [e["params"] for e in log["evaluations"]] == calls(tmp_path)
    ok = [e["y"] for e in log["evaluations"] if e["y"] is not None]
    assert log["best_y"] == min(ok) and log["n_failed"] == 8 - len(ok)


def test_cli_resume_repeats_no_evaluation(tmp_path):
    first = named_run(tmp_path, 6)
    assert len(calls(tmp_path)) == 6
    with pytest.raises(ConfigError, match="pass --resume"):
        named_run(tmp_path, 9)
    log = named_run(tmp_path, 9, "--resume")
    assert len(calls(tmp_path)) == 9  # three new evaluations, none repeated
    assert log["evaluations"][:6] == first["evaluations"]
    assert [e["params"] for e in log["evaluations"]] == calls(tmp_path)
    with pytest.raises(ConfigError, match="other settings: seed"):
        named_run(tmp_path, 12, "--resume", "--seed", "1")


def test_cli_stall_window_reaches_the_optimizer_and_a_resume_must_match_it(tmp_path, monkeypatch):
    built = []
    original = bo.OPTIMIZERS.get("bo")
    monkeypatch.setattr(
        bo.OPTIMIZERS, "get", lambda name: lambda *a, **k: built.append(original(*a, **k)) or built[-1]
    )
    first = named_run(tmp_path, 5, "--stall-window", "off")
    assert first["stall_window"] == "off" and built[-1].stall_window is None
    with pytest.raises(ConfigError, match="other settings: stall_window 'off' \\(log\\) vs 'auto'"):
        named_run(tmp_path, 6, "--resume")
    log = named_run(tmp_path, 6, "--resume", "--stall-window", "off")
    assert len(log["evaluations"]) == 6 and len(calls(tmp_path)) == 6
    (tmp_path / "b").mkdir()
    assert named_run(tmp_path / "b", 5, "--stall-window", "7")["stall_window"] == 7 and built[-1].stall_window == 7
    # a log written before the option existed ran with the default, so it resumes without it
    path = tmp_path / "b" / "run" / "log.json"
    old = json.loads(path.read_text())
    old["stall_window"] = "auto"
    path.write_text(json.dumps(old))
    named_run(tmp_path / "b", 6, "--resume")
    old = json.loads(path.read_text())
    del old["stall_window"]
    path.write_text(json.dumps(old))
    assert len(named_run(tmp_path / "b", 7, "--resume")["evaluations"]) == 7


def test_cli_killed_run_loses_no_evaluated_point_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("DIE_AT", "7")
    with pytest.raises(KeyboardInterrupt):
        named_run(tmp_path, 10)
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert len(log["evaluations"]) == 6 and not log["complete"]  # every point evaluated before the kill is there
    monkeypatch.delenv("DIE_AT")
    log = named_run(tmp_path, 10, "--resume")
    assert len(log["evaluations"]) == 10
    assert len(calls(tmp_path)) == 11  # 6 kept, the killed one re-run once, 3 more
    uninterrupted = tmp_path / "again"
    uninterrupted.mkdir()
    reference = named_run(uninterrupted, 10)
    assert [e["params"] for e in log["evaluations"]] == [e["params"] for e in reference["evaluations"]]


def test_cli_outcome_constraint(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSTRAINED", "1")
    log = named_run(tmp_path, 10, "--constraint", "latency<=25")
    assert log["outcome_constraints"] == {"latency": 25.0}
    assert log["best_params"]["layers"] <= 2
    (tmp_path / "x").mkdir()
    with pytest.raises(ConfigError, match="NAME<=BOUND"):
        named_run(tmp_path / "x", 4, "--constraint", "latency<100")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--bounds", "0:1", "--constraint", "mem<=0", "--constraint", "mem<=1"], "'mem' is already constrained"),
        (["--bounds", "0:1", "--constraint", "value<=0"], "'value' is the objective's key"),
        (["--space", "space.json", "--bounds", "0:1"], "--space and --bounds both given"),
        (["--bounds", "0:1", "--method", "random", "--acquisition", "ucb"], "only --method bo takes it"),
        (["--bounds", "0:1", "--method", "random", "--n-init", "3"], "random has no initial design"),
        (["--bounds", "0:1", "--method", "random", "--stall-window", "5"], "only --method bo restarts"),
        (["--bounds", "0:1", "--stall-window", "0"], "must be a positive int, 'off'"),
        (["--bounds", "0:1", "--stall-window", "sometimes"], "must be a positive int, 'off'"),
        (["--bounds", "0:1", "--dim", "4"], "only a benchmark takes it"),
    ],
)
def test_cli_refuses_options_it_would_ignore(tmp_path, extra, match):
    (tmp_path / "obj.py").write_text("def f(x):\n    return 0.0\n")
    (tmp_path / "space.json").write_text('{"x": {"type": "float", "low": 0, "high": 1}}')
    extra = [str(tmp_path / a) if a == "space.json" else a for a in extra]
    argv = ["--objective", f"{tmp_path / 'obj.py'}:f", "--direction", "minimize", "--budget", "2", *extra]
    with pytest.raises(ConfigError, match=match):
        _cli([*argv, "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
