"""Cost of the reward-variance callback as a share of a training step.

Two measurements:
1. micro: the `RewardVarianceMonitor` alone on synthetic `ScoredBatch`es of realistic sizes (the CPU quickstart's
   8 prompts x G=8 x 3 rewards up to a large GPU batch of 256 prompts x G=16 x 4 rewards), median of many calls;
2. real: a few GRPO steps of `recipes/format_length_cpu.yaml` (the Format-Length CPU recipe: the embedded SmolLM2-135M,
   8 prompts x 8 completions x 64 tokens) with the monitor as a score listener, timing the listener inside the
   run and every optimizer step with a trainer callback. `--tiny` swaps in a tiny random model (fast check; its
   steps are ~100x shorter, so its share is a pessimistic bound).

Usage:
    nice -n 10 python scripts/bench_diagnostics.py            # ~2-4 min on 2 CPU cores (3 steps of the quickstart)
    python scripts/bench_diagnostics.py --tiny --steps 3      # seconds

The last line is JSON: {"callback_share_of_step": ..., "callback_ms_per_step": ..., "step_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rlsurrogate.diagnostics.reward_variance import RewardVarianceMonitor
from rlsurrogate.objectives.base import ScoredBatch

REPO = Path(__file__).resolve().parents[1]
# (prompts, G, rewards): the CPU quickstart, a mid-size run, a large vLLM run.
MICRO_SIZES = [(8, 8, 3), (64, 8, 4), (256, 16, 4)]
# The Format-Length CPU recipe's step time on 2 CPU cores (recipes/format_length_cpu.yaml header), for the micro table.
QUICKSTART_STEP_S = 18.0


class _NullTrainer:
    def __init__(self) -> None:
        self.n = 0

    def log_metric(self, key: str, value: float) -> None:
        self.n += 1


def micro(repeats: int = 200) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    for prompts, g, f in MICRO_SIZES:
        rewards = (torch.rand(prompts * g, f, generator=gen) > 0.5).float()
        monitor, trainer = RewardVarianceMonitor(), _NullTrainer()
        times = []
        for step in range(repeats):
            scored = ScoredBatch(rewards, [f"r{i}" for i in range(f)], torch.ones(f), g, slice(0, None), "train", step)
            start = time.perf_counter()
            monitor(trainer, scored)
            times.append(time.perf_counter() - start)
        ms = 1e3 * statistics.median(times)
        rows.append({"prompts": prompts, "G": g, "rewards": f, "ms": ms, "share_of_18s": ms / 1e3 / QUICKSTART_STEP_S})
    return rows


def real(steps: int, tiny: bool) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback

    from rlsurrogate.build import grpo_config, load
    from rlsurrogate.models import load_model, tiny_model
    from rlsurrogate.tasks.loaders import load_rows
    from rlsurrogate.trainer import RLTrainer

    out = tempfile.mkdtemp(prefix="bench_diag_")
    overrides = [f"training.max_steps={steps}", 'training.save_strategy="no"', f"output_dir={out}"]
    recipe, resolved = load(str(REPO / "recipes" / "format_length_cpu.yaml"), overrides=overrides)
    train_rows, _ = load_rows(recipe.data)
    funcs, objective = resolved.rewards, resolved.objective
    config = grpo_config(recipe, resolved)
    model, tokenizer = tiny_model() if tiny else load_model(recipe.model.name)

    listener_s: list[float] = []
    monitor = RewardVarianceMonitor()

    def timed_monitor(trainer, scored) -> None:
        start = time.perf_counter()
        monitor(trainer, scored)
        listener_s.append(time.perf_counter() - start)

    step_s: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step_s.append(time.perf_counter() - self.start)

    trainer = RLTrainer(
        model=model,
        reward_funcs=funcs,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        processing_class=tokenizer,
        objective=objective,
        score_listeners=[timed_monitor],
        callbacks=[StepTimer()],
    )
    trainer.train()
    logged = [k for entry in trainer.state.log_history for k in entry if k.startswith("diagnostics/")]
    return {
        "model": "tiny" if tiny else recipe.model.name,
        "steps": len(step_s),
        "step_s": statistics.median(step_s),
        "callback_ms_per_step": 1e3 * sum(listener_s) / max(len(step_s), 1),
        "callback_share_of_step": sum(listener_s) / sum(step_s),
        "diagnostics_keys_logged": len(set(logged)),
        "example_log": {k: v for k, v in _last_step_log(trainer).items() if k.startswith("diagnostics/format_length")},
    }


def _last_step_log(trainer) -> dict:
    return next((e for e in reversed(trainer.state.log_history) if "diagnostics/total/zero_var_share" in e), {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps of the real measurement (default 3)")
    parser.add_argument("--tiny", action="store_true", help="tiny random model instead of the embedded one")
    parser.add_argument("--skip-real", action="store_true", help="only the micro benchmark")
    args = parser.parse_args()

    rows = micro()
    print(f"{'prompts':>8} {'G':>4} {'rewards':>8} {'monitor ms':>11} {'share of an 18 s step':>22}")
    for r in rows:
        print(f"{r['prompts']:>8} {r['G']:>4} {r['rewards']:>8} {r['ms']:>11.3f} {100 * r['share_of_18s']:>21.4f}%")
    result: dict = {"micro": rows}
    if not args.skip_real:
        measured = real(args.steps, args.tiny)
        print(
            f"\nreal run ({measured['model']}, {measured['steps']} steps): step {measured['step_s']:.2f} s (median), "
            f"callback {measured['callback_ms_per_step']:.3f} ms per step = "
            f"{100 * measured['callback_share_of_step']:.4f} % of step time; "
            f"{measured['diagnostics_keys_logged']} diagnostics keys reached the trainer's logs"
        )
        result.update(measured)
    else:
        result["callback_share_of_step"] = rows[0]["share_of_18s"]
        result["callback_ms_per_step"] = rows[0]["ms"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
