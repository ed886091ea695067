"""The tool-calling CPU example (recipes/tools_cpu.yaml), 3 seeds: held-out accuracy and tool-call rate before and
after training, wall time and peak memory of each run.

Each seed runs `rlsurrogate train RECIPE --set training.seed=S --set output_dir=DIR` in its own process (wall time and
peak resident memory are that process's, read with `os.wait4`). The held-out figures come from the run's own greedy
multi-turn evaluations (`summary.json`): `accuracy` (the gold reward: the last box against the answer) and
`tool_call_rate` (share of held-out completions with at least one tool call), before and after training. Goals:
median accuracy after >= before + 0.2, tool-call rate after >= 0.8, <= 15 min and <= 4 GB per seed. The last line is
JSON.

    flock /tmp/rlsurrogate-cpu.lock python scripts/bench_tools.py      # 3 seeds, the real run (alone on the machine)
    python scripts/bench_tools.py --quick                              # smoke run: 1 seed, 1 step, a few prompts
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# A setting that only checks the script end to end (minutes, not a measurement).
QUICK = [
    "data.num_train=8",
    "data.num_eval=4",
    "eval.num_prompts=4",
    "eval.every_steps=0",
    "generation.num_generations=2",
    "generation.max_completion_length=48",
    "eval.max_new_tokens=48",
    "training.max_steps=1",
    "training.per_device_train_batch_size=2",
    "training.gradient_accumulation_steps=1",
    "training.save_steps=1",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/tools_cpu.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (--quick: 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override, each run")
    parser.add_argument("--quick", action="store_true", help="a tiny setting that checks the script, not a result")
    parser.add_argument("--out", help="directory for the runs (default: a temporary one)")
    args = parser.parse_args()

    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    overrides = (QUICK if args.quick else []) + args.set
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_tools_"))
    runs = []
    for seed in seeds:
        run = _run_seed(args.recipe, seed, overrides, out / f"seed{seed}")
        runs.append(run)
        print(
            f"seed {seed}: accuracy {run['accuracy_before']:.3f} -> {run['accuracy_after']:.3f}  tool-call rate "
            f"{run['tool_call_rate_before']:.3f} -> {run['tool_call_rate_after']:.3f}  wall {run['wall_s']:.0f} s  "
            f"peak RSS {run['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    _print_table(runs)
    accuracy = [r["accuracy_after"] for r in runs]
    result = {
        "accuracy_before": statistics.median(r["accuracy_before"] for r in runs),
        "accuracy_after": {"median": statistics.median(accuracy), "min": min(accuracy), "per_seed": accuracy},
        "tool_call_rate_before": statistics.median(r["tool_call_rate_before"] for r in runs),
        "tool_call_rate_after": statistics.median(r["tool_call_rate_after"] for r in runs),
        "wall_s": max(r["wall_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "seeds": seeds,
        "recipe": args.recipe,
        "overrides": overrides,
    }
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------------------------------


def _run_seed(recipe: str, seed: int, overrides: list[str], out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "rlsurrogate", "train", recipe]
    for item in [*overrides, f"training.seed={seed}", f"output_dir={out}"]:
        command += ["--set", item]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "train.log", "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"seed {seed}: training failed (exit {os.waitstatus_to_exitcode(status)}); see {out / 'train.log'}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "accuracy_before": summary["accuracy_before"],
        "accuracy_after": summary["accuracy_after"],
        "tool_call_rate_before": summary["tool_call_rate_before"],
        "tool_call_rate_after": summary["tool_call_rate_after"],
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kB on Linux
    }


def _print_table(runs: list[dict[str, Any]]) -> None:
    keys = ["accuracy_before", "accuracy_after", "tool_call_rate_before", "tool_call_rate_after", "wall_s"]
    keys.append("peak_rss_mb")
    print("\n| seed | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    rows = [(str(run["seed"]), run) for run in runs]
    rows.append(("median", {k: statistics.median(r[k] for r in runs) for k in keys}))
    for label, row in rows:
        cells = [f"{row[k]:.0f}" if k in ("wall_s", "peak_rss_mb") else f"{row[k]:.3f}" for k in keys]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
