"""`rlsurrogate train` end to end on a tiny saved model: summary and files, 2 processes, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from rlsurrogate.models import tiny_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    model, tokenizer = tiny_model(seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _recipe(tmp_path, checkpoint, optimizer=None, **training):
    raw = {
        "model": {"name": str(checkpoint)},
        "data": {"task": "arithmetic", "num_train": 16, "num_eval": 4},
        "rewards": [{"name": "format_length"}, {"name": "accuracy", "weight": 0.0}],
        "generation": {"num_generations": 4, "max_completion_length": 8},
        "training": {
            "per_device_train_batch_size": 4,
            "max_steps": 2,
            "learning_rate": 1e-3,
            "save_steps": 1,
            **training,
        },
        "eval": {"max_new_tokens": 8},
        "output_dir": str(tmp_path / "out"),
    }
    if optimizer:
        raw["optimizer"] = optimizer
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


TRAIN = [sys.executable, "-m", "rlsurrogate", "train"]


def _run(cmd: list[str], timeout: int = 300) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs a training command to completion; returns the process and its summary (the last stdout line)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(proc.stdout.strip().splitlines()[-1])


def test_train_cli_writes_summary_model_plot_and_evals(tmp_path, tiny_checkpoint):
    recipe = _recipe(tmp_path, tiny_checkpoint)
    proc, summary = _run([*TRAIN, str(recipe), "--set", "eval.every_steps=1"])
    for key in ("boxed_rate_before", "boxed_rate_after", "accuracy_before", "accuracy_after"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["steps"] == 2 and summary["world_size"] == 1
    assert summary["optimizer"] == "AdamW"
    out = tmp_path / "out"
    assert (out / "final" / "config.json").is_file()
    assert (out / "rewards.png").stat().st_size > 1000
    steps = [row for row in json.loads((out / "log_history.json").read_text()) if "reward" in row]
    assert [row["step"] for row in steps] == [1, 2]
    assert "diagnostics/total/zero_var_share" in steps[0]  # the variance monitor's metrics reach the saved log
    assert json.loads((out / "eval_before.json").read_text())["num_prompts"] == 4
    assert "per optimizer step" in proc.stdout  # the resolved batch table
    # evaluation during training: every step, logged as eval/<metric>, the last one is the "after" evaluation
    evals = [row for row in json.loads((out / "log_history.json").read_text()) if "eval/accuracy" in row]
    assert [row["step"] for row in evals] == [0, 1, 2]
    assert {"eval/format_length", "eval/boxed_rate", "eval/mean_length"} <= set(evals[-1])
    assert "guard/fired" in evals[-1] and summary["guard_fired_at_step"] is None
    assert json.loads((out / "eval_after.json").read_text())["step"] == 2
    # best/ by the gold metric (accuracy); the random tiny model never scores, so the tie keeps step 0
    best = summary["best_checkpoint"]
    assert best["step"] == 0 and (out / "best" / "config.json").is_file()
    assert summary["final_checkpoint"]["step"] == 2 and summary["final_checkpoint"]["path"].endswith("final")
    assert summary["gold_metrics"] == ["accuracy"] and summary["evaluations"] == 3


def test_two_process_launch_trains_and_evaluates_on_both_ranks(tmp_path, tiny_checkpoint):
    recipe = _recipe(tmp_path, tiny_checkpoint, per_device_train_batch_size=2)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    _, summary = _run([*launch, "-m", "rlsurrogate", "train", str(recipe), "--set", "eval.every_steps=1"], timeout=600)
    assert summary["world_size"] == 2 and summary["steps"] == 2 and summary["evaluations"] == 3
    before = json.loads((tmp_path / "out" / "eval_before.json").read_text())
    assert before["prompts_per_rank"] == [2, 2] and len(before["rank_wall_s"]) == 2


def test_sharded_launch_without_gpu_is_refused_in_one_line(tmp_path, tiny_checkpoint):
    """accelerate shards only on GPUs; on CPUs it would silently train unsharded copies (DDP)."""
    recipe = _recipe(tmp_path, tiny_checkpoint, per_device_train_batch_size=2)
    config = REPO / "tests" / "assets" / "fsdp_cpu_2proc.yaml"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    proc = subprocess.run(
        [*launch, "-m", "rlsurrogate", "train", str(recipe)], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: FSDP")]
    assert errors and "no GPU" in errors[0] and "cpu_2proc.yaml" in errors[0]
    assert not (tmp_path / "out").exists()  # refused before anything was loaded or written


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, tiny_checkpoint):
    recipe = _recipe(tmp_path, tiny_checkpoint, max_steps=6)
    out = tmp_path / "out"
    cmd = [*TRAIN, str(recipe)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoint-2" / "trainer_state.json").is_file():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "checkpoint-2").is_dir(), "no checkpoint was written before the kill"
    assert not (out / "summary.json").exists(), "the run finished before it could be killed"
    # the last checkpoint written whole (the kill can land inside the next one's write)
    saved = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file())

    _, summary = _run([*cmd, "--resume"])
    assert summary["resumed_from_step"] == saved
    assert summary["steps"] == 6


def test_resume_skips_a_broken_latest_checkpoint(tmp_path, tiny_checkpoint):
    recipe = _recipe(tmp_path, tiny_checkpoint, max_steps=2)
    cmd = [*TRAIN, str(recipe), "--set", "eval.before=false", "--set", "eval.after=false"]
    _run(cmd)
    out = tmp_path / "out"
    (out / "checkpoint-2" / "optimizer.pt").write_bytes(b"garbage")
    proc, summary = _run([*cmd, "--set", "training.max_steps=3", "--resume"])
    assert summary["resumed_from_step"] == 1 and summary["steps"] == 3
    assert "checkpoint-2 is broken (optimizer.pt: not a complete torch-saved file" in proc.stdout


def test_adam_cm_is_selectable_from_a_recipe(tmp_path, tiny_checkpoint):
    recipe = _recipe(
        tmp_path,
        tiny_checkpoint,
        optimizer={"name": "adam_cm", "params": {"buffer_size": 3}},
        max_steps=1,
        save_strategy="no",
    )
    _, summary = _run([*TRAIN, str(recipe), "--set", "eval.before=false", "--set", "eval.after=false"])
    assert summary["optimizer"] == "AdamCM" and summary["steps"] == 1
