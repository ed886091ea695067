"""`rlsurrogate train` with an environment on a tiny saved model: the run, its multi-turn evaluations, and a resume
from a mid-run checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRAIN = [sys.executable, "-m", "rlsurrogate", "train"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from rlsurrogate.models import tiny_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    model, tokenizer = tiny_model(seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "renders no tools; using ChatML" in proc.stdout  # the template change is announced
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_environment_run_resumes_mid_run(tmp_path, tiny_checkpoint):
    raw = {
        "model": {"name": str(tiny_checkpoint)},
        "data": {"task": "arithmetic_tools", "num_train": 8, "num_eval": 2},
        "rewards": [{"name": "accuracy"}],
        "environment": {"name": "rlsurrogate.environments.calculator:Calculator"},
        "generation": {"num_generations": 2, "max_completion_length": 8, "max_tool_calling_iterations": 1},
        "training": {"per_device_train_batch_size": 2, "max_steps": 2, "learning_rate": 1e-3, "save_steps": 1},
        "eval": {"max_new_tokens": 8},
        "output_dir": str(tmp_path / "out"),
    }
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    first = _run([*TRAIN, str(recipe)])
    assert first["steps"] == 2
    for key in ("tool_call_rate_before", "tool_call_rate_after", "Calculator_before", "Calculator_after"):
        assert 0.0 <= first[key] <= 1.0, key
    log = json.loads((tmp_path / "out" / "log_history.json").read_text())
    assert any("rewards/Calculator/mean" in row for row in log)  # the environment's reward, trained
    resumed = _run([*TRAIN, str(recipe), "--resume", "--set", "training.max_steps=3"])
    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == 3
    assert resumed["tool_call_rate_after"] is not None
