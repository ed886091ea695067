"""Held-out evaluation on 1 process vs 2 processes (gloo): the same completions, the work split evenly.

    python scripts/bench_eval.py [--prompts 64] [--max-new-tokens 48] [--batch-size 16]

Runs `rlsurrogate eval` on the embedded model (arithmetic held-out prompts, rewards boxed_number and accuracy) once
on one process and once under `accelerate launch --multi_gpu --num_processes 2` (two CPU ranks), and compares every
completion. Wall times are the evaluation's own (model loading excluded); per-rank times show the balance. Run it
alone on the machine: a busy neighbour slows a torch process ~10x on 2 cores.

Last line: {"identical": ..., "prompts_per_rank": [...], "rank_wall_s": [...], "wall_1proc_s": ..., "wall_2proc_s":
..., "rank_balance": slowest / fastest rank}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "recipe.yaml"
        recipe.write_text(
            yaml.safe_dump(
                {
                    "model": {"name": args.model},
                    "data": {"task": "arithmetic", "num_train": 8, "num_eval": args.prompts},
                    "rewards": [{"name": "boxed_number"}, {"name": "accuracy", "weight": 0.0}],
                    "generation": {"num_generations": 8, "max_completion_length": args.max_new_tokens},
                    "eval": {"num_prompts": args.prompts, "batch_size": args.batch_size},
                    "output_dir": str(Path(tmp) / "out"),
                }
            )
        )
        one, one_texts = _run(recipe, Path(tmp) / "one.jsonl", processes=1)
        two, two_texts = _run(recipe, Path(tmp) / "two.jsonl", processes=2)

    identical = one_texts == two_texts
    differing = sum(a != b for a, b in zip(one_texts, two_texts))
    balance = max(two["rank_wall_s"]) / max(min(two["rank_wall_s"]), 1e-9)
    print(f"held-out evaluation of {args.prompts} prompts x {args.max_new_tokens} tokens, batch {args.batch_size}")
    print(f"{'':24s}{'1 process':>12s}{'2 processes':>14s}")
    print(f"{'wall (s)':24s}{one['wall_s']:>12.1f}{two['wall_s']:>14.1f}")
    print(f"{'prompts per rank':24s}{str(one['prompts_per_rank']):>12s}{str(two['prompts_per_rank']):>14s}")
    walls = [" / ".join(f"{w:.1f}" for w in r["rank_wall_s"]) for r in (one, two)]
    print(f"{'rank wall (s)':24s}{walls[0]:>12s}{walls[1]:>14s}")
    for name, value in one["metrics"].items():
        print(f"{name:24s}{value:>12.3f}{two['metrics'][name]:>14.3f}")
    print(f"identical completions: {identical} ({differing} of {len(one_texts)} differ)")
    print(f"slowest / fastest rank: {balance:.2f}")
    print(
        json.dumps(
            {
                "identical": identical,
                "prompts_per_rank": two["prompts_per_rank"],
                "rank_wall_s": two["rank_wall_s"],
                "wall_1proc_s": one["wall_s"],
                "wall_2proc_s": two["wall_s"],
                "rank_balance": round(balance, 3),
            }
        )
    )


def _run(recipe: Path, completions: Path, processes: int) -> tuple[dict, list[str]]:
    command = [sys.executable, "-m", "rlsurrogate", "eval", str(recipe), "--json", "--completions", str(completions)]
    if processes > 1:
        launch = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
        command = [sys.executable, *launch, *command[1:]]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        sys.exit(f"bench_eval: {' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    texts = [json.loads(line)["completion"] for line in completions.read_text().splitlines()]
    return result, texts


if __name__ == "__main__":
    main()
