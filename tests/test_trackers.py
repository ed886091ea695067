"""One real training run with a reward model (`rm:`) and a remote reward (`http://`), logged to TensorBoard with TRL's
completions table: the event files hold the rewards, the diagnostics and the held-out evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.rewards.test_remote import RewardServer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny, tiny_reward_model):
    factory, tokenizer = tiny
    root = tmp_path_factory.mktemp("models")
    factory(seed=0).save_pretrained(root / "policy")
    tokenizer.save_pretrained(root / "policy")
    tiny_reward_model(seed=2).save_pretrained(root / "tiny-rm")
    tokenizer.save_pretrained(root / "tiny-rm")
    return root


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(out.rglob("events.out.tfevents*"))
    assert files, f"no TensorBoard event file under {out}"
    scalars: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        events = EventAccumulator(str(file))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return scalars


def test_rm_and_remote_rewards_train_and_tensorboard_holds_every_metric(tmp_path, checkpoints):
    server = RewardServer()
    out = tmp_path / "out"
    recipe = {
        "model": {"name": str(checkpoints / "policy")},
        "data": {"task": "arithmetic", "num_train": 8, "num_eval": 4},
        "rewards": [
            {"name": f"rm:{checkpoints / 'tiny-rm'}"},
            {"name": server.url, "weight": 0.5, "params": {"name": "judge"}, "timeout_s": 60},
            {"name": "accuracy", "weight": 0.0},
        ],
        "generation": {"num_generations": 4, "max_completion_length": 8},
        "training": {
            "per_device_train_batch_size": 4,
            "max_steps": 2,
            "learning_rate": 1e-3,
            "report_to": ["tensorboard"],
            "log_completions": True,
        },
        "eval": {"every_steps": 1, "max_new_tokens": 8},
        "output_dir": str(out),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "train", str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    server.httpd.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["evaluations"] == 3
    assert "tiny-rm_after" in summary and "judge_after" in summary  # both score the held-out evaluation

    # the remote reward saw the dry run, 2 training generations and 3 evaluations, with the dataset's columns
    payloads = [r["payload"] for r in server.requests]
    assert len(payloads) >= 6 and all({"answer", "question"} <= set(p) for p in payloads)
    assert sum(len(p["completions"]) == 4 for p in payloads) >= 2  # 1 prompt x 4 completions per step

    scalars = _scalars(out)
    for tag in ("train/reward", "train/rewards/tiny-rm/mean", "train/rewards/judge/mean"):
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    assert "train/diagnostics/total/zero_var_share" in scalars
    eval_steps = sorted(step for step, _ in scalars["train/eval/accuracy"])
    assert eval_steps == [0, 1, 2]
    assert any(tag.startswith("train/eval/judge") for tag in scalars)

    tables = sorted((out / "completions").glob("completions_*.parquet"))  # TRL's log_completions table
    assert len(tables) == 2
    table = pd.read_parquet(tables[-1])
    assert {"prompt", "completion", "tiny-rm", "judge", "accuracy", "advantage"} <= set(table.columns)
    assert len(table) == 4 and table["judge"].notna().all()
