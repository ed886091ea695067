"""`rlsurrogate eval`: a saved model on the recipe's held-out prompts, scored by every reward of the recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_eval_command_scores_every_reward_and_writes_completions(tmp_path):
    from rlsurrogate.models import tiny_model

    checkpoint = tmp_path / "model"
    model, tokenizer = tiny_model(seed=0)
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": {"name": str(checkpoint)},
                "data": {"task": "arithmetic", "num_train": 8, "num_eval": 5},
                "rewards": [{"name": "boxed_number"}, {"name": "accuracy", "weight": 0.0}],
                "generation": {"num_generations": 4, "max_completion_length": 6},
                "output_dir": str(tmp_path / "out"),
            }
        )
    )
    completions = tmp_path / "completions.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "rlsurrogate", "eval", str(recipe), "--json", "--completions", str(completions)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["metrics"]) == {"boxed_number", "accuracy", "boxed_rate", "mean_length", "clipped_share"}
    assert result["num_prompts"] == 5 and result["gold"] == ["accuracy"] and result["model"] == str(checkpoint)
    rows = [json.loads(line) for line in completions.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5))
    assert all(set(r["scores"]) == {"boxed_number", "accuracy"} and r["length"] <= 6 for r in rows)
