"""Samplers on 2 gloo processes: every process makes the same decisions; dynamic sampling trains only on groups
with signal, with the GRPO family and with DisCO (several optimizer steps per generation); the history-based
samplers (pass_rate, mopps, greso) agree on every choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["grpo", "disco"])
def test_two_processes_agree_and_train_only_on_signal(tmp_path, objective):
    script = Path(__file__).with_name("sampling_distributed.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", str(script)]
    result = subprocess.run(
        cmd + ["--out", str(tmp_path), "--objective", objective], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    a, b = ranks
    assert len(a["seen"]) == len(b["seen"]) >= 2  # generations (3 steps, 2 optimizer steps per generation)
    for x, y in zip(a["seen"], b["seen"], strict=True):
        assert x["rewards"] == y["rewards"] and x["group_ids"] == y["group_ids"]  # the same global decisions
    assert a["logs"] == b["logs"] and a["losses"] == b["losses"]
    for rank in ranks:
        for generation in rank["seen"]:
            assert generation["prompts"] and all(p.endswith("is signal") for p in generation["prompts"])
    assert all(log["sampling/zero_var_share_after"] == 0.0 for log in a["logs"])
    assert any(log["sampling/zero_var_share_before"] > 0.0 for log in a["logs"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "sampler, params",
    [("pass_rate", {"feature_dims": 3, "basis_prompts": 8, "pool_factor": 2}), ("mopps", {}), ("greso", {})],
)
def test_two_processes_make_identical_history_based_decisions(tmp_path, sampler, params):
    script = Path(__file__).with_name("sampling_distributed.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", str(script)]
    args = ["--out", str(tmp_path), "--sampler", sampler, "--params", json.dumps(params)]
    result = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    a, b = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert a["world_size"] == b["world_size"] == 2
    assert len(a["seen"]) == len(b["seen"]) >= 2
    for x, y in zip(a["seen"], b["seen"], strict=True):
        assert x["rewards"] == y["rewards"] and x["group_ids"] == y["group_ids"]
    assert a["logs"] == b["logs"] and a["losses"] == b["losses"]
    assert a["seen"][0]["prompts"] != b["seen"][0]["prompts"]  # each process trains on its own share
