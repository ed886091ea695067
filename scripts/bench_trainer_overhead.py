"""Step time of rlsurrogate's RLTrainer (GRPO objective, guarded rewards) vs plain TRL GRPOTrainer.

Both trainers get the same model weights, data, reward and GRPOConfig; runs are interleaved (ours, TRL, ours, ...)
so drifts in machine load hit both alike. Each run trains `--steps` optimizer steps; the first step of each run
(warm-up) is dropped and the rest are TRL's own `step_time` metric. The ratio is median(ours) / median(TRL).

    python scripts/bench_trainer_overhead.py                 # embedded SmolLM2-135M, 5 interleaved pairs
    python scripts/bench_trainer_overhead.py --model tiny    # a tiny random model: seconds, for a smoke check

The last line is JSON: {"ratio": ..., "ours_step_s": ..., "trl_step_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help='model name, or "tiny"')
    parser.add_argument("--pairs", type=int, default=5, help="interleaved (ours, TRL) run pairs; median over them")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run (the first is warm-up)")
    parser.add_argument("--completions", type=int, default=8, help="completions per step (one prompt group)")
    parser.add_argument("--tokens", type=int, default=32, help="max completion tokens")
    args = parser.parse_args()

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlsurrogate.models import load_model, tiny_model
    from rlsurrogate.objectives import build_objective
    from rlsurrogate.rewards import build_reward
    from rlsurrogate.tasks import build_task
    from rlsurrogate.trainer import RLTrainer

    if args.model == "tiny":
        base, tokenizer = tiny_model(seed=0)
    else:
        base, tokenizer = load_model(args.model)
    initial_state = {k: v.clone() for k, v in base.state_dict().items()}
    dataset = Dataset.from_list(build_task("arithmetic", "train", 64))
    reward = build_reward("format_length", {"max_length": args.tokens})

    def run(kind: str) -> list[float]:
        base.load_state_dict(initial_state)
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as out:
            config = GRPOConfig(
                output_dir=out,
                per_device_train_batch_size=args.completions,
                num_generations=args.completions,
                max_completion_length=args.tokens,
                max_steps=args.steps,
                learning_rate=1e-6,
                logging_steps=1,
                report_to="none",
                bf16=False,
                gradient_checkpointing=False,
                save_strategy="no",
                seed=0,
                disable_tqdm=True,
            )
            common = dict(
                model=base, reward_funcs=[reward], args=config, train_dataset=dataset, processing_class=tokenizer
            )
            if kind == "ours":
                trainer = RLTrainer(**common, objective=build_objective("grpo"))
            else:
                trainer = GRPOTrainer(**common)
            trainer.train()
            times = [r["step_time"] for r in trainer.state.log_history if "step_time" in r]
        return times[1:] if len(times) > 1 else times

    step_times: dict[str, list[float]] = {"ours": [], "trl": []}
    pair_ratios = []
    start = time.time()
    for pair in range(args.pairs):
        order = ("ours", "trl") if pair % 2 == 0 else ("trl", "ours")
        medians = {}
        for kind in order:
            times = run(kind)
            step_times[kind] += times
            medians[kind] = statistics.median(times)
        pair_ratios.append(medians["ours"] / medians["trl"])
        print(
            f"pair {pair + 1}/{args.pairs}: ours {medians['ours']:.2f} s/step  TRL {medians['trl']:.2f} s/step  "
            f"ratio {pair_ratios[-1]:.3f}",
            flush=True,
        )

    ours, trl = statistics.median(step_times["ours"]), statistics.median(step_times["trl"])
    ratio = statistics.median(pair_ratios)
    print()
    print(f"{'trainer':<28}{'median s/step':>14}{'steps':>7}")
    print(f"{'rlsurrogate RLTrainer (grpo)':<28}{ours:>14.3f}{len(step_times['ours']):>7}")
    print(f"{'TRL GRPOTrainer':<28}{trl:>14.3f}{len(step_times['trl']):>7}")
    print(f"median of per-pair ratios ours/TRL: {ratio:.3f} (goal <= 1.03); wall {time.time() - start:.0f} s")
    print(
        json.dumps(
            {
                "ratio": round(ratio, 4),
                "ours_step_s": round(ours, 4),
                "trl_step_s": round(trl, 4),
                "pairs": args.pairs,
                "model": args.model,
                "completions": args.completions,
                "tokens": args.tokens,
            }
        )
    )


if __name__ == "__main__":
    main()
