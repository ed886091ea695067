"""The quickstart, 3 seeds: held-out accuracy, boxed rate, readable endings, wall time and peak memory of each run.

Each seed runs `rlsurrogate train RECIPE --set training.seed=S --set output_dir=DIR` in its own process (wall time and
peak resident memory are that process's, read with `os.wait4`), then `rlsurrogate eval RECIPE --model DIR/final
--completions FILE` writes every held-out greedy completion of the trained model with its scores. Printed per seed
and over seeds: accuracy before and after (the recipe's gold `accuracy` reward: the last box checked against the
answer), boxed rate, `clean_share`, wall seconds and peak RSS. The last line is JSON.

    flock /tmp/rlsurrogate-cpu.lock python scripts/bench_quickstart.py        # 3 seeds, ~25 min on 2 cores
    python scripts/bench_quickstart.py --seeds 0 --set training.max_steps=2   # smoke run

`clean_share` is the share of held-out completions that end with their answer and hold no garbage (`is_clean`):
exactly one `\\boxed{...}`, non-empty and closed; after its closing brace nothing but whitespace and closing
punctuation (`.`, `!`, `$`, `\\)`, `\\]`); and no control or replacement characters anywhere (the
`\\x1cwidth\\x1cwidth` of a degraded model). "2 + 5 = 7. \\boxed{7}" is clean, "\\boxed{7} \\endboxed \\begin" and
"\\boxed{2} + \\boxed{5} = \\boxed{7}" are not. It is defined here, independently of any reward, so that the figure
keeps its meaning when the rewards change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Whitespace and the characters that close a sentence or a LaTeX math span.
_CLOSING = re.compile(r"[\s.!$\\)\]]*")
# C0/C1 control characters except tab and newline, and U+FFFD (a byte sequence that was not text).
_GARBAGE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


def is_clean(completion: str) -> bool:
    """Whether a completion ends with its one non-empty box and holds no control or replacement characters."""
    if completion.count("\\boxed") != 1 or _GARBAGE.search(completion):
        return False
    start = completion.index("\\boxed") + len("\\boxed")
    match = re.compile(r"\s*\{").match(completion, start)
    if match is None:
        return False
    depth, i = 1, match.end()
    while i < len(completion) and depth:
        depth += {"{": 1, "}": -1}.get(completion[i], 0)
        i += 1
    content = completion[match.end() : i - 1]
    return depth == 0 and bool(content.strip()) and _CLOSING.fullmatch(completion, i) is not None


def clean_share(completions: list[str]) -> float:
    """Share of `completions` for which `is_clean` holds (0.0 for none)."""
    return sum(map(is_clean, completions)) / len(completions) if completions else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/quickstart.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override, each run")
    parser.add_argument("--out", help="directory for the runs (default: a temporary one)")
    args = parser.parse_args()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_quickstart_"))
    runs = []
    for seed in args.seeds:
        run = _run_seed(args.recipe, seed, args.set, out / f"seed{seed}")
        runs.append(run)
        print(
            f"seed {seed}: accuracy {run['accuracy_before']:.3f} -> {run['accuracy_after']:.3f}  boxed rate "
            f"{run['boxed_rate_after']:.3f}  clean {run['clean_share']:.3f}  wall {run['wall_s']:.0f} s  "
            f"peak RSS {run['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    _print_table(runs)
    accuracy = [r["accuracy_after"] for r in runs]
    result = {
        "accuracy_after": {"median": statistics.median(accuracy), "min": min(accuracy), "per_seed": accuracy},
        "accuracy_before": statistics.median(r["accuracy_before"] for r in runs),
        "boxed_rate_after": statistics.median(r["boxed_rate_after"] for r in runs),
        "clean_share": statistics.median(r["clean_share"] for r in runs),
        "wall_s": max(r["wall_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "seeds": args.seeds,
        "recipe": args.recipe,
        "overrides": args.set,
    }
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------------------------------


def _run_seed(recipe: str, seed: int, overrides: list[str], out: Path) -> dict[str, Any]:
    sets = [*overrides, f"training.seed={seed}", f"output_dir={out}"]
    command = [sys.executable, "-m", "rlsurrogate", "train", recipe]
    for item in sets:
        command += ["--set", item]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "train.log", "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"seed {seed}: training failed (exit {os.waitstatus_to_exitcode(status)}); see {out / 'train.log'}")
    completions_file = out / "completions.jsonl"
    evaluation = [sys.executable, "-m", "rlsurrogate", "eval", recipe, "--model", str(out / "final")]
    evaluation += [a for item in sets for a in ("--set", item)] + ["--json", "--completions", str(completions_file)]
    subprocess.run(evaluation, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = [json.loads(line) for line in completions_file.read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "accuracy_before": summary["accuracy_before"],
        "accuracy_after": summary["accuracy_after"],
        "boxed_rate_after": summary["boxed_rate_after"],
        "clean_share": clean_share([r["completion"] for r in records]),
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kB on Linux
    }


def _print_table(runs: list[dict[str, Any]]) -> None:
    keys = ["accuracy_before", "accuracy_after", "boxed_rate_after", "clean_share", "wall_s", "peak_rss_mb"]
    print("\n| seed | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    rows = [(str(run["seed"]), run) for run in runs]
    rows.append(("median", {k: statistics.median(r[k] for r in runs) for k in keys}))
    for label, row in rows:
        print(
            f"| {label} | "
            + " | ".join(f"{row[k]:.0f}" if k in ("wall_s", "peak_rss_mb") else f"{row[k]:.3f}" for k in keys)
            + " |"
        )


if __name__ == "__main__":
    main()
